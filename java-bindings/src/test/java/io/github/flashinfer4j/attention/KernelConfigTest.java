package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.JitCache;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Kernel configurations, isSupported and warm-up on any machine (CPU reference; the CUDA side is in
 * GpuJitDecodeTest), and the CPU reference at head dims outside the CUDA ahead-of-time set against float64.
 */
class KernelConfigTest {
  @Test
  void builderDefaultsEqualityAndNulls() {
    KernelConfig a = KernelConfig.decode(Device.cpu(), DType.BF16, 96).build();
    assertEquals(KernelConfig.Op.DECODE, a.op());
    assertFalse(a.softCap());
    assertEquals(PosEncoding.NONE, a.posEncoding());
    assertEquals(DecodePath.AUTO, a.path());
    KernelConfig b = a.toBuilder().softCap(true).posEncoding(PosEncoding.ROPE_LLAMA).build();
    assertNotEquals(a, b);
    assertEquals(b, KernelConfig.forDecode(Device.cpu(), DType.BF16, 96,
        AttentionOptions.builder().logitsSoftCap(30).posEncoding(PosEncoding.ROPE_LLAMA).build(), DecodePath.AUTO));
    assertEquals(b.hashCode(), b.toBuilder().build().hashCode());
    assertTrue(b.toString().contains("headDim=96"), b.toString());
    assertThrows(InvalidArgumentException.class, () -> KernelConfig.decode(null, DType.BF16, 96));
    assertThrows(InvalidArgumentException.class, () -> KernelConfig.decode(Device.cpu(), null, 96));
    InvalidArgumentException e =
        assertThrows(InvalidArgumentException.class, () -> KernelConfig.decode(Device.cpu(), DType.BF16, 0));
    assertTrue(e.getMessage().contains("headDim"), e.getMessage());
    assertThrows(InvalidArgumentException.class, () -> a.toBuilder().path(null));
    assertThrows(InvalidArgumentException.class, () -> a.toBuilder().posEncoding(null));
  }

  @Test
  void prefillConfigurations() {
    KernelConfig a = KernelConfig.prefill(Device.cpu(), DType.F16, 192).build();
    assertEquals(KernelConfig.Op.PREFILL, a.op());
    assertEquals(DecodePath.AUTO, a.path());
    assertFalse(a.toString().contains("path"), a.toString());
    assertTrue(a.toString().startsWith("prefill{"), a.toString());
    KernelConfig b = KernelConfig.forPrefill(Device.cpu(), DType.F16, 192,
        AttentionOptions.builder().logitsSoftCap(30).posEncoding(PosEncoding.ROPE_LLAMA).windowLeft(7).build());
    assertEquals(a.toBuilder().softCap(true).posEncoding(PosEncoding.ROPE_LLAMA).build(), b);
    assertNotEquals(KernelConfig.decode(Device.cpu(), DType.F16, 192).build(), a);
    InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
        () -> a.toBuilder().path(DecodePath.TENSOR_CORES));
    assertTrue(e.getMessage().contains("path") && e.getMessage().contains("prefill"), e.getMessage());
    assertEquals(a, a.toBuilder().path(DecodePath.AUTO).build());
    for (int d : new int[] {2, 64, 80, 96, 192, 1024}) {
      KernelConfig c = KernelConfig.prefill(Device.cpu(), DType.BF16, d).softCap(true).build();
      assertTrue(Flashinfer4j.isSupported(c), c.toString());
      assertFalse(Flashinfer4j.isCompiledAtRunTime(c));
      assertEquals(Flashinfer4j.WarmUpResult.Source.AHEAD_OF_TIME, Flashinfer4j.warmUp(c).get(0).source());
    }
    KernelConfig odd = KernelConfig.prefill(Device.cpu(), DType.BF16, 3).build();
    assertTrue(Flashinfer4j.unsupportedReason(odd).orElseThrow().contains("head_dim 3"));
  }

  @Test
  void cpuRunsEveryEvenHeadDimWithoutCompiling() {
    for (int d : new int[] {2, 64, 72, 96, 192, 1024}) {
      KernelConfig c = KernelConfig.decode(Device.cpu(), DType.F16, d).softCap(true).build();
      assertTrue(Flashinfer4j.isSupported(c), c.toString());
      assertFalse(Flashinfer4j.isCompiledAtRunTime(c));
    }
    List<Flashinfer4j.WarmUpResult> r = Flashinfer4j.warmUp(KernelConfig.decode(Device.cpu(), DType.BF16, 96).build(),
        KernelConfig.decode(Device.cpu(), DType.F16, 128).build());
    assertEquals(2, r.size());
    for (Flashinfer4j.WarmUpResult w : r) {
      assertEquals(Flashinfer4j.WarmUpResult.Source.AHEAD_OF_TIME, w.source());
      assertFalse(w.compiled());
      assertEquals("", w.key());
    }
  }

  @Test
  void unsupportedConfigurationsSayWhy() {
    KernelConfig odd = KernelConfig.decode(Device.cpu(), DType.BF16, 3).build();
    assertFalse(Flashinfer4j.isSupported(odd));
    assertTrue(Flashinfer4j.unsupportedReason(odd).orElseThrow().contains("head_dim 3"));
    UnsupportedConfigurationException e =
        assertThrows(UnsupportedConfigurationException.class, () -> Flashinfer4j.warmUp(odd));
    assertTrue(e.getMessage().contains("head_dim 3"), e.getMessage());
    KernelConfig f32 = KernelConfig.decode(Device.cpu(), DType.F32, 64).build();
    assertTrue(Flashinfer4j.unsupportedReason(f32).orElseThrow().contains("F32"));
    assertThrows(InvalidArgumentException.class, () -> Flashinfer4j.warmUp((KernelConfig) null));
  }

  @Test
  void compilerAbsenceSaysWhatToInstall() {
    if (JitCache.isCompilerAvailable()) {
      assertEquals("", JitCache.compilerUnavailableReason());
    } else {
      String why = JitCache.compilerUnavailableReason();
      assertTrue(why.contains("libnvrtc") && why.contains("install"), why);
    }
  }

  @Test
  void cpuReferenceAtHeadDims96And192MatchesFloat64() {
    long seed = 900;
    for (int d : new int[] {96, 192}) {
      for (int g : new int[] {1, 4}) {
        for (AttentionOptions opt : new AttentionOptions[] {AttentionOptions.defaults(),
            AttentionOptions.builder().logitsSoftCap(30).posEncoding(PosEncoding.ROPE_LLAMA).build()}) {
          DecodeProblem p = new DecodeProblem(seed++, d == 96 ? DType.BF16 : DType.F16, KvLayout.NHD, 16, 2 * g, 2,
              d, new int[] {1, 37, 0, 130}, DecodeProblem.CacheKind.SEPARATE);
          float[][] cpu = GpuDecodeTest.run(p, opt, Device.cpu());
          double[][] ref = p.reference(opt);
          Assertions2.assertClose(ref[0], cpu[0], Assertions2.tolerance(p.dtype), p + " " + opt + " out");
          Assertions2.assertClose(ref[1], cpu[1], 1e-3, p + " " + opt + " lse");
        }
      }
    }
  }
}
