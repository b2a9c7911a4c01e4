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
 * Prefill at head dims outside the ahead-of-time set, compiled at run time with NVRTC, against the CPU reference and
 * the float64 reference: 96 and 192 (and 80, 48, 160, 240 once each), bf16 and fp16, GQA groups 1/4/8, ragged
 * (also strided views) and paged (also combined K/V), masks none/causal/random/tree, soft cap, RoPE and window;
 * single prefill; warm-up; routing on the device. Outputs are poisoned before each run. Needs a GPU and NVRTC (with
 * -Dflashinfer4j.requireGpu=true a missing NVRTC fails instead of skipping).
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuJitPrefillTest {
  @BeforeAll
  static void needsCompiler() {
    Gpu.requireCompiler();
  }

  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    AttentionOptions plain = AttentionOptions.defaults();
    AttentionOptions cap = AttentionOptions.builder().logitsSoftCap(30).build();
    AttentionOptions rope = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build();
    AttentionOptions all = AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).ropeScale(4)
        .ropeTheta(5e5f).logitsSoftCap(20).windowLeft(40).smScale(0.07f).build();
    PrefillProblem.Storage[] storages = PrefillProblem.Storage.values();
    String[] masks = {"causal", "none", "random", "tree"};
    AttentionOptions[] variants = {plain, cap, rope, all};
    // qoLen <= kvLen everywhere (tree masks), a decode-like request, an empty one and a long one
    int[] qoLens = {1, 37, 0, 130};
    int[] kvLens = {17, 37, 5, 200};
    long seed = 5000;
    int i = 0;
    for (int d : new int[] {96, 192}) {
      for (DType dt : new DType[] {DType.BF16, DType.F16}) {
        for (int g : new int[] {1, 4, 8}) {
          for (int v = 0; v < variants.length; v++, i++) {
            PrefillProblem.Storage storage = storages[i % storages.length];
            boolean paged = storage == PrefillProblem.Storage.PAGED
                || storage == PrefillProblem.Storage.PAGED_COMBINED;
            KvLayout layout = (i / 2) % 2 == 0 ? KvLayout.NHD : KvLayout.HND;
            PrefillProblem p = new PrefillProblem(seed++, dt, layout, storage, paged ? (i % 3 == 0 ? 1 : 16) : 0,
                2 * g, 2, d, qoLens, kvLens, masks[(i + v) % masks.length]);
            out.add(Arguments.of(p, variants[v]));
          }
        }
      }
    }
    // Other head dims, once each, with everything on; 80 also with the 128-row block (no RoPE).
    for (int d : new int[] {80, 48, 160, 240}) {
      out.add(Arguments.of(new PrefillProblem(seed++, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 16, 8,
          2, d, qoLens, kvLens, "causal"), all));
    }
    out.add(Arguments.of(new PrefillProblem(seed++, DType.F16, KvLayout.HND, PrefillProblem.Storage.RAGGED, 0, 8, 2,
        80, new int[] {300}, new int[] {300}, "causal"), cap));
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void runTimeCompiledPrefillMatchesReferences(PrefillProblem p, AttentionOptions opt) {
    assertTrue(Flashinfer4j.isCompiledAtRunTime(KernelConfig.forPrefill(Device.cuda(0), p.dtype, p.headDim, opt)));
    p.assertCudaMatchesReferences(opt);
  }

  /** SinglePrefill of a one-request problem on device: {out, lse}. */
  private static float[][] single(PrefillProblem p, Device device, AttentionOptions opt) {
    int qo = p.nnzQo();
    int kv = p.nnzKv();
    try (Tensor q = Tensor.fromFloats(device, p.dtype, p.q, qo, p.numQoHeads, p.headDim);
        Tensor k = Tensor.fromFloats(device, p.dtype, p.keys, kv, p.numKvHeads, p.headDim);
        Tensor v = Tensor.fromFloats(device, p.dtype, p.values, kv, p.numKvHeads, p.headDim);
        Tensor out = Tensor.empty(device, p.dtype, qo, p.numQoHeads, p.headDim);
        Tensor lse = Tensor.empty(device, DType.F32, qo, p.numQoHeads)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      SinglePrefill.run(q, k, v, out, lse, KvLayout.NHD, p.mask, opt, null);
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  @Test
  void singlePrefillAtHeadDims96And192() {
    long seed = 6000;
    for (int d : new int[] {96, 192}) {
      for (String mask : new String[] {"causal", "random"}) {
        // 10 rows x group 4 fit one 64-row block; 200 rows take 128-row blocks where the head dim allows
        for (int qo : new int[] {10, 200}) {
          PrefillProblem p = new PrefillProblem(seed++, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.RAGGED, 0,
              8, 2, d, new int[] {qo}, new int[] {250}, mask);
          AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(30).build();
          float[][] gpu = single(p, Device.cuda(0), opt);
          float[][] cpu = single(p, Device.cpu(), opt);
          String what = "single d=" + d + " qo=" + qo + " " + mask;
          Assertions2.assertClose(cpu[0], gpu[0], Assertions2.tolerance(p.dtype), what + " out");
          Assertions2.assertClose(cpu[1], gpu[1], 1e-3, what + " lse");
        }
      }
    }
  }

  @Test
  void routingOnTheDevice() {
    Device d = Device.cuda(0);
    KernelConfig aot = KernelConfig.prefill(d, DType.BF16, 128).build();
    assertTrue(Flashinfer4j.isSupported(aot));
    assertFalse(Flashinfer4j.isCompiledAtRunTime(aot));
    KernelConfig jit = KernelConfig.prefill(d, DType.BF16, 96).posEncoding(PosEncoding.ROPE_LLAMA).build();
    assertTrue(Flashinfer4j.isSupported(jit));
    assertTrue(Flashinfer4j.isCompiledAtRunTime(jit));
    String odd = Flashinfer4j.unsupportedReason(KernelConfig.prefill(d, DType.F16, 72).build()).orElseThrow();
    assertTrue(odd.contains("head_dim 72") && odd.contains("multiples of 16"), odd);
    try (BatchPrefillWithRaggedKvCache op = new BatchPrefillWithRaggedKvCache(d)) {
      UnsupportedConfigurationException e = assertThrows(UnsupportedConfigurationException.class,
          () -> op.plan(new int[] {0, 4}, new int[] {0, 4}, 4, 1, 72, DType.BF16, AttentionMask.causal()));
      assertTrue(e.getMessage().contains("head_dim 72"), e.getMessage());
    }
  }

  @Test
  void warmUpCompilesOnceThenPlanAndRunDoNot() throws IOException {
    Path dir = Files.createTempDirectory("fi4j-jit-prefill-warmup");
    JitCache.setDirectory(dir);
    try {
      Device d = Device.cuda(0);
      // A configuration no other test compiles: the fresh directory makes its first warm-up a compile.
      KernelConfig c = KernelConfig.prefill(d, DType.F16, 112).softCap(true).build();
      Flashinfer4j.WarmUpResult first = Flashinfer4j.warmUp(c).get(0);
      assertEquals(Flashinfer4j.WarmUpResult.Source.COMPILED, first.source());
      assertTrue(first.compileMillis() > 0 && first.key().startsWith("prefill-f16-d112-"), first.toString());
      Flashinfer4j.WarmUpResult again = Flashinfer4j.warmUp(c).get(0);
      assertEquals(Flashinfer4j.WarmUpResult.Source.MEMORY, again.source());
      assertEquals(first.key(), again.key());
      assertEquals(1, JitCache.stats().files());
      assertTrue(Files.exists(dir.resolve(first.key() + ".cubin")));
      PrefillProblem p = new PrefillProblem(7, DType.F16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 16, 16, 4,
          112, new int[] {100, 3}, new int[] {300, 3}, "causal");
      AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(30).build();
      float[][] cpu = p.run(Device.cpu(), opt);
      float[][] gpu = p.run(d, opt);
      assertEquals(1, JitCache.stats().files(), "plan and run compiled nothing more");
      Assertions2.assertClose(cpu[0], gpu[0], Assertions2.tolerance(p.dtype), "after warm-up out");
      Assertions2.assertClose(cpu[1], gpu[1], 1e-3, "after warm-up lse");
    } finally {
      JitCache.useDefaultDirectory();
    }
  }
}
