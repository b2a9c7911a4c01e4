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
    /** Split long requests when the batch cannot fill the GPU. */
    AUTO(0),
    /** Never split. */
    NEVER(1),
    /** Split every request into chunks of a fixed number of tokens (deterministic). */
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

  /**
   * Split automatically, kernel path AUTO.
   *
   * @return the default options
   */
  public static DecodePlanOptions defaults() {
    return DEFAULTS;
  }

  /**
   * Deterministic mode: fixed chunks of {@code chunkTokens} tokens.
   *
   * @param chunkTokens KV tokens per chunk, a positive multiple of the page size at plan time
   * @return options that split every request into fixed chunks of chunkTokens tokens
   */
  public static DecodePlanOptions deterministic(int chunkTokens) {
    return builder().fixedChunk(chunkTokens).build();
  }

  /**
   * A builder starting from the defaults.
   *
   * @return a builder starting from the defaults
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The split-KV policy.
   *
   * @return the split-KV policy
   */
  public SplitMode splitMode() {
    return splitMode;
  }

  /**
   * Chunk size in tokens for {@link SplitMode#FIXED}, else 0.
   *
   * @return chunk size in tokens for {@link SplitMode#FIXED}, else 0
   */
  public int fixedChunk() {
    return fixedChunk;
  }

  /**
   * The kernel path to use (AUTO: the planner chooses).
   *
   * @return the kernel path to use (AUTO: the planner chooses)
   */
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

    /**
     * Splits long requests when the batch alone cannot fill the GPU (the default).
     *
     * @return this builder
     */
    public Builder splitAuto() {
      splitMode = SplitMode.AUTO;
      fixedChunk = 0;
      return this;
    }

    /**
     * Never splits a request (one block per request and KV head).
     *
     * @return this builder
     */
    public Builder neverSplit() {
      splitMode = SplitMode.NEVER;
      fixedChunk = 0;
      return this;
    }

    /**
     * Fixed chunks of {@code tokens} tokens (> 0): deterministic across batch compositions.
     *
     * @param tokens KV tokens per work item, positive
     * @return this builder
     */
    public Builder fixedChunk(int tokens) {
      Checks.check(tokens > 0, "fixedChunk", "> 0", tokens);
      splitMode = SplitMode.FIXED;
      fixedChunk = tokens;
      return this;
    }

    /**
     * Forces a kernel path (default AUTO).
     *
     * @param path the decode kernel path
     * @return this builder
     */
    public Builder path(DecodePath path) {
      this.path = Checks.notNull(path, "path");
      return this;
    }

    /**
     * The options set so far.
     *
     * @return the options set so far
     */
    public DecodePlanOptions build() {
      return new DecodePlanOptions(this);
    }
  }
}
