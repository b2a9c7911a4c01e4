package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * A CUDA event for timing work on a stream (CUDA devices only). Safe to use from several threads; a close racing
 * with a use waits for its native call, and later uses throw {@link IllegalStateException}.
 */
public final class CudaEvent implements AutoCloseable {
  private final Device device;
  private final long handle;
  private final Native.Resource resource;

  private CudaEvent(Device device, long handle, Native.Resource resource) {
    this.device = device;
    this.handle = handle;
    this.resource = resource;
  }

  /**
   * A new event on a CUDA device; {@link UnsupportedConfigurationException} for the CPU backend.
   *
   * @param device the device of the event
   * @return a new event on a CUDA device
   */
  public static CudaEvent create(Device device) {
    Checks.notNull(device, "device");
    if (device.isCpu()) {
      throw new UnsupportedConfigurationException("CUDA events need a CUDA device, got the CPU backend");
    }
    Native.ensureLoaded();
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Native.check(Fi4j.fi4j_event_create(device.code(), out));
      long h = out.get(0).address();
      int code = device.code();
      try {
        return new CudaEvent(device, h, Native.Resource.owning(
            () -> Native.check(Fi4j.fi4j_event_destroy(code, Native.pointer(h))), "CudaEvent(" + device + ")"));
      } catch (RuntimeException | Error e) {
        Fi4j.fi4j_event_destroy(code, Native.pointer(h));
        throw e;
      }
    }
  }

  /**
   * The device the event belongs to.
   *
   * @return the device the event belongs to
   */
  public Device device() {
    return device;
  }

  /**
   * Records the event on {@code stream} (null = default stream).
   *
   * @param stream the stream to record on, or null for the device's default stream
   */
  public void record(Stream stream) {
    checkOpen();
    Checks.stream(stream, device);
    try (Native.Pins pins = new Native.Pins()) {
      pins.add(resource);
      Native.check(Fi4j.fi4j_event_record(device.code(), Native.pointer(handle),
          stream == null ? null : stream.pointer(pins)));
    }
  }

  /**
   * Milliseconds from {@code start} to this event, waiting for this event to complete.
   *
   * @param start an event recorded earlier on the same device
   * @return milliseconds from {@code start} to this event, waiting for this event to complete
   */
  public float elapsedMillisSince(CudaEvent start) {
    checkOpen();
    Checks.notNull(start, "start");
    if (!start.isOpen()) {
      throw Checks.closed("start", start);
    }
    float[] ms = new float[1];
    try (Native.Pins pins = new Native.Pins()) {
      pins.add(start.resource);
      pins.add(resource);
      Native.check(Fi4j.fi4j_event_elapsed_ms(device.code(), Native.pointer(start.handle), Native.pointer(handle),
          ms));
    }
    return ms[0];
  }

  /**
   * Whether the event can still be used; safe to call from any thread.
   *
   * @return whether the event can still be used
   */
  public boolean isOpen() {
    return !resource.isClosed();
  }

  private void checkOpen() {
    if (!isOpen()) {
      throw Checks.closed("CudaEvent");
    }
  }

  /** Destroys the event; idempotent. A never-closed event is destroyed by a Cleaner once unreachable. */
  @Override
  public void close() {
    resource.close();
  }

  @Override
  public String toString() {
    return "CudaEvent(" + device + (isOpen() ? "" : ", closed") + ")";
  }
}
