package io.github.flashinfer4j.attention;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CUDA prefill against the CPU reference and the float64 reference, over PrefillSweepTest's sweep (the head dims
 * the CUDA backend runs: 64, 128, 256): mixed query lengths 1..300, rows that see nothing, empty requests, page size
 * 1, GQA groups 1..16, NHD/HND, ragged (strided views too) and paged (separate and combined), every mask kind
 * (tree masks included) and every variant option. Outputs are poisoned before each run.
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuPrefillTest {
  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    for (Arguments a : PrefillSweepTest.problems()) {
      PrefillProblem p = (PrefillProblem) a.get()[0];
      if (p.headDim == 64 || p.headDim == 128 || p.headDim == 256) {
        out.add(a);
      }
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void cudaMatchesReferences(PrefillProblem p, AttentionOptions opt) {
    p.assertCudaMatchesReferences(opt);
  }
}
