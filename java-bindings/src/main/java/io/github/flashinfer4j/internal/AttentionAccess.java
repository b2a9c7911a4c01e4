package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.attention.DecodePath;
import io.github.flashinfer4j.attention.PosEncoding;

/**
 * The native codes of the attention package's public enums, for the kernel routing of {@link Jit}. Implemented by
 * a private class of {@code io.github.flashinfer4j.attention}; reached through {@link Access#attention()}.
 */
public interface AttentionAccess {
  /** enum fi4j_pos_encoding. */
  int code(PosEncoding encoding);

  /** enum fi4j_decode_path. */
  int code(DecodePath path);
}
