package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Checks;

/**
 * Where each appended token goes: request {@code batchIndices()[n]} at position {@code positions()[n]}. Made by
 * {@link PagedKv#batchIndicesAndPositions(int[], int[])}. Arrays are copied in and out. Immutable and safe to
 * share between threads; the targets are validated against a page table when they are used
 * ({@link PagedKv#append(Tensor, Tensor, AppendPositions, PagedKvCache, PageTable, Stream)}).
 */
public final class AppendPositions {
  private final int[] batchIndices;
  private final int[] positions;

  /**
   * Targets of nnz new tokens: token n goes to request batchIndices[n] at position positions[n].
   *
   * @param batchIndices int32 [nnz]: the request each new token belongs to
   * @param positions int32 [nnz]: the position of each new token in its request
   */
  public AppendPositions(int[] batchIndices, int[] positions) {
    Checks.notNull(batchIndices, "batchIndices");
    Checks.notNull(positions, "positions");
    Checks.check(positions.length == batchIndices.length, "positions.length",
        "batchIndices.length = " + batchIndices.length, positions.length);
    this.batchIndices = batchIndices.clone();
    this.positions = positions.clone();
  }

  /**
   * The request of each token (the array itself, not a copy).
   *
   * @return the request of each token (the array itself, not a copy)
   */
  public int[] batchIndices() {
    return batchIndices.clone();
  }

  /**
   * The position of each token in its request (the array itself, not a copy).
   *
   * @return the position of each token in its request (the array itself, not a copy)
   */
  public int[] positions() {
    return positions.clone();
  }

  /**
   * Number of tokens.
   *
   * @return number of tokens
   */
  public int nnz() {
    return batchIndices.length;
  }
}
