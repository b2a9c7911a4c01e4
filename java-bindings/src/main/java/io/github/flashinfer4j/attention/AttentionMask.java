package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Checks;

/**
 * Which keys each query row of a prefill may see
 * (<a href="https://github.com/flashinfer4j/flashinfer4j/blob/main/docs/SPEC.md">docs/SPEC.md</a>, Attention), for request b with {@code qoLen} query
 * rows and {@code kvLen} keys, where query row i sits at position {@code posQ(i) = i + kvLen - qoLen}:
 * <ul>
 *   <li>{@link #none()}: every key;</li>
 *   <li>{@link #causal()}: bottom-right aligned, keys {@code j <= posQ(i)} (when {@code qoLen > kvLen} the first
 *       rows see nothing: output 0, LSE -inf);</li>
 *   <li>{@link #custom(boolean[])} / {@link #packed(PackedMask)}: an explicit boolean per (request, row, key),
 *       true = keep. This is how speculative-decoding tree verification is expressed (see
 *       {@link Masks#tree(int, int[])}).</li>
 * </ul>
 * The sliding window of {@link AttentionOptions#windowLeft()} applies on top of each. A custom mask depends on the
 * batch composition: it is checked against the request lengths and packed when a plan uses it.
 *
 * <p>Immutable (arrays are copied in) and safe to share between threads.
 */
public final class AttentionMask {
  /** The kind of mask; codes match the C API's fi4j_mask_mode. */
  public enum Kind {
    /** Every key of the request is seen. */
    NONE(0),
    /** Bottom-right aligned causal masking. */
    CAUSAL(1),
    /** A custom boolean mask per request. */
    CUSTOM(2);

    private final int code;

    Kind(int code) {
      this.code = code;
    }

    int code() {
      return code;
    }
  }

  private static final AttentionMask NONE = new AttentionMask(Kind.NONE, null, null);
  private static final AttentionMask CAUSAL = new AttentionMask(Kind.CAUSAL, null, null);

  private final Kind kind;
  private final boolean[] unpacked;
  private final PackedMask packed;

  private AttentionMask(Kind kind, boolean[] unpacked, PackedMask packed) {
    this.kind = kind;
    this.unpacked = unpacked;
    this.packed = packed;
  }

  /**
   * Every query row sees every key of its request.
   *
   * @return the mask under which every query row sees every key of its request
   */
  public static AttentionMask none() {
    return NONE;
  }

  /**
   * Bottom-right aligned causal masking.
   *
   * @return the causal mask
   */
  public static AttentionMask causal() {
    return CAUSAL;
  }

  /**
   * {@link #causal()} when {@code causal}, else {@link #none()}.
   *
   * @param causal true for the causal mask, false for none
   * @return {@link #causal()} when {@code causal}, else {@link #none()}
   */
  public static AttentionMask causal(boolean causal) {
    return causal ? CAUSAL : NONE;
  }

  /**
   * A custom mask given unpacked: the requests' {@code [qoLen, kvLen]} row-major boolean matrices concatenated
   * in request order (FlashInfer's flattened {@code custom_mask}). Its length must be the sum of
   * {@code qoLen * kvLen} over the planned requests.
   *
   * @param mask the custom mask
   * @return a custom mask given unpacked
   */
  public static AttentionMask custom(boolean[] mask) {
    Checks.notNull(mask, "mask");
    return new AttentionMask(Kind.CUSTOM, mask.clone(), null);
  }

  /**
   * A custom mask already packed (one segment per request).
   *
   * @param mask the custom mask
   * @return a custom mask already packed (one segment per request)
   */
  public static AttentionMask packed(PackedMask mask) {
    Checks.notNull(mask, "mask");
    return new AttentionMask(Kind.CUSTOM, null, mask);
  }

  /**
   * Which kind of mask this is.
   *
   * @return the kind of mask
   */
  public Kind kind() {
    return kind;
  }

  /**
   * Whether this is the causal mask.
   *
   * @return whether this is the causal mask
   */
  public boolean isCausal() {
    return kind == Kind.CAUSAL;
  }

  /**
   * Whether this is a custom mask.
   *
   * @return whether this is a custom mask
   */
  public boolean isCustom() {
    return kind == Kind.CUSTOM;
  }

  /**
   * The custom mask packed for requests of the given lengths, checked against them; null for NONE and CAUSAL.
   * Names in messages start with {@code name} (the argument of the caller).
   */
  PackedMask packFor(int[] qoLens, int[] kvLens, String name) {
    if (kind != Kind.CUSTOM) {
      return null;
    }
    int batch = qoLens.length;
    if (unpacked != null) {
      int[] indptr = new int[batch + 1];
      long total = 0;
      for (int b = 0; b < batch; b++) {
        total += (long) qoLens[b] * kvLens[b];
        Checks.check(total <= Integer.MAX_VALUE - 8, name + " size", "< 2^31 elements", total);
        indptr[b + 1] = (int) total;
      }
      Checks.check(unpacked.length == total, name + ".length",
          "the sum over requests of qoLen x kvLen = " + total, unpacked.length);
      return Masks.segmentPackbits(unpacked, indptr);
    }
    int[] indptr = packed.indptrNoCopy();
    Checks.check(packed.batchSize() == batch, name + ".batchSize()", "the planned batch size " + batch,
        packed.batchSize());
    for (int b = 0; b < batch; b++) {
      long need = ((long) qoLens[b] * kvLens[b] + 7) / 8;
      Checks.check(indptr[b + 1] - (long) indptr[b] >= need, name + ".indptr()[" + (b + 1) + "]",
          ">= indptr[" + b + "] + " + need + " = " + (indptr[b] + need) + " (request " + b + "'s " + qoLens[b]
              + " x " + kvLens[b] + " mask)",
          indptr[b + 1]);
    }
    return packed;
  }

  @Override
  public String toString() {
    if (kind != Kind.CUSTOM) {
      return "AttentionMask{" + kind + "}";
    }
    return "AttentionMask{CUSTOM, " + (unpacked != null ? unpacked.length + " elements" : packed.toString()) + "}";
  }
}
