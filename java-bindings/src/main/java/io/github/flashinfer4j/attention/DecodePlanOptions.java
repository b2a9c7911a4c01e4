package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Checks;

/**
 * How {@link BatchDecodeWithPagedKvCache#plan} partitions the work. Immutable; build with {@link #builder()}.
 *
 * <ul>
 *   <li>{@link SplitMode#AUTO} (default): when requests x KV heads cannot fill the GPU, each request's KV is split
 *       into chunks processed by separate blocks, and the partial (output, LSE) states are merged.</li>
 *   <li>{@link SplitMode#NEVER}: one block per (request, KV head).</li>
 *   <li>{@link SplitMode#FIXED}: every request is split into chunks of {@code fixedChunk} tokens, whatever the batch:
 *       a request's result is then bit-identical across batch compositions (deterministic mode).</li>
 * </ul>
 */
public final class DecodePlanOptions {
  /** Split-KV policy. */
  public enum SplitMode {
    AUTO(0),
    NEVER(1),
    FIXED(2);

    private final int code;

    SplitMode(int code) {
      this.code = code;
    }

    int code() {
      return code;
    }
  }

  private static final DecodePlanOptions DEFAULTS = builder().build();

  private final SplitMode splitMode;
  private final int fixedChunk;
  private final DecodePath path;

  private DecodePlanOptions(Builder b) {
    this.splitMode = b.splitMode;
    this.fixedChunk = b.fixedChunk;
    this.path = b.path;
  }

  public static DecodePlanOptions defaults() {
    return DEFAULTS;
  }

  /** Deterministic mode: fixed chunks of {@code chunkTokens} tokens. */
  public static DecodePlanOptions deterministic(int chunkTokens) {
    return builder().fixedChunk(chunkTokens).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  public SplitMode splitMode() {
    return splitMode;
  }

  /** Chunk size in tokens for {@link SplitMode#FIXED}, else 0. */
  public int fixedChunk() {
    return fixedChunk;
  }

  public DecodePath path() {
    return path;
  }

  @Override
  public String toString() {
    return "DecodePlanOptions{split=" + splitMode + (splitMode == SplitMode.FIXED ? "(" + fixedChunk + ")" : "")
        + ", path=" + path + "}";
  }

  /** Builder of {@link DecodePlanOptions}. */
  public static final class Builder {
    private SplitMode splitMode = SplitMode.AUTO;
    private int fixedChunk;
    private DecodePath path = DecodePath.AUTO;

    private Builder() {}

    public Builder splitAuto() {
      splitMode = SplitMode.AUTO;
      fixedChunk = 0;
      return this;
    }

    public Builder neverSplit() {
      splitMode = SplitMode.NEVER;
      fixedChunk = 0;
      return this;
    }

    /** Fixed chunks of {@code tokens} tokens (> 0): deterministic across batch compositions. */
    public Builder fixedChunk(int tokens) {
      Checks.check(tokens > 0, "fixedChunk", "> 0", tokens);
      splitMode = SplitMode.FIXED;
      fixedChunk = tokens;
      return this;
    }

    /** Forces a kernel path (default AUTO). */
    public Builder path(DecodePath path) {
      this.path = Checks.notNull(path, "path");
      return this;
    }

    public DecodePlanOptions build() {
      return new DecodePlanOptions(this);
    }
  }
}
