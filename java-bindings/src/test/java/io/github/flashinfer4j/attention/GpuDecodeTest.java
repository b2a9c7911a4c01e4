package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CUDA against the CPU reference (and the float64 reference) over random shapes with the edges: kv_len 1, page
 * boundaries, page size 1, empty requests, GQA groups 1..16, NHD and HND, separate/combined/strided caches, both
 * dtypes, soft cap, window, RoPE. Outputs are poisoned before each run so unwritten elements show as NaN.
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuDecodeTest {
  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    Random rnd = new Random(2024);
    int[] groups = {1, 2, 3, 4, 5, 7, 8, 16};
    int[] dims = {64, 128, 256};
    int[] pageSizes = {1, 2, 5, 16, 64};
    long seed = 100;
    for (int g : groups) {
      for (int dim : dims) {
        int p = pageSizes[rnd.nextInt(pageSizes.length)];
        int hkv = 1 + rnd.nextInt(3);
        int batch = 1 + rnd.nextInt(6);
        int[] lens = new int[batch + 4];
        for (int b = 0; b < batch; b++) {
          lens[b] = rnd.nextInt(3 * p + 200);
        }
        lens[batch] = 1;
        lens[batch + 1] = 0;
        lens[batch + 2] = p;
        lens[batch + 3] = p + 1;
        DType dt = rnd.nextBoolean() ? DType.BF16 : DType.F16;
        KvLayout layout = rnd.nextBoolean() ? KvLayout.NHD : KvLayout.HND;
        DecodeProblem.CacheKind kind = DecodeProblem.CacheKind.values()[rnd.nextInt(3)];
        DecodeProblem prob = new DecodeProblem(seed++, dt, layout, p, hkv * g, hkv, dim, lens, kind);
        AttentionOptions opt;
        switch (rnd.nextInt(5)) {
          case 0:
            opt = AttentionOptions.builder().logitsSoftCap(30).build();
            break;
          case 1:
            opt = AttentionOptions.builder().windowLeft(rnd.nextInt(50)).build();
            break;
          case 2:
            opt = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build();
            break;
          case 3:
            opt = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).ropeScale(4).ropeTheta(5e5f)
                .logitsSoftCap(20).windowLeft(17).build();
            break;
          default:
            opt = AttentionOptions.defaults();
        }
        out.add(Arguments.of(prob, opt));
      }
    }
    // long sequences, one request and MQA
    out.add(Arguments.of(new DecodeProblem(7, DType.BF16, KvLayout.NHD, 16, 32, 8, 128, new int[] {4097, 1, 2500},
        DecodeProblem.CacheKind.SEPARATE), AttentionOptions.defaults()));
    out.add(Arguments.of(new DecodeProblem(8, DType.F16, KvLayout.HND, 1, 16, 1, 128, new int[] {3000},
        DecodeProblem.CacheKind.SEPARATE), AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build()));
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void cudaMatchesCpuReference(DecodeProblem p, AttentionOptions opt) {
    float[][] gpu = run(p, opt, Device.cuda(0));
    float[][] cpu = run(p, opt, Device.cpu());
    double tol = Assertions2.tolerance(p.dtype);
    Assertions2.assertClose(cpu[0], gpu[0], tol, p + " " + opt + " out vs CPU");
    Assertions2.assertClose(cpu[1], gpu[1], 1e-3, p + " " + opt + " lse vs CPU");
    double[][] ref = p.reference(opt);
    Assertions2.assertClose(ref[0], gpu[0], tol, p + " " + opt + " out vs float64");
    Assertions2.assertClose(ref[1], gpu[1], 1e-3, p + " " + opt + " lse vs float64");
  }

  static float[][] run(DecodeProblem p, AttentionOptions opt, Device device) {
    try (DecodeProblem.OnDevice on = p.on(device);
        Tensor out = Tensor.empty(device, p.dtype, p.batch(), p.numQoHeads, p.headDim);
        Tensor lse = Tensor.empty(device, DType.F32, p.batch(), p.numQoHeads);
        Stream stream = Stream.create(device);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      dec.plan(on.pageTable, p.numQoHeads, p.numKvHeads, p.headDim, p.pageSize, p.dtype, opt);
      dec.run(on.q, on.cache, out, lse, stream);
      stream.synchronize();
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  @Test
  void withoutLseAndOnTheDefaultStream() {
    DecodeProblem p = new DecodeProblem(11, DType.BF16, KvLayout.NHD, 16, 8, 2, 128, new int[] {33, 0, 16},
        DecodeProblem.CacheKind.SEPARATE);
    Device d = Device.cuda(0);
    try (DecodeProblem.OnDevice on = p.on(d);
        Tensor out = Tensor.empty(d, p.dtype, 3, 8, 128);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(d)) {
      out.fillBytes(0xff);
      dec.plan(on.pageTable, 8, 2, 128, 16, p.dtype);
      dec.run(on.q, on.cache, out, null);
      d.synchronize();
      Assertions2.assertClose(p.reference(AttentionOptions.defaults())[0], out.toFloatArray(), 1e-2, "no lse");
    }
  }

  @Test
  void singleDecodeOnCuda() {
    Device d = Device.cuda(0);
    for (KvLayout layout : KvLayout.values()) {
      DecodeProblem p = new DecodeProblem(12, DType.F16, layout, 200, 16, 4, 256, new int[] {200},
          DecodeProblem.CacheKind.SEPARATE);
      try (DecodeProblem.OnDevice on = p.on(d);
          Tensor out = Tensor.empty(d, DType.F16, 16, 256);
          Tensor lse = Tensor.empty(d, DType.F32, 16)) {
        out.fillBytes(0xff);
        int page = p.indices[0];
        SingleDecode.run(on.q.select(0, 0), on.cache.k().select(0, page), on.cache.v().select(0, page), out, lse,
            layout, AttentionOptions.defaults(), null);
        double[][] ref = p.reference(AttentionOptions.defaults());
        Assertions2.assertClose(ref[0], out.toFloatArray(), 2e-3, "single decode " + layout);
        Assertions2.assertClose(ref[1], lse.toFloatArray(), 1e-3, "single decode lse " + layout);
      }
    }
  }

  @Test
  void appendWithDeviceTargetsSkipsOutOfRangeTokens() {
    Device d = Device.cuda(0);
    try (PagedKvCache cache = PagedKvCache.allocate(d, DType.BF16, KvLayout.NHD, 3, 4, 1, 64);
        PageTable table = PageTable.of(d, 4, new int[] {0, 1}, new int[] {1}, new int[] {2});
        Tensor keys = Tensor.fromFloats(d, DType.BF16, filled(2 * 64, 5f), 2, 1, 64);
        Tensor bi = Tensor.fromInts(d, new int[] {0, 0}, 2);
        Tensor pos = Tensor.fromInts(d, new int[] {1, 2}, 2)) {  // position 2 is outside the 2 tokens
      cache.k().fillBytes(0);
      cache.v().fillBytes(0);
      PagedKv.append(keys, keys, bi, pos, cache, table, null);
      d.synchronize();
      float[] k = cache.k().toFloatArray();
      float[] expected = new float[k.length];
      for (int i = 0; i < 64; i++) {
        expected[(1 * 4 + 1) * 64 + i] = 5f;  // page 1, slot 1
      }
      assertArrayEquals(expected, k);
      assertTrue(cache.v().toFloatArray()[(1 * 4 + 1) * 64] == 5f);
    }
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    java.util.Arrays.fill(a, v);
    return a;
  }
}
