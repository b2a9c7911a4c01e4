package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The CPU reference backend against a float64 implementation in the test, over a sweep with the edges. */
class DecodeSweepTest {
  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    long seed = 1;
    int[][] heads = {{1, 1}, {4, 4}, {8, 1}, {8, 2}, {12, 4}, {16, 1}, {14, 2}};
    int[] pageSizes = {1, 3, 16};
    for (int hi = 0; hi < heads.length; hi++) {
      for (int pi = 0; pi < pageSizes.length; pi++) {
        int p = pageSizes[pi];
        DType dt = (hi + pi) % 2 == 0 ? DType.BF16 : DType.F16;
        KvLayout layout = (hi % 2 == 0) ? KvLayout.NHD : KvLayout.HND;
        int dim = new int[] {64, 128, 256}[(hi + 2 * pi) % 3];
        DecodeProblem.CacheKind kind = DecodeProblem.CacheKind.values()[(hi + pi) % 3];
        // kv_len 1, an empty request, page boundaries (P, P+1, 2P-1) and a longer one
        int[] lens = {1, 0, p, p + 1, 2 * p - 1, 37};
        out.add(Arguments.of(new DecodeProblem(seed++, dt, layout, p, heads[hi][0], heads[hi][1], dim, lens, kind),
            AttentionOptions.defaults()));
      }
    }
    int[] lens = {1, 5, 40, 0, 77};
    DecodeProblem base = new DecodeProblem(99, DType.BF16, KvLayout.NHD, 4, 8, 2, 64, lens,
        DecodeProblem.CacheKind.SEPARATE);
    out.add(Arguments.of(base, AttentionOptions.builder().logitsSoftCap(30).build()));
    out.add(Arguments.of(base, AttentionOptions.builder().windowLeft(0).build()));
    out.add(Arguments.of(base, AttentionOptions.builder().windowLeft(5).build()));
    out.add(Arguments.of(base, AttentionOptions.builder().smScale(0.3f).logitsSoftCap(5).windowLeft(10).build()));
    out.add(Arguments.of(base, AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build()));
    out.add(Arguments.of(new DecodeProblem(98, DType.F16, KvLayout.HND, 16, 8, 8, 128, new int[] {300, 1000},
            DecodeProblem.CacheKind.COMBINED),
        AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).ropeScale(2).ropeTheta(5e5f).build()));
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void cpuMatchesFloat64(DecodeProblem p, AttentionOptions opt) {
    double[][] ref = p.reference(opt);
    Device cpu = Device.cpu();
    try (DecodeProblem.OnDevice on = p.on(cpu);
        Tensor out = Tensor.empty(cpu, p.dtype, p.batch(), p.numQoHeads, p.headDim);
        Tensor lse = Tensor.empty(cpu, DType.F32, p.batch(), p.numQoHeads);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(cpu)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      dec.plan(on.pageTable, p.numQoHeads, p.numKvHeads, p.headDim, p.pageSize, p.dtype, opt);
      dec.run(on.q, on.cache, out, lse);
      Assertions2.assertClose(ref[0], out.toFloatArray(), Assertions2.tolerance(p.dtype), p + " out");
      Assertions2.assertClose(ref[1], lse.toFloatArray(), 1e-3, p + " lse");
    }
  }

  @Test
  void singleDecodeMatchesBatchOfOne() {
    for (KvLayout layout : KvLayout.values()) {
      DecodeProblem p = new DecodeProblem(5, DType.F16, layout, 64, 8, 2, 128, new int[] {64},
          DecodeProblem.CacheKind.SEPARATE);
      AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(20).build();
      double[][] ref = p.reference(opt);
      Device cpu = Device.cpu();
      // the single-request K/V are the request's one page (page size = kv_len)
      try (DecodeProblem.OnDevice on = p.on(cpu);
          Tensor q = on.q.select(0, 0);
          Tensor out = Tensor.empty(cpu, DType.F16, 8, 128);
          Tensor lse = Tensor.empty(cpu, DType.F32, 8)) {
        int page = p.indices[0];
        out.fillBytes(0xff);
        SingleDecode.run(q, on.cache.k().select(0, page), on.cache.v().select(0, page), out, lse, layout, opt, null);
        Assertions2.assertClose(ref[0], out.toFloatArray(), 2e-3, "single decode out " + layout);
        Assertions2.assertClose(ref[1], lse.toFloatArray(), 1e-3, "single decode lse " + layout);
      }
    }
  }
}
