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

  public static AttentionOptions defaults() {
    return DEFAULTS;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from these options. */
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

  /** The scale applied to q.k, or NaN for the default 1/sqrt(head_dim). */
  public float smScale() {
    return smScale;
  }

  /** The scale for a head dim: the explicit one, or 1/sqrt(headDim). */
  public float smScale(int headDim) {
    return Float.isNaN(smScale) ? (float) (1.0 / Math.sqrt(headDim)) : smScale;
  }

  /** Soft cap c (logits become c*tanh(x/c)); 0 = off. */
  public float logitsSoftCap() {
    return logitsSoftCap;
  }

  /** Sliding window: keys j >= pos_q - windowLeft are seen; -1 = off. */
  public int windowLeft() {
    return windowLeft;
  }

  public PosEncoding posEncoding() {
    return posEncoding;
  }

  public float ropeScale() {
    return ropeScale;
  }

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

    /** Scale of q.k; must be finite and > 0. */
    public Builder smScale(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "smScale", "finite and > 0", v);
      smScale = v;
      return this;
    }

    /** Soft cap (> 0), or 0 to switch it off. */
    public Builder logitsSoftCap(float v) {
      Checks.check(Float.isFinite(v) && v >= 0, "logitsSoftCap", "finite and >= 0 (0 = off)", v);
      logitsSoftCap = v;
      return this;
    }

    /** Sliding window size to the left (>= 0), or -1 to switch it off. */
    public Builder windowLeft(int v) {
      Checks.check(v >= -1, "windowLeft", ">= -1 (-1 = off)", v);
      windowLeft = v;
      return this;
    }

    public Builder posEncoding(PosEncoding posEncoding) {
      this.posEncoding = Checks.notNull(posEncoding, "posEncoding");
      return this;
    }

    public Builder ropeScale(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "ropeScale", "finite and > 0", v);
      ropeScale = v;
      return this;
    }

    public Builder ropeTheta(float v) {
      Checks.check(Float.isFinite(v) && v > 0, "ropeTheta", "finite and > 0", v);
      ropeTheta = v;
      return this;
    }

    public AttentionOptions build() {
      return new AttentionOptions(this);
    }
  }
}
