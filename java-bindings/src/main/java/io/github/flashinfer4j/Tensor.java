package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.ShortPointer;

/**
 * A strided n-dimensional array in the memory of a {@link Device}: device memory for CUDA, host memory for the
 * CPU backend. Either owns its allocation (freed by {@link #close()}) or is a view: of another tensor (it then
 * stops working when that tensor is closed) or of memory owned by another library ({@link #wrap}).
 *
 * <p>Strides are in elements; the last dimension of tensors handed to attention ops must be contiguous. Copies to
 * and from Java arrays and NIO buffers need a contiguous tensor; float arrays convert to and from F16/BF16
 * (round to nearest even). Not thread-safe: use from one thread at a time.
 */
public final class Tensor implements AutoCloseable {
  /** Shared by a tensor and its views: the allocation and whether it has been released. */
  private static final class Memory {
    final Device device;
    final long address;
    final boolean owned;
    boolean closed;

    Memory(Device device, long address, boolean owned) {
      this.device = device;
      this.address = address;
      this.owned = owned;
    }
  }

  private final Memory memory;
  private final long address;
  private final DType dtype;
  private final long[] shape;
  private final long[] strides;
  private final boolean isRoot;

  private Tensor(Memory memory, long address, DType dtype, long[] shape, long[] strides, boolean isRoot) {
    this.memory = memory;
    this.address = address;
    this.dtype = dtype;
    this.shape = shape;
    this.strides = strides;
    this.isRoot = isRoot;
  }

  /** A new uninitialised contiguous tensor. */
  public static Tensor empty(Device device, DType dtype, long... shape) {
    Native.ensureLoaded();
    check(device != null, "device", "non-null", "null");
    check(dtype != null, "dtype", "non-null", "null");
    long[] s = checkShape(shape);
    long numel = numelOf(s);
    long bytes = Math.multiplyExact(numel, (long) dtype.byteSize());
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Native.check(Fi4j.fi4j_malloc(device.code(), bytes, out));
      long addr = out.get(0).address();
      return new Tensor(new Memory(device, addr, true), addr, dtype, s, contiguousStrides(s), true);
    }
  }

  /** A new contiguous tensor of zeros. */
  public static Tensor zeros(Device device, DType dtype, long... shape) {
    Tensor t = empty(device, dtype, shape);
    t.fillBytes(0);
    return t;
  }

  /** A new tensor holding {@code data} (converted to {@code dtype}, which must be F16, BF16 or F32). */
  public static Tensor fromFloats(Device device, DType dtype, float[] data, long... shape) {
    Tensor t = empty(device, dtype, shape);
    try {
      t.copyFrom(data);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  /** A new I32 tensor holding {@code data}. */
  public static Tensor fromInts(Device device, int[] data, long... shape) {
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
   * that {@code address} holds the described elements for as long as the view is used; closing the view does not
   * free it.
   */
  public static Tensor wrap(Device device, long address, DType dtype, long[] shape, long[] strides) {
    Native.ensureLoaded();
    check(device != null, "device", "non-null", "null");
    check(dtype != null, "dtype", "non-null", "null");
    check(address != 0, "address", "non-zero", "0");
    long[] s = checkShape(shape);
    check(strides != null && strides.length == s.length, "strides", "of length " + s.length,
        strides == null ? "null" : strides.length);
    for (int i = 0; i < strides.length; i++) {
      check(strides[i] >= 0, "strides[" + i + "]", ">= 0", strides[i]);
    }
    return new Tensor(new Memory(device, address, false), address, dtype, s, strides.clone(), true);
  }

  /** A non-owning contiguous view of memory owned elsewhere. */
  public static Tensor wrap(Device device, long address, DType dtype, long... shape) {
    long[] s = checkShape(shape);
    return wrap(device, address, dtype, s, contiguousStrides(s));
  }

  public Device device() {
    return memory.device;
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  /** Strides in elements. */
  public long[] strides() {
    return strides.clone();
  }

  public int dim() {
    return shape.length;
  }

  public long size(int d) {
    return shape[d];
  }

  public long stride(int d) {
    return strides[d];
  }

  public long numel() {
    return numelOf(shape);
  }

  /** Address of element 0 (a device pointer for CUDA tensors). */
  public long address() {
    checkOpen();
    return address;
  }

  /** True when no view or wrap has changed the row-major packing. */
  public boolean isContiguous() {
    long expected = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      if (shape[i] != 1 && strides[i] != expected) {
        return false;
      }
      expected *= shape[i];
    }
    return true;
  }

  /** Whether this tensor (and its allocation) can still be used. */
  public boolean isOpen() {
    return !memory.closed;
  }

  /** A view without dimension {@code d}, at index {@code index} of it. */
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
    return new Tensor(memory, address + index * strides[d] * dtype.byteSize(), dtype, s, st, false);
  }

  /** A view of {@code length} entries of dimension {@code d} starting at {@code start}. */
  public Tensor narrow(int d, long start, long length) {
    checkOpen();
    check(d >= 0 && d < shape.length, "dim", "in [0, " + shape.length + ")", d);
    check(start >= 0 && start <= shape[d], "start", "in [0, " + shape[d] + "]", start);
    check(length >= 0 && start + length <= shape[d], "length", "in [0, " + (shape[d] - start) + "]", length);
    long[] s = shape.clone();
    s[d] = length;
    return new Tensor(memory, address + start * strides[d] * dtype.byteSize(), dtype, s, strides.clone(), false);
  }

  /** A view with a new shape over the same contiguous elements. */
  public Tensor reshape(long... newShape) {
    checkOpen();
    long[] s = checkShape(newShape);
    check(numelOf(s) == numel(), "shape", "of " + numel() + " elements", Arrays.toString(s));
    check(isContiguous(), "tensor", "contiguous to reshape", "strides " + Arrays.toString(strides));
    return new Tensor(memory, address, dtype, s, contiguousStrides(s), false);
  }

  /** Sets every byte to {@code value} (e.g. 0xff to poison an output before a run). Needs a contiguous tensor. */
  public void fillBytes(int value) {
    checkOpen();
    requireContiguous();
    Native.check(Fi4j.fi4j_memset(memory.device.code(), Native.pointer(address), value, byteSize()));
  }

  /** Bytes spanned by the elements (numel x element size for contiguous tensors). */
  public long byteSize() {
    return numel() * dtype.byteSize();
  }

  // ---- copies from Java ----

  /** Copies {@code data} in, converting to this F16, BF16 or F32 tensor's type. */
  public void copyFrom(float[] data) {
    checkOpen();
    requireContiguous();
    check(data != null, "data", "non-null", "null");
    check(dtype.isFloatingPoint(), "tensor dtype", "F16, BF16 or F32 for a float[] copy", dtype);
    check(data.length == numel(), "data.length", "equal to numel " + numel(), data.length);
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
    }
  }

  /** Copies {@code data} into this I32 tensor. */
  public void copyFrom(int[] data) {
    checkOpen();
    requireContiguous();
    check(data != null, "data", "non-null", "null");
    check(dtype == DType.I32, "tensor dtype", "I32 for an int[] copy", dtype);
    check(data.length == numel(), "data.length", "equal to numel " + numel(), data.length);
    try (IntPointer src = new IntPointer(data)) {
      upload(src);
    }
  }

  /** Copies raw 16-bit patterns into this F16 or BF16 tensor. */
  public void copyFromBits(short[] bits) {
    checkOpen();
    requireContiguous();
    check(bits != null, "bits", "non-null", "null");
    check(dtype.byteSize() == 2, "tensor dtype", "a 16-bit type for a short[] copy", dtype);
    check(bits.length == numel(), "bits.length", "equal to numel " + numel(), bits.length);
    try (ShortPointer src = new ShortPointer(bits)) {
      upload(src);
    }
  }

  /** Copies the remaining bytes of {@code buffer} (exactly {@link #byteSize()} of them) in, as raw bytes. */
  public void copyFrom(ByteBuffer buffer) {
    checkOpen();
    requireContiguous();
    check(buffer != null, "buffer", "non-null", "null");
    check(buffer.remaining() == byteSize(), "buffer.remaining()", "equal to byteSize " + byteSize(),
        buffer.remaining());
    try (BytePointer staged = new BytePointer(byteSize())) {
      ByteBuffer dup = buffer.duplicate();
      staged.asByteBuffer().put(dup);
      upload(staged);
    }
  }

  /** Copies a tensor of the same dtype and shape in (device to device, or across devices via the host). */
  public void copyFrom(Tensor other) {
    checkOpen();
    other.checkOpen();
    requireContiguous();
    check(other.isContiguous(), "other", "contiguous", "strides " + Arrays.toString(other.strides));
    check(other.dtype == dtype, "other.dtype", dtype.toString(), other.dtype);
    check(Arrays.equals(other.shape, shape), "other.shape", Arrays.toString(shape), Arrays.toString(other.shape));
    if (other.device().isCuda() && device().isCuda() && !other.device().equals(device())) {
      try (BytePointer staged = new BytePointer(byteSize())) {
        other.download(staged);
        upload(staged);
      }
      return;
    }
    Native.check(Fi4j.fi4j_memcpy(device().code(), Native.pointer(address), other.device().code(),
        Native.pointer(other.address), byteSize()));
  }

  /** A contiguous copy of this tensor on {@code target}. */
  public Tensor to(Device target) {
    Tensor t = empty(target, dtype, shape);
    try {
      if (isContiguous()) {
        t.copyFrom(this);
      } else {
        throw InvalidArgumentException.of("tensor", "contiguous to copy across devices", Arrays.toString(strides));
      }
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  // ---- copies to Java ----

  /** The elements as floats (F16, BF16 or F32 tensors). */
  public float[] toFloatArray() {
    checkOpen();
    requireContiguous();
    check(dtype.isFloatingPoint(), "tensor dtype", "F16, BF16 or F32 for a float[] copy", dtype);
    int n = javaLength();
    float[] out = new float[n];
    try (BytePointer staged = new BytePointer(byteSize()); FloatPointer dst = new FloatPointer(n)) {
      download(staged);
      Native.check(Fi4j.fi4j_convert_host(staged, dtype.code(), dst, DType.F32.code(), n));
      dst.get(out);
    }
    return out;
  }

  /** The elements of an I32 tensor. */
  public int[] toIntArray() {
    checkOpen();
    requireContiguous();
    check(dtype == DType.I32, "tensor dtype", "I32 for an int[] copy", dtype);
    int n = javaLength();
    int[] out = new int[n];
    try (IntPointer dst = new IntPointer(n)) {
      download(dst);
      dst.get(out);
    }
    return out;
  }

  /** The raw 16-bit patterns of an F16 or BF16 tensor. */
  public short[] toBits() {
    checkOpen();
    requireContiguous();
    check(dtype.byteSize() == 2, "tensor dtype", "a 16-bit type for a short[] copy", dtype);
    int n = javaLength();
    short[] out = new short[n];
    try (ShortPointer dst = new ShortPointer(n)) {
      download(dst);
      dst.get(out);
    }
    return out;
  }

  /** Copies the raw bytes out into {@code buffer} (which must have {@link #byteSize()} bytes remaining). */
  public void copyTo(ByteBuffer buffer) {
    checkOpen();
    requireContiguous();
    check(buffer != null, "buffer", "non-null", "null");
    check(buffer.remaining() >= byteSize(), "buffer.remaining()", ">= byteSize " + byteSize(), buffer.remaining());
    try (BytePointer staged = new BytePointer(byteSize())) {
      download(staged);
      buffer.put(staged.asByteBuffer());
    }
  }

  @Override
  public void close() {
    if (!isRoot || memory.closed) {
      return;
    }
    memory.closed = true;
    if (memory.owned) {
      Native.check(Fi4j.fi4j_free(memory.device.code(), Native.pointer(memory.address)));
    }
  }

  @Override
  public String toString() {
    return "Tensor(" + dtype + ", " + Arrays.toString(shape) + ", " + memory.device + (isContiguous() ? "" :
        ", strides " + Arrays.toString(strides)) + (memory.closed ? ", closed" : "") + ")";
  }

  // ---- internals ----

  Pointer pointer() {
    checkOpen();
    return Native.pointer(address);
  }

  void checkOpen() {
    if (memory.closed) {
      throw new IllegalStateException("tensor is closed: " + this);
    }
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

  static long[] contiguousStrides(long[] shape) {
    long[] st = new long[shape.length];
    long acc = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      st[i] = acc;
      acc *= Math.max(shape[i], 1);
    }
    return st;
  }

  private static void check(boolean ok, String name, String expected, Object actual) {
    if (!ok) {
      throw InvalidArgumentException.of(name, expected, actual);
    }
  }
}
