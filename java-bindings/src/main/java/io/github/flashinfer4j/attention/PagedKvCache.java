package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.Arrays;

/**
 * A paged KV cache: {@code numPages} pages of {@code pageSize} token slots for K and for V.
 *
 * <p>Layouts: NHD pages are {@code [pageSize, numKvHeads, headDim]}, HND pages {@code [numKvHeads, pageSize,
 * headDim]}. K and V are separate tensors {@code [numPages, ...page]} or one combined tensor
 * {@code [numPages, 2, ...page]} with K at index 0 of dimension 1. Page, token and head strides may be anything
 * (strided pages, e.g. a view into a larger pool); the head dim must be contiguous. The CUDA backend also needs
 * every stride to be a multiple of 8 elements (16 bytes). Every page the kernels may touch lies inside the K and V
 * tensors (their shapes and strides say so), and every page id is checked against {@link #numPages()} on the host
 * before an op runs.
 *
 * <p>A cache made by {@code allocate...} owns its memory and frees it on {@link #close()} (or, if never closed,
 * a Cleaner frees it with a WARNING log once the cache and its K/V views are unreachable); one made by
 * {@code of...} views tensors the caller owns and closing it closes only the cache handle. Close is idempotent;
 * a closed cache (or one whose tensors were closed) refuses use with {@link IllegalStateException}.
 *
 * <p>Threads: any number of threads may read one cache at once (decode runs on distinct streams sharing a cache).
 * Appends write it: an append must not run concurrently with other appends or reads of the same slots (appends to
 * disjoint pages of one cache may run at once). A close racing with a running op waits for its native call.
 */
public final class PagedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  private final Tensor storage;  // owned allocation, or null for views
  private final Tensor k;
  private final Tensor v;
  private final KvLayout layout;
  private final int numPages;
  private final int pageSize;
  private final int numKvHeads;
  private final int headDim;
  private final long pageStride;
  private final long tokenStride;
  private final long headStride;
  private volatile boolean closed;

  private PagedKvCache(Tensor storage, Tensor k, Tensor v, KvLayout layout) {
    this.storage = storage;
    this.k = k;
    this.v = v;
    this.layout = layout;
    this.numPages = Math.toIntExact(k.size(0));
    boolean nhd = layout == KvLayout.NHD;
    this.pageSize = Math.toIntExact(k.size(nhd ? 1 : 2));
    this.numKvHeads = Math.toIntExact(k.size(nhd ? 2 : 1));
    this.headDim = Math.toIntExact(k.size(3));
    this.pageStride = k.stride(0);
    this.tokenStride = k.stride(nhd ? 1 : 2);
    this.headStride = k.stride(nhd ? 2 : 1);
  }

  /**
   * Allocates separate, contiguous K and V pools {@code [numPages, page...]} on the device. Contents undefined.
   *
   * @param device the device of the cache
   * @param dtype the element type of the keys and values (F16 or BF16)
   * @param layout the KV layout (NHD or HND)
   * @param numPages the number of pages in the cache
   * @param pageSize tokens per page P
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @return the new cache, which owns its memory
   */
  public static PagedKvCache allocate(Device device, DType dtype, KvLayout layout, int numPages, int pageSize,
      int numKvHeads, int headDim) {
    long[] shape = shape(layout, numPages, pageSize, numKvHeads, headDim);
    return allocated(device, dtype, layout, new long[] {2, shape[0], shape[1], shape[2], shape[3]}, 0);
  }

  /**
   * Allocates one combined tensor {@code [numPages, 2, page...]} (K at index 0 of dim 1). Contents undefined.
   *
   * @param device the device of the cache
   * @param dtype the element type of the keys and values (F16 or BF16)
   * @param layout the KV layout (NHD or HND)
   * @param numPages the number of pages in the cache
   * @param pageSize tokens per page P
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @return the new cache, which owns its memory
   */
  public static PagedKvCache allocateCombined(Device device, DType dtype, KvLayout layout, int numPages,
      int pageSize, int numKvHeads, int headDim) {
    long[] shape = shape(layout, numPages, pageSize, numKvHeads, headDim);
    return allocated(device, dtype, layout, new long[] {shape[0], 2, shape[1], shape[2], shape[3]}, 1);
  }

  private static PagedKvCache allocated(Device device, DType dtype, KvLayout layout, long[] shape, int kvDim) {
    Checks.notNull(device, "device");
    Checks.notNull(dtype, "dtype");
    Checks.check(dtype == DType.F16 || dtype == DType.BF16, "dtype", "F16 or BF16", dtype);
    Tensor t = CORE.allocate("PagedKvCache", device, dtype, shape);
    try {
      return new PagedKvCache(t, t.select(kvDim, 0), t.select(kvDim, 1), layout);
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
  }

  /**
   * Views caller-owned K and V tensors {@code [numPages, page...]} of equal shape, dtype, device and strides.
   *
   * @param k the key pages, [numPages, pageSize, numKvHeads, headDim] (NHD) or [numPages, numKvHeads, pageSize,
   *     headDim] (HND)
   * @param v the value pages, shaped as k, of k's dtype and device
   * @param layout the KV layout (NHD or HND)
   * @return a cache over the caller's tensors, which it does not own
   */
  public static PagedKvCache of(Tensor k, Tensor v, KvLayout layout) {
    Checks.open(k, "k");
    Checks.open(v, "v");
    Checks.notNull(layout, "layout");
    Checks.check(k.dim() == 4, "k.dim()", "4 ([numPages, " + pageDims(layout) + "])", k.dim());
    Checks.shape(v, "v", k.shape());
    Checks.check(v.dtype() == k.dtype(), "v.dtype", "k.dtype " + k.dtype(), v.dtype());
    Checks.check(v.device().equals(k.device()), "v.device", "k.device " + k.device(), v.device());
    Checks.check(Arrays.equals(v.strides(), k.strides()), "v.strides", "k.strides " + Arrays.toString(k.strides()),
        Arrays.toString(v.strides()));
    Checks.lastDimContiguous(k, "k");
    Checks.check(k.dtype() == DType.F16 || k.dtype() == DType.BF16, "k.dtype", "F16 or BF16", k.dtype());
    for (int d = 0; d < 4; d++) {
      Checks.check(k.size(d) <= Integer.MAX_VALUE, "k.size(" + d + ")", "<= 2^31-1", k.size(d));
    }
    int pageSizeDim = layout == KvLayout.NHD ? 1 : 2;
    Checks.check(k.size(pageSizeDim) >= 1, "k.size(" + pageSizeDim + ") (page size)", ">= 1", k.size(pageSizeDim));
    Checks.check(k.size(3) >= 1, "k.size(3) (head dim)", ">= 1", k.size(3));
    int headsDim = layout == KvLayout.NHD ? 2 : 1;
    Checks.check(k.size(headsDim) >= 1, "k.size(" + headsDim + ") (KV heads)", ">= 1", k.size(headsDim));
    return new PagedKvCache(null, k, v, layout);
  }

  /**
   * Views a caller-owned combined tensor {@code [numPages, 2, page...]} (K at index 0 of dim 1).
   *
   * @param kv the combined cache, K at index 0 and V at index 1 of dimension 1
   * @param layout the KV layout (NHD or HND)
   * @return a cache over the caller's tensor, which it does not own
   */
  public static PagedKvCache ofCombined(Tensor kv, KvLayout layout) {
    Checks.open(kv, "kv");
    Checks.notNull(layout, "layout");
    Checks.check(kv.dim() == 5, "kv.dim()", "5 ([numPages, 2, " + pageDims(layout) + "])", kv.dim());
    Checks.check(kv.size(1) == 2, "kv.size(1)", "2 (K and V)", kv.size(1));
    return of(kv.select(1, 0), kv.select(1, 1), layout);
  }

  /**
   * The shape of one K (or V) pool.
   *
   * @param layout the KV layout (NHD or HND)
   * @param numPages the number of pages in the cache
   * @param pageSize tokens per page P
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @return the shape of one K (or V) pool
   */
  public static long[] shape(KvLayout layout, int numPages, int pageSize, int numKvHeads, int headDim) {
    Checks.notNull(layout, "layout");
    Checks.check(numPages >= 0, "numPages", ">= 0", numPages);
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    Checks.check(numKvHeads >= 1, "numKvHeads", ">= 1", numKvHeads);
    Checks.check(headDim >= 1, "headDim", ">= 1", headDim);
    return layout == KvLayout.NHD
        ? new long[] {numPages, pageSize, numKvHeads, headDim}
        : new long[] {numPages, numKvHeads, pageSize, headDim};
  }

  private static String pageDims(KvLayout layout) {
    return layout == KvLayout.HND ? "numKvHeads, pageSize, headDim" : "pageSize, numKvHeads, headDim";
  }

  /**
   * K pages, a view {@code [numPages, page...]}.
   *
   * @return K pages, a view {@code [numPages, page...]}
   */
  public Tensor k() {
    return k;
  }

  /**
   * V pages, a view {@code [numPages, page...]}.
   *
   * @return V pages, a view {@code [numPages, page...]}
   */
  public Tensor v() {
    return v;
  }

  /**
   * The device of the cache.
   *
   * @return the device of the cache
   */
  public Device device() {
    return k.device();
  }

  /**
   * The element type of the keys and values.
   *
   * @return the element type of the keys and values
   */
  public DType dtype() {
    return k.dtype();
  }

  /**
   * The layout of a page.
   *
   * @return the layout of a page
   */
  public KvLayout layout() {
    return layout;
  }

  /**
   * Pages in the cache.
   *
   * @return pages in the cache
   */
  public int numPages() {
    return numPages;
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
   * KV heads.
   *
   * @return KV heads
   */
  public int numKvHeads() {
    return numKvHeads;
  }

  /**
   * The head dimension.
   *
   * @return the head dimension
   */
  public int headDim() {
    return headDim;
  }

  /**
   * Whether the cache and the tensors it uses are open; safe to call from any thread.
   *
   * @return whether the cache and the tensors it uses are open
   */
  public boolean isOpen() {
    return !closed && k.isOpen() && v.isOpen();
  }

  void checkOpen() {
    if (!isOpen()) {
      throw new IllegalStateException("PagedKvCache is closed (or a tensor it views is)");
    }
  }

  /** Fills the cache part of a native descriptor (storage and strides), without pins. */
  void fill(Fi4j.fi4j_paged_kv kv) {
    checkOpen();
    fillShape(kv.k(CORE.pointer(k)).v(CORE.pointer(v)));
  }

  /** Fills the cache part of a native descriptor, pinning K and V until {@code pins} close. */
  void fill(Fi4j.fi4j_paged_kv kv, Native.Pins pins) {
    checkOpen();
    fillShape(kv.k(CORE.pointer(k, pins)).v(CORE.pointer(v, pins)));
  }

  /** Pins K and V until {@code pins} close, for a descriptor that {@link #fill} wrote before. */
  void pin(Native.Pins pins) {
    checkOpen();
    CORE.pointer(k, pins);
    CORE.pointer(v, pins);
  }

  private void fillShape(Fi4j.fi4j_paged_kv kv) {
    kv.page_stride(pageStride)
        .token_stride(tokenStride)
        .head_stride(headStride)
        .num_pages(numPages)
        .page_size(pageSize)
        .num_kv_heads(numKvHeads)
        .head_dim(headDim)
        .dtype(CORE.code(k.dtype()));
  }

  /** Closes; idempotent. Frees the storage of an allocated cache; a view cache only stops working. */
  @Override
  public void close() {
    closed = true;
    if (storage != null) {
      storage.close();
    }
  }

  @Override
  public String toString() {
    return "PagedKvCache{" + dtype() + ", " + layout + ", pages=" + numPages + ", pageSize=" + pageSize
        + ", kvHeads=" + numKvHeads + ", headDim=" + headDim + ", " + device() + (storage == null ? ", view" : "")
        + (isOpen() ? "" : ", closed") + "}";
  }
}
