package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.internal.Jit;
import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Shared translation of Java options into the native option struct, and the run-time kernel preparation that a plan
 * or a single call does before it runs.
 */
final class Decoding {
  private Decoding() {}

  static void fillOptions(Fi4j.fi4j_attention_options o, AttentionOptions options) {
    o.sm_scale(Float.isNaN(options.smScale()) ? 0f : options.smScale())
        .logits_soft_cap(options.logitsSoftCap())
        .window_left(options.windowLeft())
        .pos_encoding(options.posEncoding().code())
        .rope_scale(options.ropeScale())
        .rope_theta(options.ropeTheta());
  }

  /**
   * The kernel handle a native plan resolved, logging a compile or disk-cache load of its run-time kernel (which the
   * plan did, so that run() never compiles); {@code what} describes the configuration for that line only.
   */
  static long kernel(Fi4j.fi4j_kernel_prepare_info info, java.util.function.Supplier<KernelConfig> what) {
    if (info.origin() == Fi4j.FI4J_JIT_COMPILED || info.origin() == Fi4j.FI4J_JIT_DISK) {
      Jit.prepared(info, what.get());
    }
    return info.kernel();
  }

  /**
   * Prepares the prefill kernel that a plan or single prefill with these arguments needs (a no-op for AOT/CPU), so
   * that run() never compiles.
   */
  static void preparePrefill(Device device, DType dtype, int headDim, AttentionOptions options) {
    if (Jit.aheadOfTime(device, headDim)) {
      return;
    }
    Jit.prepare(KernelConfig.forPrefill(device, dtype, headDim, options));
  }

  /** Prepares the decode kernel that a plan or single decode with these arguments needs (a no-op for AOT/CPU). */
  static void prepareDecode(Device device, DType dtype, int headDim, AttentionOptions options, DecodePath path) {
    if (Jit.aheadOfTime(device, headDim)) {
      return;
    }
    Jit.prepare(KernelConfig.forDecode(device, dtype, headDim, options, path));
  }
}
