package io.github.flashinfer4j.safetensors;

import io.github.flashinfer4j.DType;
import java.util.Optional;

/**
 * The element types of the safetensors format, named as in a file's header ({@code "BF16"}, {@code "F8_E4M3"}, ...),
 * with their size and the flashinfer4j {@link DType} that holds the same bytes, where there is one. Tensors of the
 * other types (F64, I8, I16, I64, the unsigned wider ints, BOOL, F8_E8M0) are listed, validated and readable as raw
 * bytes ({@link SafetensorsFile#bytes}), but cannot become a {@link io.github.flashinfer4j.Tensor}.
 */
public enum SafetensorsDType {
  /** Boolean, one byte per element (no DType). */
  BOOL(1, null),
  /** 8-bit unsigned integer (DType.U8). */
  U8(1, DType.U8),
  /** 8-bit signed integer (no DType). */
  I8(1, null),
  /** 8-bit float, 5 exponent bits (DType.FP8_E5M2). */
  F8_E5M2(1, DType.FP8_E5M2),
  /** 8-bit float, 4 exponent bits (DType.FP8_E4M3). */
  F8_E4M3(1, DType.FP8_E4M3),
  /** 8-bit exponent-only scale (no DType). */
  F8_E8M0(1, null),
  /** 16-bit signed integer (no DType). */
  I16(2, null),
  /** 16-bit unsigned integer (no DType). */
  U16(2, null),
  /** IEEE half precision (DType.F16). */
  F16(2, DType.F16),
  /** bfloat16 (DType.BF16). */
  BF16(2, DType.BF16),
  /** 32-bit signed integer (DType.I32). */
  I32(4, DType.I32),
  /** 32-bit unsigned integer (no DType). */
  U32(4, null),
  /** IEEE single precision (DType.F32). */
  F32(4, DType.F32),
  /** IEEE double precision (no DType). */
  F64(8, null),
  /** 64-bit signed integer (no DType). */
  I64(8, null),
  /** 64-bit unsigned integer (no DType). */
  U64(8, null);

  private final int byteSize;
  private final DType dtype;

  SafetensorsDType(int byteSize, DType dtype) {
    this.byteSize = byteSize;
    this.dtype = dtype;
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
   * The flashinfer4j dtype with the same element bytes, or empty when the library has none.
   *
   * @return the flashinfer4j dtype with the same element bytes, or empty when the library has none
   */
  public Optional<DType> dtype() {
    return Optional.ofNullable(dtype);
  }

  /**
   * The safetensors type of a flashinfer4j dtype (every {@link DType} has one).
   *
   * @param dtype a flashinfer4j dtype
   * @return the safetensors type of a flashinfer4j dtype (every {@link DType} has one)
   */
  public static SafetensorsDType of(DType dtype) {
    for (SafetensorsDType t : values()) {
      if (t.dtype == dtype && dtype != null) {
        return t;
      }
    }
    throw new IllegalArgumentException("dtype must be a flashinfer4j DType, got " + dtype);
  }

  /**
   * The type named {@code name} in a header (exact, case-sensitive), or empty for a name this reader lacks.
   *
   * @param name the dtype's name in a safetensors header, e.g. "BF16"
   * @return the type named {@code name} in a header (exact, case-sensitive), or empty for a name this reader lacks
   */
  public static Optional<SafetensorsDType> parse(String name) {
    for (SafetensorsDType t : values()) {
      if (t.name().equals(name)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }
}
