package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;

/** Shared translation of Java options into the native option struct. */
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
}
