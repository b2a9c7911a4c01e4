package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * A CUDA stream (non-blocking), or the CPU backend's stand-in on which work runs synchronously. Ops queued on a
 * stream run in order; {@link #synchronize()} waits for them. Safe to use from one thread at a time.
 */
public final class Stream implements AutoCloseable {
  private final Device device;
  private final long handle;
  private final boolean owned;
  private boolean closed;

  private Stream(Device device, long handle, boolean owned) {
    this.device = device;
    this.handle = handle;
    this.owned = owned;
  }

  /** A new stream on the device (for the CPU backend, a synchronous stand-in). */
  public static Stream create(Device device) {
    Native.ensureLoaded();
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Native.check(Fi4j.fi4j_stream_create(device.code(), out));
      return new Stream(device, out.get(0) == null ? 0 : out.get(0).address(), true);
    }
  }

  /** The device's default (legacy) stream; closing it does nothing. */
  public static Stream defaultStream(Device device) {
    Native.ensureLoaded();
    return new Stream(device, 0, false);
  }

  /** Wraps a cudaStream_t created by another library; not destroyed on close. */
  public static Stream wrap(Device device, long cudaStreamHandle) {
    Native.ensureLoaded();
    return new Stream(device, cudaStreamHandle, false);
  }

  public Device device() {
    return device;
  }

  /** The raw cudaStream_t (0 for the default stream and the CPU backend). */
  public long handle() {
    checkOpen();
    return handle;
  }

  public void synchronize() {
    checkOpen();
    Native.check(Fi4j.fi4j_stream_synchronize(device.code(), Native.pointer(handle)));
  }

  Pointer pointer() {
    checkOpen();
    return Native.pointer(handle);
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("stream is closed");
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (owned && handle != 0) {
      Native.check(Fi4j.fi4j_stream_destroy(device.code(), Native.pointer(handle)));
    }
  }
}
