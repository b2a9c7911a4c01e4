package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Checks;

/**
 * Variant options of an attention op, immutable; build with {@link #builder()}. Defaults: sm scale
 * 1/sqrt(head_dim), no soft cap, no sliding window, no RoPE (scale 1, theta 1e4 when enabled).
 */
public final class AttentionOptions {
  private static final AttentionOptions DEFAULTS = builder().build();

  private final float smScale;
  private final float logitsSoftCap;
  private final int windowLeft;
  private final PosEncoding posEncoding;
  private final float ropeScale;
  private final float ropeTheta;

  private AttentionOptions(Builder b) {
    this.smScale = b.smScale;
    this.logitsSoftCap = b.logitsSoftCap;
    this.windowLeft = b.windowLeft;
    this.posEncoding = b.posEncoding;
    this.ropeScale = b.ropeScale;
    this.ropeTheta = b.ropeTheta;
  }

  /**
   * No soft cap, no window, the default sm scale, no positional encoding.
   *
   * @return the default options
   */
  public static AttentionOptions defaults() {
    return DEFAULTS;
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
   * A builder starting from these options.
   *
   * @return a builder starting from these options
   */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.smScale = smScale;
    b.logitsSoftCap = logitsSoftCap;
    b.windowLeft = windowLeft;
    b.posEncoding = posEncoding;
    b.ropeScale = ropeScale;
    b.ropeTheta = ropeTheta;
    return b;
  }

  /**
   * The scale applied to q.k, or NaN for the default 1/sqrt(head_dim).
   *
   * @return the scale applied to q.k, or NaN for the default 1/sqrt(head_dim)
   */
  public float smScale() {
    return smScale;
  }

  /**
   * The scale for a head dim: the explicit one, or 1/sqrt(headDim).
   *
   * @param headDim the head dimension D
   * @return the explicit scale, or 1/sqrt(headDim) when none was set
   */
  public float smScale(int headDim) {
    return Float.isNaN(smScale) ? (float) (1.0 / Math.sqrt(headDim)) : smScale;
  }

  /**
   * Soft cap c (logits become c*tanh(x/c)); 0 = off.
   *
   * @return soft cap c (logits become c*tanh(x/c))
   */
  public float logitsSoftCap() {
    return logitsSoftCap;
  }

  /**
   * Sliding window: keys j >= pos_q - windowLeft are seen; -1 = off.
   *
   * @return the sliding window size to the left, or -1 when it is off
   */
  public int windowLeft() {
    return windowLeft;
  }

  /**
   * The positional encoding applied inside attention.
   *
   * @return the positional encoding applied inside attention
   */
  public PosEncoding posEncoding() {
    return posEncoding;
  }

  /**
   * The RoPE scale (positions are divided by it).
   *
   * @return the RoPE scale (positions are divided by it)
   */
  public float ropeScale() {
    return ropeScale;
  }

  /**
   * The RoPE base theta.
   *
   * @return the RoPE base theta
   */
  public float ropeTheta() {
    return ropeTheta;
  }

  @Override
  public String toString() {
    return "AttentionOptions{smScale=" + (Float.isNaN(smScale) ? "1/sqrt(D)" : smScale) + ", logitsSoftCap="
        + logitsSoftCap + ", windowLeft=" + windowLeft + ", posEncoding=" + posEncoding
        + (posEncoding == PosEncoding.NONE ? "" : ", ropeScale=" + ropeScale + ", ropeTheta=" + ropeTheta) + "}";
  }

  /** Builder of {@link AttentionOptions}; every setter validates its argument. */
  public static final class Builder {
    private float smScale = Float.NaN;
    private float logitsSoftCap = 0f;
    private int windowLeft = -1;
    private PosEncoding posEncoding = PosEncoding.NONE;
    private float ropeScale = 1f;
    private float ropeTheta = 1e4f;

    private Builder() {}

    /**
     * Scale of q.k; must be finite and > 0.
     *
     * @param v the value
     * @return this builder
     */
    public Builder smScale(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "smScale", "finite and > 0", v);
      smScale = v;
      return this;
    }

    /**
     * Soft cap (> 0), or 0 to switch it off.
     *
     * @param v the value
     * @return this builder
     */
    public Builder logitsSoftCap(float v) {
      Checks.check(Float.isFinite(v) && v >= 0, "logitsSoftCap", "finite and >= 0 (0 = off)", v);
      logitsSoftCap = v;
      return this;
    }

    /**
     * Sliding window size to the left (>= 0), or -1 to switch it off.
     *
     * @param v the value
     * @return this builder
     */
    public Builder windowLeft(int v) {
      Checks.check(v >= -1, "windowLeft", ">= -1 (-1 = off)", v);
      windowLeft = v;
      return this;
    }

    /**
     * Sets the positional encoding applied inside attention (default NONE).
     *
     * @param posEncoding the positional encoding
     * @return this builder
     */
    public Builder posEncoding(PosEncoding posEncoding) {
      this.posEncoding = Checks.notNull(posEncoding, "posEncoding");
      return this;
    }

    /**
     * Sets the RoPE scale (default 1).
     *
     * @param v the value
     * @return this builder
     */
    public Builder ropeScale(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "ropeScale", "finite and > 0", v);
      ropeScale = v;
      return this;
    }

    /**
     * Sets the RoPE base theta (default 1e4).
     *
     * @param v the value
     * @return this builder
     */
    public Builder ropeTheta(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "ropeTheta", "finite and > 0", v);
      ropeTheta = v;
      return this;
    }

    /**
     * The options set so far.
     *
     * @return the options set so far
     */
    public AttentionOptions build() {
      return new AttentionOptions(this);
    }
  }
}
