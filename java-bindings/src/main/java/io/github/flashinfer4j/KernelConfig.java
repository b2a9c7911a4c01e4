package io.github.flashinfer4j;

import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.DecodePath;
import io.github.flashinfer4j.attention.PosEncoding;
import io.github.flashinfer4j.internal.Checks;
import java.util.Objects;

/**
 * One kernel configuration, as {@link Flashinfer4j#isSupported(KernelConfig)} and
 * {@link Flashinfer4j#warmUp(KernelConfig...)} take it: the op, the device, the dtype, the head dim and the variant
 * choices that select a kernel (soft cap on or off, positional encoding, and for decode the path). Immutable; build
 * one with {@link #decode(Device, DType, int)}, {@link #prefill(Device, DType, int)},
 * {@link #forDecode(Device, DType, int, AttentionOptions, DecodePath)} or
 * {@link #forPrefill(Device, DType, int, AttentionOptions)}.
 *
 * <p>On the CUDA backend decode and prefill run head dims 64, 128 and 256 with kernels compiled ahead of time, and
 * the other multiples of 16 from 16 to 256 with kernels compiled at run time by NVRTC (decode: CUDA-core path
 * only) and kept in the {@link JitCache}. A prefill kernel serves every mask (none, causal, custom), sliding window,
 * scale and soft-cap value, single, ragged and paged alike: those are run-time arguments. The CPU reference runs
 * every even head dim up to 1024.
 */
public final class KernelConfig {
  /** The operation a kernel serves. */
  public enum Op {
    /** Batch or single decode over a paged (or plain) KV cache. */
    DECODE(0),
    /** Single, ragged and paged prefill (and append), any mask. */
    PREFILL(1);

    private final int code;

    Op(int code) {
      this.code = code;
    }

    int code() {
      return code;
    }
  }

  private final Op op;
  private final Device device;
  private final DType dtype;
  private final int headDim;
  private final boolean softCap;
  private final PosEncoding posEncoding;
  private final DecodePath path;

  private KernelConfig(Builder b) {
    this.op = b.op;
    this.device = b.device;
    this.dtype = b.dtype;
    this.headDim = b.headDim;
    this.softCap = b.softCap;
    this.posEncoding = b.posEncoding;
    this.path = b.path;
  }

  /**
   * A decode configuration builder: no soft cap, no positional encoding, path AUTO.
   *
   * @param device the device the kernel would run on
   * @param dtype the dtype of q, K/V and the output
   * @param headDim the head dimension D
   * @return a decode configuration builder
   */
  public static Builder decode(Device device, DType dtype, int headDim) {
    return new Builder(Op.DECODE, device, dtype, headDim);
  }

  /**
   * A prefill configuration builder: no soft cap, no positional encoding.
   *
   * @param device the device the kernel would run on
   * @param dtype the dtype of q, K/V and the output
   * @param headDim the head dimension D
   * @return a prefill configuration builder
   */
  public static Builder prefill(Device device, DType dtype, int headDim) {
    return new Builder(Op.PREFILL, device, dtype, headDim);
  }

  /**
   * The prefill configuration that a plan (or a single prefill) with these options needs.
   *
   * @param device the device the kernel would run on
   * @param dtype the dtype of q, K/V and the output
   * @param headDim the head dimension D
   * @param options the attention variant the kernel would run
   * @return the prefill configuration that a plan (or a single prefill) with these options needs
   */
  public static KernelConfig forPrefill(Device device, DType dtype, int headDim, AttentionOptions options) {
    Checks.notNull(options, "options");
    return prefill(device, dtype, headDim)
        .softCap(options.logitsSoftCap() > 0)
        .posEncoding(options.posEncoding())
        .build();
  }

  /**
   * The decode configuration that a plan with these options needs.
   *
   * @param device the device the kernel would run on
   * @param dtype the dtype of q, K/V and the output
   * @param headDim the head dimension D
   * @param options the attention variant the kernel would run
   * @param path the decode kernel path
   * @return the decode configuration that a plan with these options needs
   */
  public static KernelConfig forDecode(Device device, DType dtype, int headDim, AttentionOptions options,
      DecodePath path) {
    Checks.notNull(options, "options");
    return decode(device, dtype, headDim)
        .softCap(options.logitsSoftCap() > 0)
        .posEncoding(options.posEncoding())
        .path(path)
        .build();
  }

  /**
   * The operation.
   *
   * @return the operation
   */
  public Op op() {
    return op;
  }

  /**
   * The device the kernel runs on.
   *
   * @return the device the kernel runs on
   */
  public Device device() {
    return device;
  }

  /**
   * The dtype of q, K/V and the output.
   *
   * @return the dtype of q, K/V and the output
   */
  public DType dtype() {
    return dtype;
  }

  /**
   * The head dimension.
   *
   * @return the head dimension
   */
  public int headDim() {
    return headDim;
  }

  /**
   * Whether the logits soft cap is on (its value is a run-time argument, not part of the kernel).
   *
   * @return whether the logits soft cap is on (its value is a run-time argument, not part of the kernel)
   */
  public boolean softCap() {
    return softCap;
  }

  /**
   * The positional encoding inside attention.
   *
   * @return the positional encoding inside attention
   */
  public PosEncoding posEncoding() {
    return posEncoding;
  }

  /**
   * The decode path (always {@link DecodePath#AUTO} for prefill).
   *
   * @return the decode path (always {@link DecodePath#AUTO} for prefill)
   */
  public DecodePath path() {
    return path;
  }

  /**
   * A builder that starts from this configuration.
   *
   * @return a builder that starts from this configuration
   */
  public Builder toBuilder() {
    return new Builder(op, device, dtype, headDim).softCap(softCap).posEncoding(posEncoding).path(path);
  }

  @Override
  public boolean equals(Object o) {
    if (this == o) {
      return true;
    }
    if (!(o instanceof KernelConfig)) {
      return false;
    }
    KernelConfig c = (KernelConfig) o;
    return op == c.op && device.equals(c.device) && dtype == c.dtype && headDim == c.headDim
        && softCap == c.softCap && posEncoding == c.posEncoding && path == c.path;
  }

  @Override
  public int hashCode() {
    return Objects.hash(op, device, dtype, headDim, softCap, posEncoding, path);
  }

  @Override
  public String toString() {
    return op.name().toLowerCase(java.util.Locale.ROOT) + "{" + device + ", " + dtype + ", headDim=" + headDim
        + ", softCap=" + softCap + ", " + posEncoding + (op == Op.DECODE ? ", path=" + path : "") + "}";
  }

  /** Builds a {@link KernelConfig}; not thread-safe. */
  public static final class Builder {
    private final Op op;
    private final Device device;
    private final DType dtype;
    private final int headDim;
    private boolean softCap;
    private PosEncoding posEncoding = PosEncoding.NONE;
    private DecodePath path = DecodePath.AUTO;

    private Builder(Op op, Device device, DType dtype, int headDim) {
      this.op = Checks.notNull(op, "op");
      if (device == null) {
        throw InvalidArgumentException.of("device", "non-null", "null");
      }
      if (dtype == null) {
        throw InvalidArgumentException.of("dtype", "non-null", "null");
      }
      Checks.check(headDim >= 1, "headDim", ">= 1", headDim);
      this.device = device;
      this.dtype = dtype;
      this.headDim = headDim;
    }

    /**
     * Sets whether the logits soft cap is on (default off).
     *
     * @param on true to turn the soft cap on
     * @return this builder
     */
    public Builder softCap(boolean on) {
      this.softCap = on;
      return this;
    }

    /**
     * Sets the positional encoding inside attention (default NONE).
     *
     * @param posEncoding the positional encoding
     * @return this builder
     */
    public Builder posEncoding(PosEncoding posEncoding) {
      this.posEncoding = Checks.notNull(posEncoding, "posEncoding");
      return this;
    }

    /**
     * The decode path; a prefill configuration takes only {@link DecodePath#AUTO}.
     *
     * @param path the decode kernel path
     * @return this builder
     */
    public Builder path(DecodePath path) {
      Checks.notNull(path, "path");
      if (op == Op.PREFILL && path != DecodePath.AUTO) {
        throw InvalidArgumentException.of("path", "AUTO for a prefill configuration", path);
      }
      this.path = path;
      return this;
    }

    /**
     * The configuration set so far.
     *
     * @return the configuration set so far
     */
    public KernelConfig build() {
      return new KernelConfig(this);
    }
  }
}
