package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.Tensor;

/** Which decode kernel runs; both compute the same function (they agree to 1e-3). */
public enum DecodePath {
  /** Tensor cores for query groups of 4 and more (the group's heads are rows of one tile), else CUDA cores. */
  AUTO(-1),
  /** One lane group per token row on the CUDA cores: best for small groups (MHA, GQA 2-3). */
  CUDA_CORES(0),
  /** The group's query heads as rows of an mma tile: best for wide groups (GQA 4+). */
  TENSOR_CORES(1);

  private final int code;

  DecodePath(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }

  static DecodePath of(int code) {
    for (DecodePath p : values()) {
      if (p.code == code) {
        return p;
      }
    }
    throw new IllegalArgumentException("unknown decode path " + code);
  }
}
