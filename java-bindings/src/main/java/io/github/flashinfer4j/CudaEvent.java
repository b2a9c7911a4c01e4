package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/** A CUDA event for timing work on a stream (CUDA devices only). Use from one thread at a time. */
public final class CudaEvent implements AutoCloseable {
  private final Device device;
  private final long handle;
  private boolean closed;

  private CudaEvent(Device device, long handle) {
    this.device = device;
    this.handle = handle;
  }

  /** A new event on a CUDA device; {@link UnsupportedConfigurationException} for the CPU backend. */
  public static CudaEvent create(Device device) {
    Checks.notNull(device, "device");
    if (device.isCpu()) {
      throw new UnsupportedConfigurationException("CUDA events need a CUDA device, got the CPU backend");
    }
    Native.ensureLoaded();
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Native.check(Fi4j.fi4j_event_create(device.code(), out));
      return new CudaEvent(device, out.get(0).address());
    }
  }

  /** Records the event on {@code stream} (null = default stream). */
  public void record(Stream stream) {
    checkOpen();
    Checks.stream(stream, device);
    Native.check(Fi4j.fi4j_event_record(device.code(), Native.pointer(handle),
        stream == null ? null : stream.pointer()));
  }

  /** Milliseconds from {@code start} to this event, waiting for this event to complete. */
  public float elapsedMillisSince(CudaEvent start) {
    checkOpen();
    Checks.notNull(start, "start");
    start.checkOpen();
    float[] ms = new float[1];
    Native.check(Fi4j.fi4j_event_elapsed_ms(device.code(), Native.pointer(start.handle), Native.pointer(handle), ms));
    return ms[0];
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("CUDA event is closed");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      Native.check(Fi4j.fi4j_event_destroy(device.code(), Native.pointer(handle)));
    }
  }
}
