package io.github.flashinfer4j;

import java.util.Arrays;

/**
 * Which pages of a paged KV cache hold each request's tokens, in CSR form: request b owns page ids
 * {@code kvIndices[kvIndptr[b] .. kvIndptr[b+1])}, and its last page holds {@code kvLastPageLen[b]} tokens, so
 * {@code kvLen(b) = pageSize * (pages - 1) + kvLastPageLen[b]} (0 for a request with no pages).
 *
 * <p>Immutable. Validated on construction (monotone indptr starting at 0, within the indices, non-negative page
 * ids, last-page lengths in 0..pageSize and 0 for empty requests); page ids are checked against a cache's page
 * count whenever the table is used with a cache. Keeps host copies (for checks and planning) and copies in the
 * device's memory (for the kernels), which {@link #close()} frees. Safe to share between threads once built.
 */
public final class PageTable implements AutoCloseable {
  private final Device device;
  private final int pageSize;
  private final int[] indptr;
  private final int[] indices;
  private final int[] lastPageLen;
  private final int maxPageId;
  private final long totalTokens;
  private final Tensor dIndptr;
  private final Tensor dIndices;
  private final Tensor dLastPageLen;

  private PageTable(Device device, int pageSize, int[] indptr, int[] indices, int[] lastPageLen) {
    this.device = device;
    this.pageSize = pageSize;
    this.indptr = indptr;
    this.indices = indices;
    this.lastPageLen = lastPageLen;
    int batch = lastPageLen.length;
    int max = -1;
    for (int i = 0; i < indptr[batch]; i++) {
      max = Math.max(max, indices[i]);
    }
    this.maxPageId = max;
    long tokens = 0;
    for (int b = 0; b < batch; b++) {
      tokens += kvLen(b);
    }
    this.totalTokens = tokens;
    Tensor a = null;
    Tensor b = null;
    Tensor c = null;
    try {
      a = Tensor.fromInts(device, indptr, indptr.length);
      b = Tensor.fromInts(device, indices, indices.length);
      c = Tensor.fromInts(device, lastPageLen, lastPageLen.length);
    } catch (RuntimeException e) {
      for (Tensor t : new Tensor[] {a, b, c}) {
        if (t != null) {
          t.close();
        }
      }
      throw e;
    }
    this.dIndptr = a;
    this.dIndices = b;
    this.dLastPageLen = c;
  }

  /** Builds and validates a page table from host arrays and copies it to {@code device}. */
  public static PageTable of(Device device, int pageSize, int[] kvIndptr, int[] kvIndices, int[] kvLastPageLen) {
    Checks.notNull(device, "device");
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    Checks.notNull(kvIndptr, "kvIndptr");
    Checks.notNull(kvIndices, "kvIndices");
    Checks.notNull(kvLastPageLen, "kvLastPageLen");
    int batch = kvLastPageLen.length;
    Checks.check(kvIndptr.length == batch + 1, "kvIndptr.length",
        "kvLastPageLen.length + 1 = " + (batch + 1), kvIndptr.length);
    Checks.check(kvIndptr[0] == 0, "kvIndptr[0]", "0", kvIndptr[0]);
    for (int b = 0; b < batch; b++) {
      Checks.check(kvIndptr[b + 1] >= kvIndptr[b], "kvIndptr[" + (b + 1) + "]",
          ">= kvIndptr[" + b + "] = " + kvIndptr[b] + " (non-decreasing)", kvIndptr[b + 1]);
      int last = kvLastPageLen[b];
      if (kvIndptr[b + 1] == kvIndptr[b]) {
        Checks.check(last == 0, "kvLastPageLen[" + b + "]", "0 for a request with no pages", last);
      } else {
        Checks.check(last >= 0 && last <= pageSize, "kvLastPageLen[" + b + "]", "in [0, " + pageSize + "]", last);
      }
    }
    Checks.check(kvIndptr[batch] <= kvIndices.length, "kvIndptr[" + batch + "]",
        "<= kvIndices.length = " + kvIndices.length, kvIndptr[batch]);
    for (int i = 0; i < kvIndptr[batch]; i++) {
      Checks.check(kvIndices[i] >= 0, "kvIndices[" + i + "]", ">= 0", kvIndices[i]);
    }
    return new PageTable(device, pageSize, kvIndptr.clone(), kvIndices.clone(), kvLastPageLen.clone());
  }

  /** Builds a page table from I32 tensors (any device): copies them to the host, validates, and uploads. */
  public static PageTable fromTensors(Device device, int pageSize, Tensor kvIndptr, Tensor kvIndices,
      Tensor kvLastPageLen) {
    Checks.open(kvIndptr, "kvIndptr");
    Checks.open(kvIndices, "kvIndices");
    Checks.open(kvLastPageLen, "kvLastPageLen");
    Checks.dtype(kvIndptr, "kvIndptr", DType.I32);
    Checks.dtype(kvIndices, "kvIndices", DType.I32);
    Checks.dtype(kvLastPageLen, "kvLastPageLen", DType.I32);
    return of(device, pageSize, kvIndptr.toIntArray(), kvIndices.toIntArray(), kvLastPageLen.toIntArray());
  }

  /**
   * A page table that gives each request consecutive pages from 0 on, with {@code kvLens[b]} tokens each: the
   * layout a simple allocator produces.
   */
  public static PageTable contiguous(Device device, int pageSize, int[] kvLens) {
    Checks.notNull(kvLens, "kvLens");
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    int batch = kvLens.length;
    int[] indptr = new int[batch + 1];
    int[] last = new int[batch];
    for (int b = 0; b < batch; b++) {
      Checks.check(kvLens[b] >= 0, "kvLens[" + b + "]", ">= 0", kvLens[b]);
      int pages = (kvLens[b] + pageSize - 1) / pageSize;
      indptr[b + 1] = Math.addExact(indptr[b], pages);
      last[b] = pages == 0 ? 0 : kvLens[b] - (pages - 1) * pageSize;
    }
    int[] indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = i;
    }
    return of(device, pageSize, indptr, indices, last);
  }

  public Device device() {
    return device;
  }

  public int pageSize() {
    return pageSize;
  }

  public int batchSize() {
    return lastPageLen.length;
  }

  /** Number of pages of request b. */
  public int numPages(int b) {
    Checks.check(b >= 0 && b < batchSize(), "b", "in [0, " + batchSize() + ")", b);
    return indptr[b + 1] - indptr[b];
  }

  /** Tokens held by request b. */
  public int kvLen(int b) {
    int pages = numPages(b);
    return pages == 0 ? 0 : pageSize * (pages - 1) + lastPageLen[b];
  }

  /** Tokens held by all requests together. */
  public long totalTokens() {
    return totalTokens;
  }

  /** The largest page id used, or -1 when no request has a page. */
  public int maxPageId() {
    return maxPageId;
  }

  public int[] kvIndptr() {
    return indptr.clone();
  }

  public int[] kvIndices() {
    return indices.clone();
  }

  public int[] kvLastPageLen() {
    return lastPageLen.clone();
  }

  /** Checks that this table can index {@code cache}: same device, page size, and page ids below its page count. */
  void checkCompatible(PagedKvCache cache) {
    checkOpen();
    Checks.check(cache.device().equals(device), "cache.device", "the page table's device " + device, cache.device());
    Checks.check(cache.pageSize() == pageSize, "cache.pageSize", "the page table's page size " + pageSize,
        cache.pageSize());
    if (maxPageId >= cache.numPages()) {
      int at = -1;
      for (int i = 0; i < indptr[batchSize()]; i++) {
        if (indices[i] >= cache.numPages()) {
          at = i;
          break;
        }
      }
      throw InvalidArgumentException.of("kvIndices[" + at + "]", "< the cache's page count " + cache.numPages(),
          indices[at]);
    }
  }

  void fill(io.github.flashinfer4j.lowlevel.Fi4j.fi4j_paged_kv kv) {
    checkOpen();
    kv.kv_indptr(dIndptr.pointer())
        .kv_indices(indices.length == 0 ? null : dIndices.pointer())
        .kv_last_page_len(dLastPageLen.pointer())
        .batch_size(batchSize())
        .num_indices(indices.length);
  }

  boolean isOpen() {
    return dIndptr.isOpen();
  }

  private void checkOpen() {
    if (!isOpen()) {
      throw new IllegalStateException("page table is closed");
    }
  }

  @Override
  public void close() {
    dIndptr.close();
    dIndices.close();
    dLastPageLen.close();
  }

  @Override
  public String toString() {
    return "PageTable{batch=" + batchSize() + ", pageSize=" + pageSize + ", pages=" + indptr[batchSize()]
        + ", tokens=" + totalTokens + ", device=" + device + "}"
        + (batchSize() <= 8 ? " indptr=" + Arrays.toString(indptr) : "");
  }
}
