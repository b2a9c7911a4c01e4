package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Checks;
import java.util.Arrays;

/**
 * A custom attention mask in packed form
 * (<a href="https://github.com/flashinfer4j/flashinfer4j/blob/main/docs/SPEC.md">docs/SPEC.md</a>): request b's {@code qoLen x kvLen} booleans, row-major,
 * little-endian bit order (element o is bit {@code o % 8} of byte {@code o / 8}), start at byte
 * {@code indptr()[b]} of {@link #bits()}; each request is padded to a whole byte. Made by
 * {@link Masks#segmentPackbits(boolean[], int[])} or from bytes packed elsewhere (FlashInfer's
 * {@code segment_packbits(..., bitorder="little")} gives the same bytes and offsets).
 *
 * <p>Immutable (arrays are copied in and out) and safe to share between threads. Checked on construction for
 * consistent offsets; checked against the request lengths when a prefill plan uses it.
 */
public final class PackedMask {
  private final byte[] bits;
  private final int[] indptr;

  private PackedMask(byte[] bits, int[] indptr) {
    this.bits = bits;
    this.indptr = indptr;
  }

  /**
   * A packed mask from its bytes and per-request byte offsets ({@code indptr.length = batch + 1},
   * {@code indptr[0] = 0}, non-decreasing, {@code indptr[batch] <= bits.length}).
   *
   * @param bits the packed bits of all requests, each request starting at a whole byte
   * @param indptr int32 [batch + 1]: request b's bits start at byte indptr[b]
   * @return a packed mask from its bytes and per-request byte offsets ({@code indptr.length = batch + 1}, {@code
   *     indptr[0] = 0}, non-decreasing, {@code indptr[batch] <= bits.length})
   */
  public static PackedMask of(byte[] bits, int[] indptr) {
    Checks.notNull(bits, "bits");
    Checks.notNull(indptr, "indptr");
    Checks.check(indptr.length >= 1, "indptr.length", ">= 1 (batch + 1)", indptr.length);
    Checks.check(indptr[0] == 0, "indptr[0]", "0", indptr[0]);
    for (int b = 1; b < indptr.length; b++) {
      Checks.check(indptr[b] >= indptr[b - 1], "indptr[" + b + "]",
          ">= indptr[" + (b - 1) + "] = " + indptr[b - 1] + " (non-decreasing)", indptr[b]);
    }
    int last = indptr[indptr.length - 1];
    Checks.check(last <= bits.length, "indptr[" + (indptr.length - 1) + "]", "<= bits.length = " + bits.length, last);
    return new PackedMask(bits.clone(), indptr.clone());
  }

  /** Wraps arrays made by this package without copying them. */
  static PackedMask owning(byte[] bits, int[] indptr) {
    return new PackedMask(bits, indptr);
  }

  /**
   * The packed bytes (a copy).
   *
   * @return the packed bytes (a copy)
   */
  public byte[] bits() {
    return bits.clone();
  }

  /**
   * Byte offset of each request's bits, {@code batchSize() + 1} entries (a copy).
   *
   * @return byte offset of each request's bits, {@code batchSize() + 1} entries (a copy)
   */
  public int[] indptr() {
    return indptr.clone();
  }

  /**
   * Requests in the mask.
   *
   * @return requests in the mask
   */
  public int batchSize() {
    return indptr.length - 1;
  }

  /**
   * Whether element {@code element} (= {@code i * kvLen + j}) of request b is kept.
   *
   * @param b the request index, {@code 0 <= b < batchSize()}
   * @param element the element index within the request, row * kvLen + key
   * @return whether element {@code element} (= {@code i * kvLen + j}) of request b is kept
   */
  public boolean get(int b, long element) {
    Checks.check(b >= 0 && b < batchSize(), "b", "in [0, " + batchSize() + ")", b);
    long bytes = indptr[b + 1] - (long) indptr[b];
    Checks.check(element >= 0 && element < 8 * bytes, "element", "in [0, " + 8 * bytes + ")", element);
    return ((bits[(int) (indptr[b] + element / 8)] >> (int) (element % 8)) & 1) != 0;
  }

  byte[] bitsNoCopy() {
    return bits;
  }

  int[] indptrNoCopy() {
    return indptr;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PackedMask && Arrays.equals(bits, ((PackedMask) o).bits)
        && Arrays.equals(indptr, ((PackedMask) o).indptr);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(bits) + Arrays.hashCode(indptr);
  }

  @Override
  public String toString() {
    return "PackedMask{batch=" + batchSize() + ", bytes=" + indptr[indptr.length - 1] + "}";
  }
}
