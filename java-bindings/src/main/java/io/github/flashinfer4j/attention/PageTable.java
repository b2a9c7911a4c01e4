package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import java.util.Arrays;

/**
 * Which pages of a paged KV cache hold each request's tokens, in CSR form: request b owns page ids
 * {@code kvIndices[kvIndptr[b] .. kvIndptr[b+1])}, and its last page holds {@code kvLastPageLen[b]} tokens, so
 * {@code kvLen(b) = pageSize * (pages - 1) + kvLastPageLen[b]} (0 for a request with no pages).
 *
 * <p>Validated on construction, on the host copies, before anything is uploaded: indptr starts at 0, is
 * non-decreasing and ends within the indices; page ids are non-negative; last-page lengths are in 0..pageSize
 * (0 for empty requests); every request's kvLen fits in an int. Page ids are checked against a cache's page
 * count on the host whenever the table is used with a cache (append, decode run). A CUDA-graph replay runs no
 * host code and so skips that check (the kernels still skip any page id outside the cache rather than touch
 * memory outside it).
 *
 * <p>Keeps host copies (for checks and planning) and one copy in the device's memory (for the kernels), which
 * {@link #close()} frees; close is idempotent, and a table that is never closed has its device copy freed by a
 * Cleaner (with a WARNING log). A closed table refuses use with {@link IllegalStateException}.
 *
 * <p>Immutable, and safe to share between threads once built (several wrappers and threads may use one table at
 * once). Close it after its last use; a close racing with a running op waits for the op's native call.
 */
public final class PageTable implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Largest Java array: bounds the page count of a table. */
  private static final int MAX_ARRAY = Integer.MAX_VALUE - 8;

  private final Device device;
  private final int pageSize;
  private final int[] indptr;
  private final int[] indices;
  private final int[] lastPageLen;
  private final int maxPageId;
  private final long totalTokens;
  private final Tensor storage;  // indptr | indices | lastPageLen, one allocation
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
    // one allocation, each array starting on a 16-byte boundary
    int at1 = align4(indptr.length);
    int at2 = at1 + align4(indices.length);
    int n = at2 + lastPageLen.length;
    int[] all = new int[n];
    System.arraycopy(indptr, 0, all, 0, indptr.length);
    System.arraycopy(indices, 0, all, at1, indices.length);
    System.arraycopy(lastPageLen, 0, all, at2, lastPageLen.length);
    Tensor t = CORE.allocate("PageTable", device, DType.I32, n);
    try {
      t.copyFrom(all);
      this.dIndptr = t.narrow(0, 0, indptr.length);
      this.dIndices = t.narrow(0, at1, indices.length);
      this.dLastPageLen = t.narrow(0, at2, lastPageLen.length);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    this.storage = t;
  }

  private static int align4(int n) {
    return (n + 3) & ~3;
  }

  /**
   * Builds and validates a page table from host arrays and copies it to {@code device}.
   *
   * @param device the device the table is copied to
   * @param pageSize tokens per page P
   * @param kvIndptr int32 [batch + 1]: request b's page ids are kvIndices[kvIndptr[b] .. kvIndptr[b+1]-1]
   * @param kvIndices int32: the page ids of all requests, concatenated
   * @param kvLastPageLen int32 [batch]: tokens in each request's last page (0 for a request without pages)
   * @return the page table, on device
   */
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
      int pages = kvIndptr[b + 1] - kvIndptr[b];
      if (pages == 0) {
        Checks.check(last == 0, "kvLastPageLen[" + b + "]", "0 for a request with no pages", last);
      } else {
        Checks.check(last >= 0 && last <= pageSize, "kvLastPageLen[" + b + "]", "in [0, " + pageSize + "]", last);
        long len = (long) pageSize * (pages - 1) + last;
        Checks.check(len <= Integer.MAX_VALUE, "kvLen(" + b + ")",
            "<= 2^31-1 tokens (pageSize * (pages - 1) + kvLastPageLen[" + b + "])", len);
      }
    }
    Checks.check(kvIndptr[batch] <= kvIndices.length, "kvIndptr[" + batch + "]",
        "<= kvIndices.length = " + kvIndices.length, kvIndptr[batch]);
    for (int i = 0; i < kvIndptr[batch]; i++) {
      Checks.check(kvIndices[i] >= 0, "kvIndices[" + i + "]", ">= 0", kvIndices[i]);
    }
    long total = (long) kvIndptr.length + kvIndices.length + kvLastPageLen.length + 8;
    Checks.check(total <= MAX_ARRAY, "kvIndptr.length + kvIndices.length + kvLastPageLen.length",
        "<= " + MAX_ARRAY, total);
    return new PageTable(device, pageSize, kvIndptr.clone(), kvIndices.clone(), kvLastPageLen.clone());
  }

  /**
   * Builds a page table from 1-D I32 tensors (any device): copies them to the host, validates, and uploads.
   *
   * @param device the device the table is copied to
   * @param pageSize tokens per page P
   * @param kvIndptr int32 [batch + 1]: request b's page ids are kvIndices[kvIndptr[b] .. kvIndptr[b+1]-1]
   * @param kvIndices int32: the page ids of all requests, concatenated
   * @param kvLastPageLen int32 [batch]: tokens in each request's last page (0 for a request without pages)
   * @return the page table, on device
   */
  public static PageTable fromTensors(Device device, int pageSize, Tensor kvIndptr, Tensor kvIndices,
      Tensor kvLastPageLen) {
    Checks.notNull(device, "device");
    Checks.open(kvIndptr, "kvIndptr");
    Checks.open(kvIndices, "kvIndices");
    Checks.open(kvLastPageLen, "kvLastPageLen");
    Checks.dtype(kvIndptr, "kvIndptr", DType.I32);
    Checks.dtype(kvIndices, "kvIndices", DType.I32);
    Checks.dtype(kvLastPageLen, "kvLastPageLen", DType.I32);
    Checks.check(kvIndptr.dim() == 1, "kvIndptr.dim()", "1", kvIndptr.dim());
    Checks.check(kvIndices.dim() == 1, "kvIndices.dim()", "1", kvIndices.dim());
    Checks.check(kvLastPageLen.dim() == 1, "kvLastPageLen.dim()", "1", kvLastPageLen.dim());
    return of(device, pageSize, kvIndptr.toIntArray(), kvIndices.toIntArray(), kvLastPageLen.toIntArray());
  }

  /**
   * A page table that gives each request consecutive pages from 0 on, with {@code kvLens[b]} tokens each: the
   * layout a simple allocator produces.
   *
   * @param device the device the table is copied to
   * @param pageSize tokens per page P
   * @param kvLens tokens per request
   * @return a page table that gives each request consecutive pages from 0 on, with {@code kvLens[b]} tokens each
   */
  public static PageTable contiguous(Device device, int pageSize, int[] kvLens) {
    Checks.notNull(kvLens, "kvLens");
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    int batch = kvLens.length;
    Checks.check(batch < MAX_ARRAY, "kvLens.length", "< " + MAX_ARRAY, batch);
    int[] indptr = new int[batch + 1];
    int[] last = new int[batch];
    for (int b = 0; b < batch; b++) {
      Checks.check(kvLens[b] >= 0, "kvLens[" + b + "]", ">= 0", kvLens[b]);
      long pages = ((long) kvLens[b] + pageSize - 1) / pageSize;
      long end = indptr[b] + pages;
      Checks.check(end + 2L * batch + 9 <= MAX_ARRAY, "kvLens", "at most " + MAX_ARRAY + " pages and requests in all",
          "more (" + end + " pages by request " + b + ")");
      indptr[b + 1] = (int) end;
      last[b] = pages == 0 ? 0 : (int) (kvLens[b] - (pages - 1) * pageSize);
    }
    int[] indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = i;
    }
    return of(device, pageSize, indptr, indices, last);
  }

  /**
   * The device the table was copied to.
   *
   * @return the device the table was copied to
   */
  public Device device() {
    return device;
  }

  /**
   * Tokens per page.
   *
   * @return tokens per page
   */
  public int pageSize() {
    return pageSize;
  }

  /**
   * Requests in the table.
   *
   * @return requests in the table
   */
  public int batchSize() {
    return lastPageLen.length;
  }

  /**
   * Number of pages of request b.
   *
   * @param b the request index, {@code 0 <= b < batchSize()}
   * @return number of pages of request b
   */
  public int numPages(int b) {
    Checks.check(b >= 0 && b < batchSize(), "b", "in [0, " + batchSize() + ")", b);
    return indptr[b + 1] - indptr[b];
  }

  /**
   * Tokens held by request b.
   *
   * @param b the request index, {@code 0 <= b < batchSize()}
   * @return tokens held by request b
   */
  public int kvLen(int b) {
    int pages = numPages(b);
    return pages == 0 ? 0 : pageSize * (pages - 1) + lastPageLen[b];
  }

  /**
   * Tokens held by all requests together.
   *
   * @return tokens held by all requests together
   */
  public long totalTokens() {
    return totalTokens;
  }

  /**
   * The largest page id used, or -1 when no request has a page.
   *
   * @return the largest page id used, or -1 when no request has a page
   */
  public int maxPageId() {
    return maxPageId;
  }

  /**
   * Offsets of each request's page ids in kvIndices, batchSize() + 1 entries (a copy).
   *
   * @return offsets of each request's page ids in kvIndices, batchSize() + 1 entries (a copy)
   */
  public int[] kvIndptr() {
    return indptr.clone();
  }

  /**
   * The page ids of all requests, concatenated (a copy).
   *
   * @return the page ids of all requests, concatenated (a copy)
   */
  public int[] kvIndices() {
    return indices.clone();
  }

  /**
   * Tokens in each request's last page (a copy).
   *
   * @return tokens in each request's last page (a copy)
   */
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

  /** Fills the page-table part of a native descriptor, without pins (the caller keeps the table open). */
  void fill(io.github.flashinfer4j.lowlevel.Fi4j.fi4j_paged_kv kv) {
    checkOpen();
    kv.kv_indptr(CORE.pointer(dIndptr))
        .kv_indices(indices.length == 0 ? null : CORE.pointer(dIndices))
        .kv_last_page_len(CORE.pointer(dLastPageLen))
        .batch_size(batchSize())
        .num_indices(indices.length);
  }

  /** Fills the page-table part of a native descriptor, pinning the device copy until {@code pins} close. */
  void fill(io.github.flashinfer4j.lowlevel.Fi4j.fi4j_paged_kv kv, Native.Pins pins) {
    checkOpen();
    kv.kv_indptr(CORE.pointer(dIndptr, pins))
        .kv_indices(indices.length == 0 ? null : CORE.pointer(dIndices))
        .kv_last_page_len(CORE.pointer(dLastPageLen))
        .batch_size(batchSize())
        .num_indices(indices.length);
  }

  /** Pins the device copy until {@code pins} close, for a descriptor that {@link #fill} wrote before. */
  void pin(Native.Pins pins) {
    checkOpen();
    CORE.pointer(dIndptr, pins);
  }

  /**
   * Whether the table can still be used; safe to call from any thread.
   *
   * @return whether the table can still be used
   */
  public boolean isOpen() {
    return storage.isOpen();
  }

  private void checkOpen() {
    if (!isOpen()) {
      throw Checks.closed("PageTable");
    }
  }

  /** Frees the device copy; idempotent. The host copies stay readable. */
  @Override
  public void close() {
    storage.close();
  }

  @Override
  public String toString() {
    return "PageTable{batch=" + batchSize() + ", pageSize=" + pageSize + ", pages=" + indptr[batchSize()]
        + ", tokens=" + totalTokens + ", device=" + device + (isOpen() ? "" : ", closed") + "}"
        + (batchSize() <= 8 ? " indptr=" + Arrays.toString(indptr) : "");
  }
}
