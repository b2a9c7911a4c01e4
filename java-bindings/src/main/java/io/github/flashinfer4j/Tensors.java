package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;

/** Bulk initialisation of tensors in place, without a round trip through Java arrays. */
public final class Tensors {
  private Tensors() {}

  /**
   * Fills a contiguous F16, BF16 or F32 tensor with pseudo-random values uniform in [-scale, scale]. The values
   * depend only on (seed, element index): the CPU and CUDA backends produce identical tensors. Queued on
   * {@code stream} (null = default) for CUDA.
   */
  public static void fillUniform(Tensor t, long seed, float scale, Stream stream) {
    Checks.open(t, "t");
    Checks.check(t.isContiguous(), "t", "contiguous", "strides " + java.util.Arrays.toString(t.strides()));
    Checks.check(t.dtype().isFloatingPoint(), "t.dtype", "F16, BF16 or F32", t.dtype());
    Checks.check(Float.isFinite(scale), "scale", "finite", scale);
    if (stream != null) {
      Checks.check(stream.device().equals(t.device()), "stream.device", t.device().toString(), stream.device());
    }
    try (Native.Pins pins = new Native.Pins()) {
      Native.check(Fi4j.fi4j_fill_random(t.device().code(), t.pointer(pins), t.dtype().code(), t.numel(), seed, scale,
          stream == null ? null : stream.pointer(pins)));
    }
  }
}
