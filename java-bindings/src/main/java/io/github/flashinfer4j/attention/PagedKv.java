package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;

/**
 * Writing keys and values into a {@link PagedKvCache}. Token n of {@code keys}/{@code values}
 * ({@code [nnz, numKvHeads, headDim]}) goes to request {@code batchIndices[n]} at position {@code positions[n]},
 * i.e. page {@code kvIndices[kvIndptr[b] + pos / pageSize]}, slot {@code pos % pageSize}. The page table must
 * already cover the appended positions.
 *
 * <p>What is checked before anything is written: shapes, dtypes and devices of keys, values and the cache; the
 * stream's device; the page table against the cache (device, page size, every page id below the cache's page
 * count); and, for targets given as host arrays, every (request, position) against the page table. Targets given
 * as device tensors cannot be read on the host without a copy: their contents are not checked on the host (the
 * CPU backend checks them in C; the CUDA kernel skips any token outside its request's pages, so no write lands
 * outside them). A CUDA-graph replay of an append skips every host check (no host code runs at replay); the
 * kernel's skip of out-of-range tokens still holds.
 *
 * <p>Threads: static and stateless; concurrent appends to distinct caches (or disjoint pages of one cache) on
 * distinct streams are safe.
 */
public final class PagedKv {
  private static final CoreAccess CORE = Access.core();

  /** Most tokens one call may append (the targets are staged as Java arrays). */
  static final int MAX_TOKENS = (Integer.MAX_VALUE - 8) / 2;

  private PagedKv() {}

  /**
   * Turns per-request append counts into per-token targets: request b appends tokens
   * {@code appendIndptr[b] .. appendIndptr[b+1]} at the last positions of its {@code seqLens[b]} tokens (the
   * lengths after the append), so token n gets position {@code seqLens[b] - count_b + (n - appendIndptr[b])}.
   *
   * @param appendIndptr int32 [batch + 1]: request b's new tokens are rows appendIndptr[b] .. appendIndptr[b+1]-1
   * @param seqLens tokens per request after the append, new ones included
   * @return the request and the position of each new token, in token order
   */
  public static AppendPositions batchIndicesAndPositions(int[] appendIndptr, int[] seqLens) {
    Checks.notNull(appendIndptr, "appendIndptr");
    Checks.notNull(seqLens, "seqLens");
    int batch = seqLens.length;
    Checks.check(appendIndptr.length == (long) batch + 1, "appendIndptr.length",
        "seqLens.length + 1 = " + ((long) batch + 1), appendIndptr.length);
    Checks.check(appendIndptr[0] == 0, "appendIndptr[0]", "0", appendIndptr[0]);
    for (int b = 0; b < batch; b++) {
      Checks.check(appendIndptr[b + 1] >= appendIndptr[b], "appendIndptr[" + (b + 1) + "]",
          ">= appendIndptr[" + b + "] = " + appendIndptr[b], appendIndptr[b + 1]);
      int count = appendIndptr[b + 1] - appendIndptr[b];
      Checks.check(seqLens[b] >= count, "seqLens[" + b + "]", ">= the " + count + " tokens appended to request " + b,
          seqLens[b]);
    }
    int nnz = appendIndptr[batch];
    Checks.check(nnz <= MAX_TOKENS, "appendIndptr[" + batch + "]", "<= " + MAX_TOKENS + " tokens in one call", nnz);
    int[] bi = new int[nnz];
    int[] pos = new int[nnz];
    for (int b = 0; b < batch; b++) {
      int start = appendIndptr[b];
      int count = appendIndptr[b + 1] - start;
      for (int i = 0; i < count; i++) {
        bi[start + i] = b;
        pos[start + i] = seqLens[b] - count + i;
      }
    }
    return new AppendPositions(bi, pos);
  }

  /**
   * Appends on the device's default stream; see
   * {@link #append(Tensor, Tensor, int[], int[], PagedKvCache, PageTable, Stream)}.
   *
   * @param keys the new keys, [nnz, numKvHeads, headDim], in the cache's dtype
   * @param values the new values, shaped as keys
   * @param batchIndices int32 [nnz]: the request each new token belongs to
   * @param positions int32 [nnz]: the position of each new token in its request
   * @param cache the paged KV cache written to
   * @param pageTable the page table, which already covers the appended positions
   */
  public static void append(Tensor keys, Tensor values, int[] batchIndices, int[] positions, PagedKvCache cache,
      PageTable pageTable) {
    append(keys, values, batchIndices, positions, cache, pageTable, null);
  }

  /**
   * Appends tokens whose targets were made by {@link #batchIndicesAndPositions(int[], int[])}.
   *
   * @param keys the new keys, [nnz, numKvHeads, headDim], in the cache's dtype
   * @param values the new values, shaped as keys
   * @param targets the batch indices and positions of the new tokens
   * @param cache the paged KV cache written to
   * @param pageTable the page table, which already covers the appended positions
   * @param stream the stream to queue the copy on, or null for the device's default stream
   */
  public static void append(Tensor keys, Tensor values, AppendPositions targets, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    Checks.notNull(targets, "targets");
    append(keys, values, targets.batchIndices(), targets.positions(), cache, pageTable, stream);
  }

  /**
   * Appends with targets given as host arrays: every (request, position) is validated against the page table
   * before anything is written, so a bad target is an {@link InvalidArgumentException} and no byte of the cache
   * changes. The targets are staged to the device for the kernel, which is then complete when this returns for
   * the CPU backend, and queued on {@code stream} for CUDA (null = default stream).
   *
   * @param keys the new keys, [nnz, numKvHeads, headDim], in the cache's dtype
   * @param values the new values, shaped as keys
   * @param batchIndices int32 [nnz]: the request each new token belongs to
   * @param positions int32 [nnz]: the position of each new token in its request
   * @param cache the paged KV cache written to
   * @param pageTable the page table, which already covers the appended positions
   * @param stream the stream to queue the copy on, or null for the device's default stream
   */
  public static void append(Tensor keys, Tensor values, int[] batchIndices, int[] positions, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    Checks.notNull(keys, "keys");
    Checks.notNull(values, "values");
    Checks.notNull(batchIndices, "batchIndices");
    Checks.notNull(positions, "positions");
    Checks.notNull(cache, "cache");
    Checks.notNull(pageTable, "pageTable");
    checkTokens(keys, values, cache);
    int nnz = Math.toIntExact(keys.size(0));
    Checks.check(nnz <= MAX_TOKENS, "keys.size(0)", "<= " + MAX_TOKENS + " tokens in one call", nnz);
    Checks.check(batchIndices.length == nnz, "batchIndices.length", "keys.size(0) = " + nnz, batchIndices.length);
    Checks.check(positions.length == nnz, "positions.length", "keys.size(0) = " + nnz, positions.length);
    int batch = pageTable.batchSize();
    for (int n = 0; n < nnz; n++) {
      int b = batchIndices[n];
      Checks.check(b >= 0 && b < batch, "batchIndices[" + n + "]", "in [0, " + batch + ")", b);
      int len = pageTable.kvLen(b);
      Checks.check(positions[n] >= 0 && positions[n] < len, "positions[" + n + "]",
          "in [0, " + len + ") (the tokens request " + b + "'s pages hold)", positions[n]);
    }
    checkLaunch(cache, pageTable, stream);
    if (nnz == 0) {
      return;
    }
    try (Tensor staged = CORE.allocate("PagedKv.append targets", cache.device(), DType.I32, 2, nnz)) {
      int[] both = Arrays.copyOf(batchIndices, 2 * nnz);
      System.arraycopy(positions, 0, both, nnz, nnz);
      staged.copyFrom(both);
      launch(keys, values, staged.select(0, 0), staged.select(0, 1), cache, pageTable, stream);
      if (cache.device().isCuda()) {
        // the staged targets are freed on return; make sure the kernel has read them
        (stream == null ? Stream.defaultStream(cache.device()) : stream).synchronize();
      }
    }
  }

  /**
   * Appends with targets already in device memory (I32 {@code [nnz]}), the allocation-free path for a serving
   * loop. Their contents cannot be checked on the host without a copy: the kernel skips any token whose request
   * or position lies outside the page table (nothing outside the request's pages is ever written), and the
   * caller is responsible for the targets being right.
   *
   * @param keys the new keys, [nnz, numKvHeads, headDim], in the cache's dtype
   * @param values the new values, shaped as keys
   * @param batchIndices int32 [nnz]: the request each new token belongs to
   * @param positions int32 [nnz]: the position of each new token in its request
   * @param cache the paged KV cache written to
   * @param pageTable the page table, which already covers the appended positions
   * @param stream the stream to queue the copy on, or null for the device's default stream
   */
  public static void append(Tensor keys, Tensor values, Tensor batchIndices, Tensor positions, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    Checks.notNull(keys, "keys");
    Checks.notNull(values, "values");
    Checks.notNull(batchIndices, "batchIndices");
    Checks.notNull(positions, "positions");
    Checks.notNull(cache, "cache");
    Checks.notNull(pageTable, "pageTable");
    checkTokens(keys, values, cache);
    long nnz = keys.size(0);
    for (Object[] t : new Object[][] {{batchIndices, "batchIndices"}, {positions, "positions"}}) {
      Tensor x = (Tensor) t[0];
      String name = (String) t[1];
      Checks.open(x, name);
      Checks.dtype(x, name, DType.I32);
      Checks.device(x, name, cache.device());
      Checks.shape(x, name, nnz);
      Checks.check(x.isContiguous(), name, "contiguous (the kernel reads nnz consecutive ints)",
          "strides " + Arrays.toString(x.strides()));
    }
    checkLaunch(cache, pageTable, stream);
    launch(keys, values, batchIndices, positions, cache, pageTable, stream);
  }

  private static void checkTokens(Tensor keys, Tensor values, PagedKvCache cache) {
    Checks.open(keys, "keys");
    Checks.open(values, "values");
    Checks.open(cache, "cache");
    Checks.check(keys.dim() == 3, "keys.dim()", "3 ([nnz, numKvHeads, headDim])", keys.dim());
    long nnz = keys.size(0);
    Checks.check(nnz <= Integer.MAX_VALUE, "keys.size(0)", "<= 2^31-1", nnz);
    Checks.shape(keys, "keys", nnz, cache.numKvHeads(), cache.headDim());
    Checks.shape(values, "values", nnz, cache.numKvHeads(), cache.headDim());
    Checks.dtype(keys, "keys", cache.dtype());
    Checks.dtype(values, "values", cache.dtype());
    Checks.device(keys, "keys", cache.device());
    Checks.device(values, "values", cache.device());
    Checks.lastDimContiguous(keys, "keys");
    Checks.lastDimContiguous(values, "values");
  }

  private static void checkLaunch(PagedKvCache cache, PageTable pageTable, Stream stream) {
    Checks.open(pageTable, "pageTable");
    pageTable.checkCompatible(cache);
    Checks.stream(stream, cache.device());
  }

  private static void launch(Tensor keys, Tensor values, Tensor bi, Tensor pos, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    try (Native.Pins pins = new Native.Pins();
        Fi4j.fi4j_append_args args = new Fi4j.fi4j_append_args()) {
      args.nnz(Math.toIntExact(keys.size(0)))
          .keys(CORE.pointer(keys, pins))
          .keys_stride_n(keys.stride(0))
          .keys_stride_h(keys.stride(1))
          .values(CORE.pointer(values, pins))
          .values_stride_n(values.stride(0))
          .values_stride_h(values.stride(1))
          .batch_indices(CORE.pointer(bi, pins))
          .positions(CORE.pointer(pos, pins));
      cache.fill(args.kv(), pins);
      pageTable.fill(args.kv(), pins);
      Pointer s = stream == null ? null : CORE.pointer(stream, pins);
      Native.check(Fi4j.fi4j_append_paged_kv(CORE.code(cache.device()), args, s));
    }
  }
}
