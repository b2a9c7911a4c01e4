package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;

/**
 * A strided n-dimensional array in the memory of a {@link Device}: device memory for CUDA, host memory for the
 * CPU backend. Either owns its allocation (freed by {@link #close()}) or is a view: of another tensor (it then
 * stops working when that tensor is closed) or of memory owned by another library ({@link #wrap}).
 *
 * <p>Strides are in elements; the last dimension of tensors handed to attention ops must be contiguous. Copies to
 * and from Java arrays and NIO buffers need a contiguous tensor; float arrays convert to and from F16/BF16
 * (round to nearest even).
 *
 * <h2>Bounds</h2>
 * Every view ({@link #select}, {@link #narrow}, {@link #reshape}) spans only elements of the tensor it was made
 * from, so no view can reach outside its allocation: ops that trust a tensor's shape and strides stay inside it.
 * {@link #wrap} is the exception: its shape and strides are the caller's word (they are checked for overflow and
 * alignment, not against the foreign allocation, which the library cannot see).
 *
 * <h2>Closing</h2>
 * {@code close()} is idempotent: the first call frees an owned allocation (and makes the tensor and all its views
 * refuse use with {@link IllegalStateException}); later calls do nothing, so memory is never freed twice. Closing
 * a view closes only that handle; the memory stays with the tensor it views. A tensor that owns memory and is
 * never closed is freed by a {@link java.lang.ref.Cleaner} once it and all its views are unreachable, with a
 * WARNING on the {@code io.github.flashinfer4j} System.Logger naming its dtype, shape, device and bytes.
 *
 * <h2>Threads</h2>
 * One thread at a time may write a tensor (copies into it, ops that write it) or close it; any number of threads
 * may read a tensor that nobody writes (copies out of it, ops that only read it, e.g. a shared KV cache in
 * decode). A {@code close()} racing with a use on another thread is a bug in the program, but never a crash:
 * native calls pin the memory they use, so the free waits until the last running call returns, and later uses
 * throw {@link IllegalStateException}. The open/closed state is safe to read from any thread.
 *
 * <h2>CUDA graphs</h2>
 * A graph replay re-runs the captured kernels with the pointers recorded at capture and runs no host code, so
 * none of these checks run again: the tensors a graph uses must stay open, unchanged in shape, while it is
 * replayed.
 */
public final class Tensor implements AutoCloseable {
  static {
    Access.install(new Bridge());  // first: the op packages reach pointers and codes through it
  }

  /** Shared by a tensor and its views: the allocation (or wrapped memory) and its life cycle. */
  private static final class Memory {
    final Device device;
    final long base;
    final long capacity;  // bytes from base that views may span
    final Native.Resource resource;

    Memory(Device device, long base, long capacity, Native.Resource resource) {
      this.device = device;
      this.base = base;
      this.capacity = capacity;
      this.resource = resource;
    }
  }

  private final Memory memory;
  private final long address;
  private final DType dtype;
  private final long[] shape;
  private final long[] strides;
  private final boolean isRoot;
  private volatile boolean viewClosed;

  private Tensor(Memory memory, long address, DType dtype, long[] shape, long[] strides, boolean isRoot) {
    long offset = address - memory.base;
    long extent = extentBytes(shape, strides, dtype);
    if (offset < 0 || offset > memory.capacity || extent > memory.capacity - offset) {
      // unreachable through the public API: views are made in bounds; kept as the last line of defence
      throw InvalidArgumentException.of("view", "within its parent's " + memory.capacity + " bytes",
          "byte offset " + offset + " + extent " + extent);
    }
    this.memory = memory;
    this.address = address;
    this.dtype = dtype;
    this.shape = shape;
    this.strides = strides;
    this.isRoot = isRoot;
  }

  /**
   * A new uninitialised contiguous tensor.
   *
   * @param device the device of the memory
   * @param dtype the element type
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a new uninitialised contiguous tensor
   */
  public static Tensor empty(Device device, DType dtype, long... shape) {
    return allocate("Tensor", device, dtype, shape);
  }

  /**
   * Allocates a contiguous tensor; {@code what} names its owner in a leak warning ("PageTable", "PagedKvCache").
   */
  static Tensor allocate(String what, Device device, DType dtype, long... shape) {
    return allocate(what, true, device, dtype, shape);
  }

  private static Tensor allocate(String what, boolean tracked, Device device, DType dtype, long... shape) {
    Native.ensureLoaded();
    check(device != null, "device", "non-null", "null");
    check(dtype != null, "dtype", "non-null", "null");
    long[] s = checkShape(shape);
    long bytes = Math.multiplyExact(numelOf(s), (long) dtype.byteSize());
    Pointer out = new Pointer();
    Native.check(Fi4j.fi4j_malloc(device.code(), bytes, out));
    long addr = out.address();
    try {
      Native.Release release = Native.freeMemory(device.code(), addr);
      Native.AllocationInfo info = new Native.AllocationInfo(what, dtype, s, device, bytes);
      Native.Resource resource = tracked ? Native.Resource.owning(release, info)
          : Native.Resource.owningUntracked(release, info);
      return new Tensor(new Memory(device, addr, bytes, resource), addr, dtype, s, contiguousStrides(s), true);
    } catch (RuntimeException | Error e) {
      Fi4j.fi4j_free(device.code(), Native.pointer(addr));
      throw e;
    }
  }

  /**
   * A new contiguous tensor of zeros.
   *
   * @param device the device of the memory
   * @param dtype the element type
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a new contiguous tensor of zeros
   */
  public static Tensor zeros(Device device, DType dtype, long... shape) {
    Tensor t = empty(device, dtype, shape);
    try {
      t.fillBytes(0);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  /**
   * A new tensor holding {@code data} (converted to {@code dtype}, which must be F16, BF16 or F32).
   *
   * @param device the device of the memory
   * @param dtype the element type
   * @param data the elements, row-major; as many as the shape holds
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a new tensor holding {@code data} (converted to {@code dtype}, which must be F16, BF16 or F32)
   */
  public static Tensor fromFloats(Device device, DType dtype, float[] data, long... shape) {
    check(data != null, "data", "non-null", "null");
    Tensor t = empty(device, dtype, shape);
    try {
      t.copyFrom(data);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  /**
   * A new I32 tensor holding {@code data}.
   *
   * @param device the device of the memory
   * @param data the elements, row-major; as many as the shape holds
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a new I32 tensor holding {@code data}
   */
  public static Tensor fromInts(Device device, int[] data, long... shape) {
    check(data != null, "data", "non-null", "null");
    Tensor t = empty(device, DType.I32, shape);
    try {
      t.copyFrom(data);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  /**
   * A non-owning view of memory owned elsewhere (a device pointer from another library). The caller guarantees
   * that {@code address} holds the described elements, in the memory of {@code device}, for as long as the view
   * is used; closing the view does not free it. Checked here: a non-zero address aligned to the element size,
   * non-negative strides, and a byte extent that fits in a long; not checked (the library cannot see it): that
   * the memory exists and belongs to {@code device}.
   *
   * @param device the device of the memory
   * @param address the address of element 0 (a device pointer for a CUDA device); the caller's word that the memory is
   *     there
   * @param dtype the element type
   * @param shape the sizes of the dimensions (none for a scalar)
   * @param strides the strides in elements, one per dimension, non-negative
   * @return a non-owning view of the memory; closing it does not free the memory
   */
  public static Tensor wrap(Device device, long address, DType dtype, long[] shape, long[] strides) {
    Native.ensureLoaded();
    check(device != null, "device", "non-null", "null");
    check(dtype != null, "dtype", "non-null", "null");
    check(shape != null, "shape", "non-null", "null");
    check(strides != null, "strides", "non-null", "null");
    check(address != 0, "address", "non-zero", "0");
    check(address % dtype.byteSize() == 0, "address",
        "aligned to the " + dtype.byteSize() + "-byte elements of " + dtype, "0x" + Long.toHexString(address));
    long[] s = checkShape(shape);
    check(strides != null && strides.length == s.length, "strides", "of length " + s.length,
        strides == null ? "null" : strides.length);
    for (int i = 0; i < strides.length; i++) {
      check(strides[i] >= 0, "strides[" + i + "]", ">= 0", strides[i]);
    }
    long[] st = strides.clone();
    long extent;
    try {
      extent = extentBytes(s, st, dtype);
      Math.addExact(address, extent);
    } catch (ArithmeticException e) {
      throw InvalidArgumentException.of("strides", "small enough that the byte extent fits in a long",
          Arrays.toString(st) + " for shape " + Arrays.toString(s));
    }
    Native.Resource resource = Native.Resource.borrowed("wrapped tensor");
    return new Tensor(new Memory(device, address, extent, resource), address, dtype, s, st, true);
  }

  /**
   * A non-owning contiguous view of memory owned elsewhere.
   *
   * @param device the device of the memory
   * @param address the address of element 0 (a device pointer for a CUDA device); the caller's word that the memory is
   *     there
   * @param dtype the element type
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a non-owning view of the memory; closing it does not free the memory
   */
  public static Tensor wrap(Device device, long address, DType dtype, long... shape) {
    long[] s = checkShape(shape);
    return wrap(device, address, dtype, s, contiguousStrides(s));
  }

  /**
   * A contiguous CPU tensor over the memory of a direct buffer (a mapped file region), from its position on. The
   * tensor, its views and every native call that pins them keep {@code buffer} reachable, so the memory stays valid
   * while any of them is in use; closing the tensor frees nothing (the buffer's own life cycle does).
   */
  static Tensor wrapHost(ByteBuffer buffer, DType dtype, long[] shape) {
    Native.ensureLoaded();
    check(buffer != null && buffer.isDirect(), "buffer", "a direct buffer", buffer);
    check(dtype != null, "dtype", "non-null", "null");
    long[] s = checkShape(shape);
    long bytes = Math.multiplyExact(numelOf(s), (long) dtype.byteSize());
    check(bytes > 0 && bytes <= buffer.remaining(), "buffer.remaining()", ">= " + bytes + " and > 0",
        buffer.remaining());
    ByteBuffer view = buffer.slice();
    long addr = directAddress(view);
    check(addr % dtype.byteSize() == 0, "buffer address",
        "aligned to the " + dtype.byteSize() + "-byte elements of " + dtype, "0x" + Long.toHexString(addr));
    Device cpu = Device.cpu();
    Native.Resource resource = Native.Resource.borrowed(
        new Native.AllocationInfo("mapped tensor", dtype, s, cpu, bytes), view);
    return new Tensor(new Memory(cpu, addr, bytes, resource), addr, dtype, s, contiguousStrides(s), true);
  }

  /** The address of a direct buffer's element 0 (the caller keeps the buffer reachable while it is used). */
  private static long directAddress(ByteBuffer direct) {
    check(direct.isDirect(), "buffer", "a direct buffer", direct);
    try (Pointer p = new Pointer(direct.slice())) {  // a slice starts at position 0: its address is its start
      return p.address();
    }
  }

  /**
   * The device the elements live on.
   *
   * @return the device the elements live on
   */
  public Device device() {
    return memory.device;
  }

  /**
   * The element type.
   *
   * @return the element type
   */
  public DType dtype() {
    return dtype;
  }

  /**
   * The sizes of the dimensions (a copy).
   *
   * @return the sizes of the dimensions (a copy)
   */
  public long[] shape() {
    return shape.clone();
  }

  /**
   * Strides in elements.
   *
   * @return strides in elements
   */
  public long[] strides() {
    return strides.clone();
  }

  /**
   * The number of dimensions.
   *
   * @return the number of dimensions
   */
  public int dim() {
    return shape.length;
  }

  /**
   * The size of dimension d.
   *
   * @param d the dimension, {@code 0 <= d < dim()}
   * @return the size of dimension d
   */
  public long size(int d) {
    checkDim(d);
    return shape[d];
  }

  /**
   * The stride of dimension d, in elements.
   *
   * @param d the dimension, {@code 0 <= d < dim()}
   * @return the stride of dimension d, in elements
   */
  public long stride(int d) {
    checkDim(d);
    return strides[d];
  }

  /**
   * The number of elements (1 for a scalar).
   *
   * @return the number of elements (1 for a scalar)
   */
  public long numel() {
    return numelOf(shape);
  }

  /**
   * Address of element 0 (a device pointer for CUDA tensors).
   *
   * @return address of element 0 (a device pointer for CUDA tensors)
   */
  public long address() {
    checkOpen();
    return address;
  }

  /**
   * True when no view or wrap has changed the row-major packing (always true for a tensor without elements).
   *
   * @return true when no view or wrap has changed the row-major packing (always true for a tensor without elements)
   */
  public boolean isContiguous() {
    for (long s : shape) {
      if (s == 0) {
        return true;
      }
    }
    long expected = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      if (shape[i] != 1 && strides[i] != expected) {
        return false;
      }
      expected *= shape[i];
    }
    return true;
  }

  /**
   * Whether this tensor (and its allocation) can still be used; safe to call from any thread.
   *
   * @return whether this tensor (and its allocation) can still be used
   */
  public boolean isOpen() {
    return !viewClosed && !memory.resource.isClosed();
  }

  /**
   * A view without dimension {@code d}, at index {@code index} of it.
   *
   * @param d the dimension, {@code 0 <= d < dim()}
   * @param index the index along dimension d
   * @return a view without dimension {@code d}, at index {@code index} of it
   */
  public Tensor select(int d, long index) {
    checkOpen();
    check(d >= 0 && d < shape.length, "dim", "in [0, " + shape.length + ")", d);
    check(index >= 0 && index < shape[d], "index", "in [0, " + shape[d] + ")", index);
    long[] s = new long[shape.length - 1];
    long[] st = new long[shape.length - 1];
    for (int i = 0, j = 0; i < shape.length; i++) {
      if (i != d) {
        s[j] = shape[i];
        st[j++] = strides[i];
      }
    }
    // a view without elements keeps the parent's address: no offset into (or past) the allocation is needed
    long offset = numelOf(s) == 0 ? 0 : index * strides[d] * dtype.byteSize();
    return new Tensor(memory, address + offset, dtype, s, st, false);
  }

  /**
   * A view of {@code length} entries of dimension {@code d} starting at {@code start}.
   *
   * @param d the dimension, {@code 0 <= d < dim()}
   * @param start the first entry of dimension d in the view
   * @param length the number of entries of dimension d in the view
   * @return a view of {@code length} entries of dimension {@code d} starting at {@code start}
   */
  public Tensor narrow(int d, long start, long length) {
    checkOpen();
    check(d >= 0 && d < shape.length, "dim", "in [0, " + shape.length + ")", d);
    check(start >= 0 && start <= shape[d], "start", "in [0, " + shape[d] + "]", start);
    check(length >= 0 && length <= shape[d] - start, "length", "in [0, " + (shape[d] - start) + "]", length);
    long[] s = shape.clone();
    s[d] = length;
    long offset = numelOf(s) == 0 ? 0 : start * strides[d] * dtype.byteSize();
    return new Tensor(memory, address + offset, dtype, s, strides.clone(), false);
  }

  /**
   * A view with a new shape over the same contiguous elements.
   *
   * @param shape the sizes of the dimensions (none for a scalar)
   * @return a view with a new shape over the same contiguous elements
   */
  public Tensor reshape(long... shape) {
    checkOpen();
    long[] s = checkShape(shape);
    check(numelOf(s) == numel(), "shape", "of " + numel() + " elements", Arrays.toString(s));
    check(isContiguous(), "tensor", "contiguous to reshape", "strides " + Arrays.toString(strides));
    return new Tensor(memory, address, dtype, s, contiguousStrides(s), false);
  }

  /**
   * Sets every byte to {@code value} (e.g. 0xff to poison an output before a run). Needs a contiguous tensor.
   *
   * @param value the byte value, 0 to 255
   */
  public void fillBytes(int value) {
    checkOpen();
    requireContiguous();
    if (numel() == 0) {
      return;
    }
    pin();
    try {
      Native.check(Fi4j.fi4j_memset(memory.device.code(), Native.pointer(address), value, byteSize()));
    } finally {
      unpin();
    }
  }

  /**
   * Fills a contiguous F16, BF16 or F32 tensor with pseudo-random values uniform in [-scale, scale]. The values
   * depend only on (seed, element index): the CPU and CUDA backends produce identical tensors. Queued on
   * {@code stream} (null = default) for CUDA.
   *
   * @param seed the seed: the same seed gives the same values on every backend
   * @param scale the half-width of the interval the values are drawn from
   * @param stream the stream to queue the fill on, or null for the device's default stream (ignored by the CPU backend)
   */
  public void fillUniform(long seed, float scale, Stream stream) {
    checkOpen();
    Checks.check(isContiguous(), "t", "contiguous", "strides " + Arrays.toString(strides));
    Checks.check(dtype.isFloatingPoint(), "t.dtype", "F16, BF16 or F32", dtype);
    Checks.check(Float.isFinite(scale), "scale", "finite", scale);
    if (stream != null) {
      Checks.check(stream.device().equals(device()), "stream.device", device().toString(), stream.device());
    }
    try (Native.Pins pins = new Native.Pins()) {
      Native.check(Fi4j.fi4j_fill_random(memory.device.code(), pointer(pins), dtype.code(), numel(), seed, scale,
          stream == null ? null : stream.pointer(pins)));
    }
  }

  /**
   * Bytes spanned by the elements (numel x element size for contiguous tensors).
   *
   * @return bytes spanned by the elements (numel x element size for contiguous tensors)
   */
  public long byteSize() {
    return numel() * dtype.byteSize();
  }

  // ---- copies from Java ----

  /**
   * Copies {@code data} in, converting to this F16, BF16 or F32 tensor's type.
   *
   * @param data the elements, row-major; as many as the shape holds
   */
  public void copyFrom(float[] data) {
    checkOpen();
    requireContiguous();
    check(data != null, "data", "non-null", "null");
    check(dtype.isFloatingPoint(), "tensor dtype", "F16, BF16 or F32 for a float[] copy", dtype);
    check(data.length == numel(), "data.length", "equal to numel " + numel(), data.length);
    if (data.length == 0) {
      return;
    }
    pin();
    try (FloatPointer src = new FloatPointer(data)) {
      if (memory.device.isCpu()) {  // host memory: convert in place
        Native.check(Fi4j.fi4j_convert_host(src, DType.F32.code(), Native.pointer(address), dtype.code(), data.length));
      } else if (dtype == DType.F32) {
        upload(src);
      } else {
        try (BytePointer staged = new BytePointer(byteSize())) {
          Native.check(Fi4j.fi4j_convert_host(src, DType.F32.code(), staged, dtype.code(), data.length));
          upload(staged);
        }
      }
    } finally {
      unpin();
    }
  }

  /**
   * Copies {@code data} into this I32 tensor.
   *
   * @param data the elements, row-major; as many as the shape holds
   */
  public void copyFrom(int[] data) {
    checkOpen();
    requireContiguous();
    check(data != null, "data", "non-null", "null");
    check(dtype == DType.I32, "tensor dtype", "I32 for an int[] copy", dtype);
    check(data.length == numel(), "data.length", "equal to numel " + numel(), data.length);
    if (data.length == 0) {
      return;
    }
    pin();
    try (IntPointer src = new IntPointer(data)) {
      upload(src);
    } finally {
      unpin();
    }
  }

  /**
   * Copies raw 16-bit patterns into this F16 or BF16 tensor.
   *
   * @param bits the 16-bit patterns, one per element, row-major
   */
  public void copyFromBits(short[] bits) {
    checkOpen();
    requireContiguous();
    check(bits != null, "bits", "non-null", "null");
    check(dtype.byteSize() == 2, "tensor dtype", "a 16-bit type for a short[] copy", dtype);
    check(bits.length == numel(), "bits.length", "equal to numel " + numel(), bits.length);
    if (bits.length == 0) {
      return;
    }
    pin();
    try (ShortPointer src = new ShortPointer(bits)) {
      upload(src);
    } finally {
      unpin();
    }
  }

  /**
   * Copies the remaining bytes of {@code buffer} (exactly {@link #byteSize()} of them) in, as raw bytes.
   *
   * @param buffer the buffer, with exactly byteSize() bytes remaining
   */
  public void copyFrom(ByteBuffer buffer) {
    checkOpen();
    requireContiguous();
    check(buffer != null, "buffer", "non-null", "null");
    check(buffer.remaining() == byteSize(), "buffer.remaining()", "equal to byteSize " + byteSize(),
        buffer.remaining());
    if (byteSize() == 0) {
      return;
    }
    pin();
    try (BytePointer staged = new BytePointer(byteSize())) {
      ByteBuffer dup = buffer.duplicate();
      staged.asByteBuffer().put(dup);
      upload(staged);
    } finally {
      unpin();
    }
  }

  /**
   * Copies a tensor of the same dtype and shape in (device to device, or across devices via the host).
   *
   * @param other the source, of this tensor's dtype and shape
   */
  public void copyFrom(Tensor other) {
    checkOpen();
    Checks.open(other, "other");
    requireContiguous();
    check(other.isContiguous(), "other", "contiguous", "strides " + Arrays.toString(other.strides));
    check(other.dtype == dtype, "other.dtype", dtype.toString(), other.dtype);
    check(Arrays.equals(other.shape, shape), "other.shape", Arrays.toString(shape), Arrays.toString(other.shape));
    if (byteSize() == 0) {
      return;
    }
    try (Native.Pins pins = new Native.Pins()) {
      Pointer dst = pointer(pins);
      Pointer src = other.pointer(pins);
      if (other.device().isCuda() && device().isCuda() && !other.device().equals(device())) {
        try (BytePointer staged = new BytePointer(byteSize())) {
          other.download(staged);
          upload(staged);
        }
        return;
      }
      Native.check(Fi4j.fi4j_memcpy(device().code(), dst, other.device().code(), src, byteSize()));
    }
  }

  /**
   * Copies the remaining bytes of the direct buffer {@code src} into this contiguous tensor from byte
   * {@code byteOffset} on, in one native copy with no staging (host memcpy for the CPU, cudaMemcpy for CUDA).
   */
  void copyFromHost(long byteOffset, ByteBuffer src) {
    checkOpen();
    requireContiguous();
    check(src != null && src.isDirect(), "src", "a direct buffer", src);
    long n = src.remaining();
    check(byteOffset >= 0 && byteOffset <= byteSize() - n, "byteOffset", "in [0, " + (byteSize() - n) + "]",
        byteOffset);
    if (n == 0) {
      return;
    }
    pin();
    try {
      Native.check(Fi4j.fi4j_memcpy(memory.device.code(), Native.pointer(address + byteOffset), Native.CPU,
          Native.pointer(directAddress(src)), n));
    } finally {
      unpin();
      java.lang.ref.Reference.reachabilityFence(src);
    }
  }

  /**
   * Copies {@code dst.remaining()} bytes of this contiguous tensor, from byte {@code byteOffset} on, into the direct
   * buffer {@code dst} (its position is not moved), in one native copy.
   */
  void copyToHost(long byteOffset, ByteBuffer dst) {
    checkOpen();
    requireContiguous();
    check(dst != null && dst.isDirect() && !dst.isReadOnly(), "dst", "a writable direct buffer", dst);
    long n = dst.remaining();
    check(byteOffset >= 0 && byteOffset <= byteSize() - n, "byteOffset", "in [0, " + (byteSize() - n) + "]",
        byteOffset);
    if (n == 0) {
      return;
    }
    pin();
    try {
      Native.check(Fi4j.fi4j_memcpy(Native.CPU, Native.pointer(directAddress(dst)), memory.device.code(),
          Native.pointer(address + byteOffset), n));
    } finally {
      unpin();
      java.lang.ref.Reference.reachabilityFence(dst);
    }
  }

  /**
   * A contiguous copy of this tensor on {@code target}.
   *
   * @param target the device of the copy
   * @return a contiguous copy of this tensor on {@code target}
   */
  public Tensor to(Device target) {
    checkOpen();
    check(target != null, "target", "non-null", "null");
    if (!isContiguous()) {
      throw InvalidArgumentException.of("tensor", "contiguous to copy across devices", Arrays.toString(strides));
    }
    Tensor t = empty(target, dtype, shape);
    try {
      t.copyFrom(this);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  // ---- copies to Java ----

  /**
   * The elements as floats (F16, BF16 or F32 tensors).
   *
   * @return the elements as floats (F16, BF16 or F32 tensors)
   */
  public float[] toFloatArray() {
    checkOpen();
    requireContiguous();
    check(dtype.isFloatingPoint(), "tensor dtype", "F16, BF16 or F32 for a float[] copy", dtype);
    int n = javaLength();
    float[] out = new float[n];
    if (n == 0) {
      return out;
    }
    pin();
    try (BytePointer staged = new BytePointer(byteSize()); FloatPointer dst = new FloatPointer(n)) {
      download(staged);
      Native.check(Fi4j.fi4j_convert_host(staged, dtype.code(), dst, DType.F32.code(), n));
      dst.get(out);
    } finally {
      unpin();
    }
    return out;
  }

  /**
   * The elements of an I32 tensor.
   *
   * @return the elements of an I32 tensor
   */
  public int[] toIntArray() {
    checkOpen();
    requireContiguous();
    check(dtype == DType.I32, "tensor dtype", "I32 for an int[] copy", dtype);
    int n = javaLength();
    int[] out = new int[n];
    if (n == 0) {
      return out;
    }
    pin();
    try (IntPointer dst = new IntPointer(n)) {
      download(dst);
      dst.get(out);
    } finally {
      unpin();
    }
    return out;
  }

  /**
   * The raw 16-bit patterns of an F16 or BF16 tensor.
   *
   * @return the raw 16-bit patterns of an F16 or BF16 tensor
   */
  public short[] toBits() {
    checkOpen();
    requireContiguous();
    check(dtype.byteSize() == 2, "tensor dtype", "a 16-bit type for a short[] copy", dtype);
    int n = javaLength();
    short[] out = new short[n];
    if (n == 0) {
      return out;
    }
    pin();
    try (ShortPointer dst = new ShortPointer(n)) {
      download(dst);
      dst.get(out);
    } finally {
      unpin();
    }
    return out;
  }

  /**
   * Copies the raw bytes out into {@code buffer} (which must have {@link #byteSize()} bytes remaining).
   *
   * @param buffer the buffer, with exactly byteSize() bytes remaining
   */
  public void copyTo(ByteBuffer buffer) {
    checkOpen();
    requireContiguous();
    check(buffer != null, "buffer", "non-null", "null");
    check(!buffer.isReadOnly(), "buffer", "writable", "a read-only buffer");
    check(buffer.remaining() >= byteSize(), "buffer.remaining()", ">= byteSize " + byteSize(), buffer.remaining());
    if (byteSize() == 0) {
      return;
    }
    pin();
    try (BytePointer staged = new BytePointer(byteSize())) {
      download(staged);
      buffer.put(staged.asByteBuffer());
    } finally {
      unpin();
    }
  }

  /**
   * Closes this handle; idempotent. For a tensor that owns its allocation, the first call frees it (after any
   * native call still using it returns) and every view of it stops working. Closing a wrap or a view frees
   * nothing.
   */
  @Override
  public void close() {
    if (!isRoot) {
      viewClosed = true;
      return;
    }
    memory.resource.close();
  }

  @Override
  public String toString() {
    return "Tensor(" + dtype + ", " + Arrays.toString(shape) + ", " + memory.device + (isContiguous() ? "" :
        ", strides " + Arrays.toString(strides)) + (isOpen() ? "" : ", closed") + ")";
  }

  // ---- internals ----

  /** The address as a pointer, without a pin (the caller keeps the tensor open and reachable during the call). */
  Pointer pointer() {
    checkOpen();
    return Native.pointer(address);
  }

  /**
   * The address as a pointer, pinned in {@code pins} until they are closed: a concurrent close() then waits for
   * the call, and the Cleaner cannot free the memory while it runs.
   */
  Pointer pointer(Native.Pins pins) {
    checkOpen();
    pins.add(memory.resource);
    return Native.pointer(address);
  }

  void checkOpen() {
    if (!isOpen()) {
      throw new IllegalStateException("Tensor is closed: " + this);
    }
  }

  /** Bytes from element 0 to one past the last element (0 for an empty tensor). */
  long extentBytes() {
    return extentBytes(shape, strides, dtype);
  }

  private void pin() {
    if (viewClosed) {
      throw new IllegalStateException("Tensor is closed: " + this);
    }
    memory.resource.pin();
  }

  private void unpin() {
    memory.resource.unpin();
  }

  private void upload(Pointer hostSource) {
    Native.check(Fi4j.fi4j_memcpy(memory.device.code(), Native.pointer(address), Native.CPU, hostSource, byteSize()));
  }

  private void download(Pointer hostTarget) {
    Native.check(Fi4j.fi4j_memcpy(Native.CPU, hostTarget, memory.device.code(), Native.pointer(address), byteSize()));
  }

  private void requireContiguous() {
    if (!isContiguous()) {
      throw InvalidArgumentException.of("tensor", "contiguous for this copy", "strides " + Arrays.toString(strides));
    }
  }

  private void checkDim(int d) {
    check(d >= 0 && d < shape.length, "dim", "in [0, " + shape.length + ")", d);
  }

  private int javaLength() {
    long n = numel();
    check(n <= Integer.MAX_VALUE - 8, "numel", "small enough for a Java array", n);
    return (int) n;
  }

  private static long[] checkShape(long[] shape) {
    check(shape != null, "shape", "non-null", "null");
    for (int i = 0; i < shape.length; i++) {
      check(shape[i] >= 0, "shape[" + i + "]", ">= 0", shape[i]);
    }
    try {
      Math.multiplyExact(numelOf(shape), 8L);  // element count and byte size must fit in a long
    } catch (ArithmeticException e) {
      throw InvalidArgumentException.of("shape", "of fewer than 2^60 elements", Arrays.toString(shape));
    }
    return shape.clone();
  }

  private static long numelOf(long[] shape) {
    long n = 1;
    for (long s : shape) {
      n = Math.multiplyExact(n, s);
    }
    return n;
  }

  /** (largest element offset + 1) x element size, exact (throws ArithmeticException on overflow). */
  private static long extentBytes(long[] shape, long[] strides, DType dtype) {
    long last = 0;
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] == 0) {
        return 0;
      }
      last = Math.addExact(last, Math.multiplyExact(shape[i] - 1, strides[i]));
    }
    return Math.multiplyExact(Math.addExact(last, 1), (long) dtype.byteSize());
  }

  static long[] contiguousStrides(long[] shape) {
    long[] st = new long[shape.length];
    long acc = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      st[i] = acc;
      acc *= Math.max(shape[i], 1);
    }
    return st;
  }

  /** The core's side of {@link CoreAccess}: what the op packages may use beyond the public API. */
  private static final class Bridge implements CoreAccess {
    @Override
    public Pointer pointer(Tensor tensor, Native.Pins pins) {
      return tensor.pointer(pins);
    }

    @Override
    public Pointer pointer(Tensor tensor) {
      return tensor.pointer();
    }

    @Override
    public Pointer pointer(Stream stream, Native.Pins pins) {
      return stream.pointer(pins);
    }

    @Override
    public Pointer pointer(Stream stream) {
      return stream.pointer();
    }

    @Override
    public void checkOpen(Tensor tensor) {
      tensor.checkOpen();
    }

    @Override
    public void checkOpen(Stream stream) {
      stream.checkOpen();
    }

    @Override
    public long extentBytes(Tensor tensor) {
      return tensor.extentBytes();
    }

    @Override
    public Tensor allocate(String what, Device device, DType dtype, long... shape) {
      return Tensor.allocate(what, device, dtype, shape);
    }

    @Override
    public Tensor allocateUntracked(String what, Device device, DType dtype, long... shape) {
      return Tensor.allocate(what, false, device, dtype, shape);
    }

    @Override
    public Tensor wrapHost(ByteBuffer buffer, DType dtype, long[] shape) {
      return Tensor.wrapHost(buffer, dtype, shape);
    }

    @Override
    public void copyFromHost(Tensor dst, long byteOffset, ByteBuffer src) {
      dst.copyFromHost(byteOffset, src);
    }

    @Override
    public void copyToHost(Tensor src, long byteOffset, ByteBuffer dst) {
      src.copyToHost(byteOffset, dst);
    }

    @Override
    public int code(Device device) {
      return device.code();
    }

    @Override
    public int code(DType dtype) {
      return dtype.code();
    }

    @Override
    public int code(KernelConfig.Op op) {
      return op.code();
    }
  }

  private static void check(boolean ok, String name, String expected, Object actual) {
    if (!ok) {
      throw InvalidArgumentException.of(name, expected, actual);
    }
  }
}
