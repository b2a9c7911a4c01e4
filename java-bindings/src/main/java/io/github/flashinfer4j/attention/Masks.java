package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Helpers for custom attention masks: packing (the bit layout of
 * <a href="https://github.com/flashinfer4j/flashinfer4j/blob/main/docs/SPEC.md">docs/SPEC.md</a>, as FlashInfer's {@code packbits} and
 * {@code segment_packbits} with {@code bitorder="little"}) and speculative-decoding tree masks. Stateless and
 * thread-safe; packing runs in the native library (host memory only).
 */
public final class Masks {
  private Masks() {}

  /**
   * Packs booleans into {@code (n + 7) / 8} bytes: element o is bit {@code o % 8} of byte {@code o / 8}; the
   * unused high bits of the last byte are 0.
   *
   * @param mask the booleans, row-major (true = keep)
   * @return the packed bytes, (n + 7) / 8 of them
   */
  public static byte[] packbits(boolean[] mask) {
    Checks.notNull(mask, "mask");
    Native.ensureLoaded();
    byte[] packed = new byte[(int) ((mask.length + 7L) / 8)];
    if (mask.length > 0) {
      Native.check(Fi4j.fi4j_packbits(toBytes(mask), mask.length, packed));
    }
    return packed;
  }

  /**
   * Packs each segment {@code mask[indptr[b] .. indptr[b+1])} on its own, padded to whole bytes, and returns the
   * bytes with each segment's byte offset. For a prefill's custom mask, segment b is request b's
   * {@code qoLen x kvLen} matrix, so {@code indptr[b+1] - indptr[b] = qoLen_b * kvLen_b}.
   *
   * @param mask the booleans, row-major (true = keep)
   * @param indptr int32 [batch + 1]: request b's elements are mask[indptr[b] .. indptr[b+1]-1]
   * @return the packed bytes of all segments and each segment's byte offset
   */
  public static PackedMask segmentPackbits(boolean[] mask, int[] indptr) {
    Checks.notNull(mask, "mask");
    Checks.notNull(indptr, "indptr");
    Checks.check(indptr.length >= 1, "indptr.length", ">= 1 (batch + 1)", indptr.length);
    int batch = indptr.length - 1;
    Checks.check(indptr[0] == 0, "indptr[0]", "0", indptr[0]);
    long bytes = 0;
    for (int b = 0; b < batch; b++) {
      Checks.check(indptr[b + 1] >= indptr[b], "indptr[" + (b + 1) + "]",
          ">= indptr[" + b + "] = " + indptr[b] + " (non-decreasing)", indptr[b + 1]);
      bytes += (indptr[b + 1] - (long) indptr[b] + 7) / 8;
    }
    Checks.check(indptr[batch] == mask.length, "indptr[" + batch + "]", "mask.length = " + mask.length,
        indptr[batch]);
    Native.ensureLoaded();
    byte[] packed = new byte[(int) bytes];
    int[] packedIndptr = new int[batch + 1];
    Native.check(Fi4j.fi4j_segment_packbits(toBytes(mask), indptr, batch, packed, bytes, packedIndptr));
    return PackedMask.owning(packed, packedIndptr);
  }

  /**
   * The custom mask of one request that verifies a tree of draft tokens (speculative decoding): the request's
   * keys are {@code prefixLen} committed tokens followed by the {@code n = parents.length} draft tokens, which are
   * also its query rows, in an order where each parent precedes its children ({@code parents[i] < i}, -1 for a
   * child of the last committed token). Row i keeps the whole prefix, draft token i and its ancestors; nothing
   * else. Returns the {@code [n, prefixLen + n]} row-major matrix for {@link AttentionMask#custom(boolean[])}
   * (concatenate those of several requests, or pack them with {@link #segmentPackbits}).
   *
   * <p>Positions: draft token i is key {@code prefixLen + i} of the request, but its position in the text is
   * {@code prefixLen + depth(i)} (depth 0 for parent -1). Apply RoPE to its query and key at that position before
   * appending and attend with {@link PosEncoding#NONE}: RoPE inside attention ({@link PosEncoding#ROPE_LLAMA})
   * rotates key j and query row i by their indices, which is right only when {@code depth(i) = i} (a chain). The
   * example is {@code java -jar benchmarks.jar spec-verify}.
   *
   * @param prefixLen the tokens before the tree that every node sees
   * @param parents each draft node's parent node (-1 for a child of the prefix), parents before children
   * @return the custom mask of one request that verifies a tree of draft tokens (speculative decoding)
   */
  public static boolean[] tree(int prefixLen, int[] parents) {
    Checks.check(prefixLen >= 0, "prefixLen", ">= 0", prefixLen);
    Checks.notNull(parents, "parents");
    int n = parents.length;
    long kv = (long) prefixLen + n;
    Checks.check(n * kv <= Integer.MAX_VALUE - 8, "parents.length x (prefixLen + parents.length)", "< 2^31",
        n * kv);
    boolean[] mask = new boolean[(int) (n * kv)];
    for (int i = 0; i < n; i++) {
      Checks.check(parents[i] >= -1 && parents[i] < i, "parents[" + i + "]", "in [-1, " + i + ") (parents first)",
          parents[i]);
      int row = (int) (i * kv);
      for (int j = 0; j < prefixLen; j++) {
        mask[row + j] = true;
      }
      for (int a = i; a >= 0; a = parents[a]) {
        mask[row + prefixLen + a] = true;
      }
    }
    return mask;
  }

  private static byte[] toBytes(boolean[] mask) {
    byte[] b = new byte[mask.length];
    for (int i = 0; i < mask.length; i++) {
      b[i] = (byte) (mask[i] ? 1 : 0);
    }
    return b;
  }
}
