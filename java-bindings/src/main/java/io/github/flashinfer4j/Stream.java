package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Pointer;

/**
 * A CUDA stream (non-blocking), or the CPU backend's stand-in on which work runs synchronously. Ops queued on a
 * stream run in order; {@link #synchronize()} waits for them.
 *
 * <p>A stream belongs to one device: ops refuse a stream of another device than their tensors
 * ({@link InvalidArgumentException}), and the native layer refuses a stream it created for another device.
 *
 * <p>{@code close()} is idempotent: the first call destroys a stream made by {@link #create} (after any native
 * call still using it returns); later calls do nothing. Default and wrapped streams are never destroyed, but
 * refuse use once closed ({@link IllegalStateException}). A created stream that is never closed is destroyed by a
 * {@link java.lang.ref.Cleaner} when it becomes unreachable, with a WARNING on the {@code io.github.flashinfer4j}
 * System.Logger.
 *
 * <p>Threads: safe to use from several threads (CUDA streams accept work from any thread; work queued from two
 * threads runs in some interleaving of the two orders). A close racing with a use is never a crash.
 */
public final class Stream implements AutoCloseable {
  private final Device device;
  private final long handle;
  private final Native.Resource resource;

  private Stream(Device device, long handle, Native.Resource resource) {
    this.device = device;
    this.handle = handle;
    this.resource = resource;
  }

  /**
   * A new stream on the device (for the CPU backend, a synchronous stand-in).
   *
   * @param device the device of the stream
   * @return a new stream on the device (for the CPU backend, a synchronous stand-in)
   */
  public static Stream create(Device device) {
    Checks.notNull(device, "device");
    Native.ensureLoaded();
    Pointer out = new Pointer();
    Native.check(Fi4j.fi4j_stream_create(device.code(), out));
    long h = out.address();
    if (h == 0) {
      return new Stream(device, 0, Native.Resource.borrowed("stream on " + device));
    }
    int code = device.code();
    try {
      return new Stream(device, h, Native.Resource.owning(
          () -> Native.check(Fi4j.fi4j_stream_destroy(code, Native.pointer(h))), "Stream(" + device + ")"));
    } catch (RuntimeException | Error e) {
      Fi4j.fi4j_stream_destroy(code, Native.pointer(h));
      throw e;
    }
  }

  /**
   * The device's default (legacy) stream; closing it does nothing but close this handle.
   *
   * @param device the device of the stream
   * @return the device's default (legacy) stream
   */
  public static Stream defaultStream(Device device) {
    Checks.notNull(device, "device");
    Native.ensureLoaded();
    return new Stream(device, 0, Native.Resource.borrowed("default stream of " + device));
  }

  /**
   * Wraps a cudaStream_t created by another library; not destroyed on close. The handle is the caller's word:
   * it must be a live stream of {@code device} for as long as this wrapper is used.
   *
   * @param device the device of the stream
   * @param cudaStreamHandle a cudaStream_t of the device, owned by the caller, who keeps it alive while the wrapper is
   *     used
   * @return a stream over the handle, which close() does not destroy
   */
  public static Stream wrap(Device device, long cudaStreamHandle) {
    Checks.notNull(device, "device");
    Native.ensureLoaded();
    return new Stream(device, cudaStreamHandle, Native.Resource.borrowed("wrapped stream on " + device));
  }

  /**
   * The device of the stream.
   *
   * @return the device of the stream
   */
  public Device device() {
    return device;
  }

  /**
   * The raw cudaStream_t (0 for the default stream and the CPU backend).
   *
   * @return the raw cudaStream_t (0 for the default stream and the CPU backend)
   */
  public long handle() {
    checkOpen();
    return handle;
  }

  /**
   * Whether this stream can still be used; safe to call from any thread.
   *
   * @return whether this stream can still be used
   */
  public boolean isOpen() {
    return !resource.isClosed();
  }

  /** Waits until everything queued on this stream has completed. */
  public void synchronize() {
    checkOpen();
    resource.pin();
    try {
      Native.check(Fi4j.fi4j_stream_synchronize(device.code(), Native.pointer(handle)));
    } finally {
      resource.unpin();
    }
  }

  /** The handle as a pointer, without a pin. */
  Pointer pointer() {
    checkOpen();
    return Native.pointer(handle);
  }

  /** The handle as a pointer, pinned until {@code pins} close (a concurrent close() waits for the call). */
  Pointer pointer(Native.Pins pins) {
    pins.add(resource);
    return Native.pointer(handle);
  }

  void checkOpen() {
    if (!isOpen()) {
      throw Checks.closed("Stream");
    }
  }

  /** Closes; idempotent. Destroys a created stream once no native call uses it. */
  @Override
  public void close() {
    resource.close();
  }

  @Override
  public String toString() {
    return "Stream(" + device + (handle == 0 ? ", default" : "") + (isOpen() ? "" : ", closed") + ")";
  }
}
