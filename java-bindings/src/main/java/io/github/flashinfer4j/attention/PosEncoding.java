package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.AttentionAccess;

/** Positional encoding applied inside attention. Keys in the cache are stored without it. */
public enum PosEncoding {
  /** None: q and k are used as given. */
  NONE(0),
  /** Llama-style rotate-half RoPE over the full head dim, applied to q and k on the fly. */
  ROPE_LLAMA(1);

  static {
    Access.install(new Bridge());  // the native codes of this package's enums, for the kernel routing
  }

  private final int code;

  PosEncoding(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }

  /** This package's side of {@link AttentionAccess}. */
  private static final class Bridge implements AttentionAccess {
    @Override
    public int code(PosEncoding encoding) {
      return encoding.code();
    }

    @Override
    public int code(DecodePath path) {
      return path.code();
    }
  }
}
