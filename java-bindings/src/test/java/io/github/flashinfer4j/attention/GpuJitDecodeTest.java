package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.JitCache;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.Gpu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Decode at head dims outside the ahead-of-time set, compiled at run time with NVRTC, against the CPU reference:
 * 96 and 192 (and a few others), bf16 and fp16, GQA groups 1/4/8, with and without split-KV, soft cap and RoPE;
 * warm-up then run; routing on the device. Needs a GPU and NVRTC (with -Dflashinfer4j.requireGpu=true a missing
 * NVRTC fails instead of skipping).
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuJitDecodeTest {
  @BeforeAll
  static void needsCompiler() {
    Gpu.requireCompiler();
  }

  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    DecodePlanOptions never = DecodePlanOptions.builder().neverSplit().build();
    DecodePlanOptions fixed = DecodePlanOptions.deterministic(64);
    DecodePlanOptions auto = DecodePlanOptions.defaults();
    AttentionOptions plain = AttentionOptions.defaults();
    AttentionOptions cap = AttentionOptions.builder().logitsSoftCap(30).build();
    AttentionOptions rope = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build();
    AttentionOptions all = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).ropeScale(4)
        .ropeTheta(5e5f).logitsSoftCap(20).windowLeft(300).build();
    long seed = 3000;
    for (int d : new int[] {96, 192}) {
      for (DType dt : new DType[] {DType.BF16, DType.F16}) {
        for (int g : new int[] {1, 4, 8}) {
          Object[][] variants = {{plain, never}, {cap, fixed}, {rope, auto}, {all, fixed}};
          for (Object[] v : variants) {
            KvLayout layout = seed % 2 == 0 ? KvLayout.NHD : KvLayout.HND;
            DecodeProblem p = new DecodeProblem(seed++, dt, layout, 16, 2 * g, 2, d,
                new int[] {1, 700, 0, 16, 2100}, DecodeProblem.CacheKind.SEPARATE);
            out.add(Arguments.of(p, v[0], v[1]));
          }
        }
      }
    }
    for (int d : new int[] {16, 48, 80, 160, 240}) {
      DecodeProblem p = new DecodeProblem(seed++, DType.BF16, KvLayout.NHD, 5, 8, 2, d, new int[] {333, 1, 1200},
          DecodeProblem.CacheKind.COMBINED);
      out.add(Arguments.of(p, all, fixed));
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("problems")
  void runTimeCompiledDecodeMatchesCpuReference(DecodeProblem p, AttentionOptions opt, DecodePlanOptions po) {
    float[][] cpu = GpuDecodeSplitTest.run(p, opt, DecodePlanOptions.defaults(), Device.cpu(), null);
    int[] work = new int[1];
    float[][] gpu = GpuDecodeSplitTest.run(p, opt, po, Device.cuda(0), work);
    if (po.splitMode() == DecodePlanOptions.SplitMode.FIXED) {
      assertTrue(work[0] > p.batch(), "split: " + work[0] + " work items");
    } else if (po.splitMode() == DecodePlanOptions.SplitMode.NEVER) {
      assertEquals(0, work[0]);
    }
    Assertions2.assertClose(cpu[0], gpu[0], Assertions2.tolerance(p.dtype), p + " " + opt + " " + po + " out");
    Assertions2.assertClose(cpu[1], gpu[1], 1e-3, p + " " + opt + " " + po + " lse");
  }

  @Test
  void singleDecodeAtHeadDim96() {
    DecodeProblem p = new DecodeProblem(77, DType.BF16, KvLayout.NHD, 16, 8, 2, 96, new int[] {300},
        DecodeProblem.CacheKind.SEPARATE);
    AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(30).build();
    double[][] ref = p.reference(opt);
    Device d = Device.cuda(0);
    float[] k = p.keys;  // one request: [kvLen, numKvHeads, headDim], NHD
    float[] v = p.values;
    try (Tensor q = Tensor.fromFloats(d, DType.BF16, p.q, 8, 96);
        Tensor kt = Tensor.fromFloats(d, DType.BF16, k, 300, 2, 96);
        Tensor vt = Tensor.fromFloats(d, DType.BF16, v, 300, 2, 96);
        Tensor out = Tensor.empty(d, DType.BF16, 8, 96);
        Tensor lse = Tensor.empty(d, DType.F32, 8)) {
      out.fillBytes(0xff);
      SingleDecode.run(q, kt, vt, out, lse, KvLayout.NHD, opt, null);
      d.synchronize();
      Assertions2.assertClose(ref[0], out.toFloatArray(), 1e-2, "single decode d=96 out");
      Assertions2.assertClose(ref[1], lse.toFloatArray(), 1e-3, "single decode d=96 lse");
    }
  }

  @Test
  void routingOnTheDevice() {
    Device d = Device.cuda(0);
    KernelConfig aot = KernelConfig.decode(d, DType.BF16, 128).build();
    assertTrue(Flashinfer4j.isSupported(aot));
    assertFalse(Flashinfer4j.isCompiledAtRunTime(aot));
    KernelConfig jit = KernelConfig.decode(d, DType.BF16, 96).build();
    assertTrue(Flashinfer4j.isSupported(jit));
    assertTrue(Flashinfer4j.isCompiledAtRunTime(jit));
    String tc = Flashinfer4j.unsupportedReason(jit.toBuilder().path(DecodePath.TENSOR_CORES).build()).orElseThrow();
    assertTrue(tc.contains("head_dim 96") && tc.contains("tensor-core"), tc);
    String odd = Flashinfer4j.unsupportedReason(KernelConfig.decode(d, DType.F16, 72).build()).orElseThrow();
    assertTrue(odd.contains("head_dim 72") && odd.contains("multiples of 16"), odd);
    try (PageTable t = PageTable.contiguous(d, 16, new int[] {5});
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(d)) {
      UnsupportedConfigurationException e = assertThrows(UnsupportedConfigurationException.class,
          () -> dec.plan(t, 4, 1, 96, 16, DType.BF16, AttentionOptions.defaults(),
              DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).build(), null));
      assertTrue(e.getMessage().contains("head_dim 96"), e.getMessage());
    }
  }

  @Test
  void warmUpCompilesOnceThenRuns() throws IOException {
    Path dir = Files.createTempDirectory("fi4j-jit-warmup");
    JitCache.setDirectory(dir);
    try {
      Device d = Device.cuda(0);
      // A configuration no other test compiles: the fresh directory makes its first warm-up a compile.
      KernelConfig c = KernelConfig.decode(d, DType.F16, 112).softCap(true).posEncoding(PosEncoding.ROPE_LLAMA)
          .build();
      Flashinfer4j.WarmUpResult first = Flashinfer4j.warmUp(c).get(0);
      assertEquals(Flashinfer4j.WarmUpResult.Source.COMPILED, first.source());
      assertTrue(first.compileMillis() > 0 && first.key().startsWith("decode-f16-d112-"), first.toString());
      Flashinfer4j.WarmUpResult again = Flashinfer4j.warmUp(c).get(0);
      assertEquals(Flashinfer4j.WarmUpResult.Source.MEMORY, again.source());
      assertEquals(first.key(), again.key());
      assertEquals(1, JitCache.stats().files());
      assertTrue(Files.exists(dir.resolve(first.key() + ".cubin")));
      DecodeProblem p = new DecodeProblem(5, DType.F16, KvLayout.HND, 16, 16, 4, 112, new int[] {1000, 3},
          DecodeProblem.CacheKind.SEPARATE);
      AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(30).posEncoding(PosEncoding.ROPE_LLAMA).build();
      float[][] cpu = GpuDecodeSplitTest.run(p, opt, DecodePlanOptions.defaults(), Device.cpu(), null);
      float[][] gpu = GpuDecodeSplitTest.run(p, opt, DecodePlanOptions.defaults(), d, null);
      Assertions2.assertClose(cpu[0], gpu[0], Assertions2.tolerance(p.dtype), "after warm-up out");
      Assertions2.assertClose(cpu[1], gpu[1], 1e-3, "after warm-up lse");
    } finally {
      JitCache.useDefaultDirectory();
    }
  }
}
