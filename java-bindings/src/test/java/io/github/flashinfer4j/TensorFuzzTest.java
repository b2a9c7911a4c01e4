package io.github.flashinfer4j;

import static io.github.flashinfer4j.testing.Fuzz.IAE;
import static io.github.flashinfer4j.testing.Fuzz.ISE;
import static io.github.flashinfer4j.testing.Fuzz.UNDER_SANITIZER;

import io.github.flashinfer4j.testing.Fuzz;
import io.github.flashinfer4j.testing.Gpu;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz cases of the core (tensor factories, copies and views, streams, devices) for {@link Fuzz}: each mutation
 * must give the typed exception it names; the control (views and copies) must succeed.
 */
class TensorFuzzTest {
  private final Fuzz.Table<Fuzz.Env> table = new Fuzz.Table<>();

  private void add(String name, Class<? extends Throwable> type, String fragments, Fuzz.Maker<Fuzz.Env> maker) {
    table.add(name, type, fragments, maker);
  }




  private void valid(String name, Fuzz.Maker<Fuzz.Env> maker) {
    table.valid(name, maker);
  }

  static List<Device> devices() {
    return Gpu.devices();
  }

  private void tensorFactories() {
    add("Tensor.empty negative dim", IAE, "shape[", e -> {
      long[] s = {1 + e.rnd.nextInt(4), 1 + e.rnd.nextInt(4), 1 + e.rnd.nextInt(4)};
      s[e.rnd.nextInt(3)] = e.rnd.nextBoolean() ? -1 : Long.MIN_VALUE + e.rnd.nextInt(10);
      return () -> Tensor.empty(e.dev, e.anyDtype(), s);
    });
    add("Tensor.empty numel overflow", IAE, "shape must be of fewer than", e -> {
      long a = 1L << (20 + e.rnd.nextInt(43));
      long b = (Long.MAX_VALUE / a) + 1 + e.rnd.nextInt(5);
      return () -> Tensor.empty(e.dev, e.anyDtype(), a, b, 1 + e.rnd.nextInt(3));
    });
    // a failing cudaMalloc is an API error that compute-sanitizer reports: CPU only under the sanitizer
    table.add(new Fuzz.Mutation<>("Tensor.empty unallocatable", List.of(CudaException.class),
        new String[] {"allocation", "cudaMalloc"},
        e -> () -> Tensor.empty(e.dev, DType.U8, (1L << 56) + e.rnd.nextInt(1 << 20)), false, UNDER_SANITIZER));
    add("Tensor.zeros negative dim", IAE, "shape[", e -> () -> Tensor.zeros(e.dev, e.dtype, 3, -e.rnd.nextInt(9) - 1));
    add("Tensor.empty null", IAE, "device|dtype|shape", e -> {
      int which = e.rnd.nextInt(3);
      return () -> Tensor.empty(which == 0 ? null : e.dev, which == 1 ? null : e.dtype,
          which == 2 ? null : new long[] {2});
    });
    add("Tensor.fromFloats length", IAE, "data.length", e -> {
      long n = 1 + e.rnd.nextInt(10);
      float[] data = new float[(int) n + (e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(3) : -1)];
      return () -> Tensor.fromFloats(e.dev, e.dtype, data, n);
    });
    add("Tensor.fromFloats dtype", IAE, "tensor dtype", e -> {
      DType[] bad = {DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> Tensor.fromFloats(e.dev, dt, new float[4], 4);
    });
    add("Tensor.fromFloats null", IAE, "data", e -> () -> Tensor.fromFloats(e.dev, e.dtype, null, 4));
    add("Tensor.fromInts length", IAE, "data.length", e -> () -> Tensor.fromInts(e.dev, new int[3], 2, 2));
    add("Tensor.fromInts null", IAE, "data", e -> () -> Tensor.fromInts(e.dev, null, 2));
    add("Tensor.wrap zero address", IAE, "address", e -> () -> Tensor.wrap(e.dev, 0, e.dtype, 4));
    add("Tensor.wrap misaligned", IAE, "address", e -> {
      Tensor t = e.small(DType.F32);
      long addr = t.address() + 1 + e.rnd.nextInt(3);
      return () -> Tensor.wrap(e.dev, addr, DType.F32, 2);
    });
    add("Tensor.wrap strides length", IAE, "strides", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {2, 2}, new long[] {2});
    });
    add("Tensor.wrap negative stride", IAE, "strides[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {2, 2}, new long[] {2, -1 - e.rnd.nextInt(5)});
    });
    add("Tensor.wrap extent overflow", IAE, "strides", e -> {
      Tensor t = e.small(e.dtype);
      long stride = Long.MAX_VALUE / (2 + e.rnd.nextInt(3));
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {4, 2}, new long[] {stride, 1});
    });
    add("Tensor.wrap negative shape", IAE, "shape[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, 2, -3);
    });
  }

  private void tensorCopiesAndViews() {
    add("copyFrom(float[]) length", IAE, "data.length", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom(new float[(int) t.numel() + 1 + e.rnd.nextInt(4)]);
    });
    add("copyFrom(float[]) null", IAE, "data", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom((float[]) null);
    });
    add("copyFrom(float[]) dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.I32 : DType.U8);
      return () -> t.copyFrom(new float[(int) t.numel()]);
    });
    add("copyFrom(float[]) non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 0);
      return () -> t.copyFrom(new float[(int) t.numel()]);
    });
    add("copyFrom(int[]) dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom(new int[(int) t.numel()]);
    });
    add("copyFrom(int[]) length", IAE, "data.length", e -> {
      Tensor t = e.small(DType.I32);
      return () -> t.copyFrom(new int[(int) t.numel() - 1]);
    });
    add("copyFromBits dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.F32 : DType.U8);
      return () -> t.copyFromBits(new short[(int) t.numel()]);
    });
    add("copyFromBits length", IAE, "bits.length", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFromBits(new short[(int) t.numel() * 2]);
    });
    add("copyFrom(ByteBuffer) remaining", IAE, "buffer.remaining()", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyFrom(ByteBuffer.allocate((int) t.byteSize() + (e.rnd.nextBoolean() ? 1 : -1)));
    });
    add("copyFrom(ByteBuffer) null", IAE, "buffer", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyFrom((ByteBuffer) null);
    });
    add("copyTo(ByteBuffer) too small", IAE, "buffer.remaining()", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyTo(ByteBuffer.allocateDirect((int) t.byteSize() - 1));
    });
    add("copyTo(ByteBuffer) read-only", IAE, "buffer", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyTo(ByteBuffer.allocate((int) t.byteSize()).asReadOnlyBuffer());
    });
    add("copyFrom(Tensor) shape", IAE, "other.shape", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.own(Tensor.zeros(e.dev, e.dtype, a.size(0) + 1, a.size(1)));
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) dtype", IAE, "other.dtype", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.own(Tensor.zeros(e.dev, e.otherDtype, a.shape()));
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) null", IAE, "other", e -> {
      Tensor a = e.small(e.dtype);
      return () -> a.copyFrom((Tensor) null);
    });
    add("copyFrom(Tensor) closed", ISE, "closed", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.small(e.dtype);
      b.close();
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) non-contiguous", IAE, "other", e -> {
      Tensor big = e.small(e.dtype);
      Tensor col = big.select(1, 0);
      Tensor a = e.own(Tensor.zeros(e.dev, e.dtype, col.shape()));
      return () -> a.copyFrom(col);
    });
    add("toFloatArray dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.I32 : DType.FP8_E4M3);
      return t::toFloatArray;
    });
    add("toIntArray dtype", IAE, "tensor dtype", e -> e.small(e.dtype)::toIntArray);
    add("toBits dtype", IAE, "tensor dtype", e -> e.small(DType.F32)::toBits);
    add("copy out non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, e.rnd.nextInt(2));
      return e.rnd.nextBoolean() ? t::toFloatArray : t::toBits;
    });
    add("to(null)", IAE, "target", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.to(null);
    });
    add("closed tensor use", ISE, "closed", e -> {
      Tensor t = e.small(e.dtype);
      t.close();
      Fuzz.Call[] uses = {t::toBits, t::toFloatArray, () -> t.select(0, 0), () -> t.narrow(0, 0, 1),
        () -> t.reshape(t.numel()),
        () -> t.fillBytes(0), t::address, () -> t.to(e.dev), () -> t.copyFrom(new float[(int) t.numel()]),
        () -> t.copyTo(ByteBuffer.allocate((int) t.byteSize()))};
      return uses[e.rnd.nextInt(uses.length)];
    });
    add("closed view use", ISE, "closed", e -> {
      Tensor t = e.small(e.dtype);
      Tensor v = t.select(0, 0);
      if (e.rnd.nextBoolean()) {
        v.close();
      } else {
        t.close();
      }
      return e.rnd.nextBoolean() ? v::toBits : () -> v.fillBytes(1);
    });
    add("select bad dim", IAE, "dim", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.select(e.outside(0, 2), 0);
    });
    add("select bad index", IAE, "index", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.select(0, e.outsideLong(0, t.size(0)));
    });
    add("narrow bad start", IAE, "start", e -> {
      Tensor t = e.small(e.dtype);
      long start = e.rnd.nextBoolean() ? -1 - e.rnd.nextInt(10) : t.size(1) + 1 + e.rnd.nextInt(10);
      return () -> t.narrow(1, start, 0);
    });
    add("narrow bad length", IAE, "length", e -> {
      Tensor t = e.small(e.dtype);
      long start = e.rnd.nextInt((int) t.size(1));
      long length = e.rnd.nextBoolean() ? Long.MAX_VALUE - e.rnd.nextInt(3) : t.size(1) - start + 1;
      return () -> t.narrow(1, start, e.rnd.nextBoolean() ? length : -1);
    });
    add("reshape numel", IAE, "shape", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.reshape(t.numel() + 1 + e.rnd.nextInt(5));
    });
    add("reshape negative", IAE, "shape[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.reshape(-t.numel());
    });
    add("reshape non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 0);
      return () -> t.reshape(t.numel());
    });
    add("size/stride bad dim", IAE, "dim", e -> {
      Tensor t = e.small(e.dtype);
      int d = e.outside(0, 2);
      return e.rnd.nextBoolean() ? () -> t.size(d) : () -> t.stride(d);
    });
    add("fillBytes non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 1);
      return () -> t.fillBytes(0);
    });
  }

  private void streamsAndDevices() {
    add("Stream null device", IAE, "device", e -> {
      switch (e.rnd.nextInt(3)) {
        case 0:
          return () -> Stream.create(null);
        case 1:
          return () -> Stream.defaultStream(null);
        default:
          return () -> Stream.wrap(null, 0);
      }
    });
    add("Stream closed", ISE, "closed", e -> {
      Stream s = e.rnd.nextBoolean() ? Stream.create(e.dev) : Stream.defaultStream(e.dev);
      s.close();
      return e.rnd.nextBoolean() ? s::synchronize : s::handle;
    });
    table.add(new Fuzz.Mutation<>("Device.cuda bad index", List.of(NoCudaDeviceException.class, IAE),
        new String[] {"index", "no CUDA device"}, e -> {
          int count = Device.cudaDeviceCount();
          int bad = e.outside(0, count);
          return () -> Device.cuda(bad);
        }, false, false));
  }

  /** Unmutated calls: they must succeed, and write nothing outside their buffers. */
  private void controls() {
    valid("valid: views and copies", e -> {
      Tensor t = e.small(e.dtype);
      return () -> {
        Tensor row = t.select(0, t.size(0) - 1);
        row.copyFrom(new float[(int) row.numel()]);
        t.narrow(1, 1, t.size(1) - 1).select(0, 0).toString();
        t.reshape(t.numel()).narrow(0, t.numel(), 0).toBits();
        try (Tensor c = t.to(e.dev)) {
          c.copyFrom(t);
        }
      };
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void malformedArgumentsGiveTypedExceptions(Device device) {
    tensorFactories();
    tensorCopiesAndViews();
    streamsAndDevices();
    controls();
    Fuzz.run("core", device, table, Fuzz.Env::new);
  }
}
