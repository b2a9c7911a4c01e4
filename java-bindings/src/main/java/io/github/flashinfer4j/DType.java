package io.github.flashinfer4j;

/** Element types of tensors. Attention takes F16 or BF16; index arrays are I32; LSE is F32. */
public enum DType {
  /** IEEE half precision. */
  F16(0, 2),
  /** bfloat16. */
  BF16(1, 2),
  /** IEEE single precision. */
  F32(2, 4),
  /** 32-bit signed integer. */
  I32(3, 4),
  /** 8-bit unsigned integer (bytes, workspaces). */
  U8(4, 1),
  /** 8-bit float, 4 exponent and 3 mantissa bits. */
  FP8_E4M3(5, 1),
  /** 8-bit float, 5 exponent and 2 mantissa bits. */
  FP8_E5M2(6, 1);

  private final int code;
  private final int byteSize;

  DType(int code, int byteSize) {
    this.code = code;
    this.byteSize = byteSize;
  }

  /**
   * Bytes per element.
   *
   * @return bytes per element
   */
  public int byteSize() {
    return byteSize;
  }

  /**
   * True for the types whose values convert to and from Java floats (F16, BF16, F32).
   *
   * @return true for the types whose values convert to and from Java floats (F16, BF16, F32)
   */
  public boolean isFloatingPoint() {
    return this == F16 || this == BF16 || this == F32;
  }

  int code() {
    return code;
  }
}
