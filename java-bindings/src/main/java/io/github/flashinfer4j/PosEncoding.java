package io.github.flashinfer4j;

/** Positional encoding applied inside attention. Keys in the cache are stored without it. */
public enum PosEncoding {
  /** None: q and k are used as given. */
  NONE(0),
  /** Llama-style rotate-half RoPE over the full head dim, applied to q and k on the fly. */
  ROPE_LLAMA(1);

  private final int code;

  PosEncoding(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }
}
