package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import java.nio.ByteBuffer;
import org.bytedeco.javacpp.Pointer;

/**
 * What the op packages ({@code io.github.flashinfer4j.attention}, later one per family) need of the core classes
 * beyond their public API: raw pointers, native codes, allocation under an owner's name. Implemented by a private
 * class of the core package and reached through {@link Access#core()}, so none of it is public on an exported class
 * (the JDK's SharedSecrets pattern).
 */
public interface CoreAccess {
  /** The tensor's address, pinned in {@code pins} until they close; throws IllegalStateException when closed. */
  Pointer pointer(Tensor tensor, Native.Pins pins);

  /** The tensor's address without a pin (the caller keeps it open and reachable during the call). */
  Pointer pointer(Tensor tensor);

  /** The stream's handle, pinned in {@code pins} until they close. */
  Pointer pointer(Stream stream, Native.Pins pins);

  /** The stream's handle without a pin. */
  Pointer pointer(Stream stream);

  /** Throws IllegalStateException when the tensor is closed ("tensor is closed: ..."). */
  void checkOpen(Tensor tensor);

  /** Throws IllegalStateException when the stream is closed ("stream is closed"). */
  void checkOpen(Stream stream);

  /** Bytes from element 0 to one past the last element (0 for an empty tensor). */
  long extentBytes(Tensor tensor);

  /** A new contiguous tensor; {@code what} names its owner in a leak warning ("PageTable", "PagedKvCache"). */
  Tensor allocate(String what, Device device, DType dtype, long... shape);

  /**
   * A new contiguous tensor without a Cleaner of its own: the caller closes it, or arranges its release with
   * {@link Native#whenUnreachable} (no leak warning).
   */
  Tensor allocateUntracked(String what, Device device, DType dtype, long... shape);

  /**
   * A contiguous CPU tensor over a direct buffer's memory from its position on (a mapped file region): no copy. The
   * tensor, its views and the native calls that pin them keep {@code buffer} reachable; closing frees nothing.
   */
  Tensor wrapHost(ByteBuffer buffer, DType dtype, long[] shape);

  /** Copies the remaining bytes of a direct buffer into a contiguous tensor at a byte offset, in one native copy. */
  void copyFromHost(Tensor dst, long byteOffset, ByteBuffer src);

  /** Copies {@code dst.remaining()} bytes of a contiguous tensor from a byte offset into a direct buffer. */
  void copyToHost(Tensor src, long byteOffset, ByteBuffer dst);

  /** The native device code (FI4J_DEVICE_CPU or the CUDA ordinal). */
  int code(Device device);

  /** The native dtype code (enum fi4j_dtype). */
  int code(DType dtype);

  /** The native op code (enum fi4j_kernel_op). */
  int code(KernelConfig.Op op);

  /** Closes each of {@code tensors} that is not null. */
  default void closeAll(Tensor... tensors) {
    for (Tensor t : tensors) {
      if (t != null) {
        t.close();
      }
    }
  }
}
