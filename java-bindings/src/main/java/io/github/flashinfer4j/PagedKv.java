package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Writing keys and values into a {@link PagedKvCache}. Token n of {@code keys}/{@code values}
 * ({@code [nnz, numKvHeads, headDim]}) goes to request {@code batchIndices[n]} at position {@code positions[n]},
 * i.e. page {@code kvIndices[kvIndptr[b] + pos / pageSize]}, slot {@code pos % pageSize}. The page table must
 * already cover the appended positions.
 */
public final class PagedKv {
  private PagedKv() {}

  /**
   * Turns per-request append counts into per-token targets: request b appends tokens
   * {@code appendIndptr[b] .. appendIndptr[b+1]} at the last positions of its {@code seqLens[b]} tokens (the
   * lengths after the append), so token n gets position {@code seqLens[b] - count_b + (n - appendIndptr[b])}.
   */
  public static AppendPositions batchIndicesAndPositions(int[] appendIndptr, int[] seqLens) {
    Checks.notNull(appendIndptr, "appendIndptr");
    Checks.notNull(seqLens, "seqLens");
    int batch = seqLens.length;
    Checks.check(appendIndptr.length == batch + 1, "appendIndptr.length", "seqLens.length + 1 = " + (batch + 1),
        appendIndptr.length);
    Checks.check(appendIndptr[0] == 0, "appendIndptr[0]", "0", appendIndptr[0]);
    for (int b = 0; b < batch; b++) {
      int count = appendIndptr[b + 1] - appendIndptr[b];
      Checks.check(appendIndptr[b + 1] >= appendIndptr[b], "appendIndptr[" + (b + 1) + "]",
          ">= appendIndptr[" + b + "] = " + appendIndptr[b], appendIndptr[b + 1]);
      Checks.check(seqLens[b] >= count, "seqLens[" + b + "]", ">= the " + count + " tokens appended to request " + b,
          seqLens[b]);
    }
    int nnz = appendIndptr[batch];
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

  /** Appends on the device's default stream; see {@link #append(Tensor, Tensor, int[], int[], PagedKvCache, PageTable, Stream)}. */
  public static void append(Tensor keys, Tensor values, int[] batchIndices, int[] positions, PagedKvCache cache,
      PageTable pageTable) {
    append(keys, values, batchIndices, positions, cache, pageTable, null);
  }

  /** Appends tokens whose targets were made by {@link #batchIndicesAndPositions(int[], int[])}. */
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
   */
  public static void append(Tensor keys, Tensor values, int[] batchIndices, int[] positions, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    Checks.notNull(batchIndices, "batchIndices");
    Checks.notNull(positions, "positions");
    Checks.notNull(cache, "cache");
    Checks.notNull(pageTable, "pageTable");
    checkTokens(keys, values, cache);
    int nnz = Math.toIntExact(keys.size(0));
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
    try (Tensor bi = Tensor.fromInts(cache.device(), batchIndices, nnz);
        Tensor pos = Tensor.fromInts(cache.device(), positions, nnz)) {
      launch(keys, values, bi, pos, cache, pageTable, stream);
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
   */
  public static void append(Tensor keys, Tensor values, Tensor batchIndices, Tensor positions, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
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
    }
    launch(keys, values, batchIndices, positions, cache, pageTable, stream);
  }

  private static void checkTokens(Tensor keys, Tensor values, PagedKvCache cache) {
    Checks.open(keys, "keys");
    Checks.open(values, "values");
    cache.checkOpen();
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

  private static void launch(Tensor keys, Tensor values, Tensor bi, Tensor pos, PagedKvCache cache,
      PageTable pageTable, Stream stream) {
    pageTable.checkCompatible(cache);
    if (stream != null) {
      Checks.check(stream.device().equals(cache.device()), "stream.device", cache.device().toString(),
          stream.device());
    }
    try (Fi4j.fi4j_append_args args = new Fi4j.fi4j_append_args()) {
      args.nnz(Math.toIntExact(keys.size(0)))
          .keys(keys.pointer())
          .keys_stride_n(keys.stride(0))
          .keys_stride_h(keys.stride(1))
          .values(values.pointer())
          .values_stride_n(values.stride(0))
          .values_stride_h(values.stride(1))
          .batch_indices(bi.pointer())
          .positions(pos.pointer());
      cache.fill(args.kv());
      pageTable.fill(args.kv());
      Native.check(Fi4j.fi4j_append_paged_kv(cache.device().code(), args, stream == null ? null : stream.pointer()));
    }
  }
}
