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

  public AppendPositions(int[] batchIndices, int[] positions) {
    Checks.notNull(batchIndices, "batchIndices");
    Checks.notNull(positions, "positions");
    Checks.check(positions.length == batchIndices.length, "positions.length",
        "batchIndices.length = " + batchIndices.length, positions.length);
    this.batchIndices = batchIndices.clone();
    this.positions = positions.clone();
  }

  public int[] batchIndices() {
    return batchIndices.clone();
  }

  public int[] positions() {
    return positions.clone();
  }

  /** Number of tokens. */
  public int nnz() {
    return batchIndices.length;
  }
}
