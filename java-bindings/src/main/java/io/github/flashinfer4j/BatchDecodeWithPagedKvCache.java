package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Batch decode attention over a paged KV cache: each request has one query row per query head and attends to all
 * of its cached tokens (within the sliding window, if any). The plan/run split follows FlashInfer:
 * {@link #plan} validates the problem and the page table on the host once per batch composition,
 * {@link #run} may then be called for every layer with that layer's query and cache, and does no host work
 * beyond argument checks and the launch.
 *
 * <p>Query heads {@code h} read KV head {@code h / (numQoHeads / numKvHeads)} (GQA, MQA when numKvHeads = 1).
 * Requests with no tokens produce 0 and LSE -inf. LSE is the base-2 log-sum-exp of the scaled logits.
 *
 * <p>Not thread-safe: one thread at a time per wrapper; distinct wrappers may run concurrently on distinct
 * streams.
 */
public final class BatchDecodeWithPagedKvCache implements AutoCloseable {
  private final Device device;
  private final Fi4j.fi4j_decode_args args = new Fi4j.fi4j_decode_args();
  private PageTable pageTable;
  private int numQoHeads;
  private int numKvHeads;
  private int headDim;
  private int pageSize;
  private DType dtype;
  private AttentionOptions options;
  private boolean closed;

  public BatchDecodeWithPagedKvCache(Device device) {
    this.device = Checks.notNull(device, "device");
    Native.ensureLoaded();
  }

  public Device device() {
    return device;
  }

  /** Plans with default options; see {@link #plan(PageTable, int, int, int, int, DType, AttentionOptions)}. */
  public void plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize, DType dtype) {
    plan(pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype, AttentionOptions.defaults());
  }

  /**
   * Fixes the batch (the page table, which must stay open while runs use it), the head configuration, the dtype
   * of q, K/V and out, and the variant options. Throws {@link UnsupportedConfigurationException} when the
   * device cannot run this configuration.
   */
  public void plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize, DType dtype,
      AttentionOptions options) {
    checkOpen();
    Checks.notNull(pageTable, "pageTable");
    Checks.notNull(dtype, "dtype");
    Checks.notNull(options, "options");
    Checks.check(pageTable.isOpen(), "pageTable", "open", "closed");
    Checks.check(pageTable.device().equals(device), "pageTable.device", device.toString(), pageTable.device());
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    Checks.check(pageTable.pageSize() == pageSize, "pageSize", "the page table's page size " + pageTable.pageSize(),
        pageSize);
    Checks.check(numKvHeads >= 1, "numKvHeads", ">= 1", numKvHeads);
    Checks.check(numQoHeads >= 1, "numQoHeads", ">= 1", numQoHeads);
    Checks.check(numQoHeads % numKvHeads == 0, "numQoHeads", "a multiple of numKvHeads = " + numKvHeads, numQoHeads);
    Checks.check(headDim >= 1, "headDim", ">= 1", headDim);
    Native.check(Fi4j.fi4j_decode_supported(device.code(), dtype.code(), headDim, numQoHeads, numKvHeads));
    this.pageTable = pageTable;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.pageSize = pageSize;
    this.dtype = dtype;
    this.options = options;
  }

  /** Runs on the device's default stream. */
  public void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse) {
    run(q, cache, out, lse, null);
  }

  /**
   * Computes {@code out[b, h, :]} (and {@code lse[b, h]} when lse is not null) for q {@code [batch, numQoHeads,
   * headDim]}. Queued on {@code stream} (null = default stream) for CUDA; complete on return for the CPU backend.
   */
  public void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    if (pageTable == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    Checks.notNull(cache, "cache");
    cache.checkOpen();
    int batch = pageTable.batchSize();
    checkQo(q, "q", batch);
    checkQo(out, "out", batch);
    if (lse != null) {
      Checks.open(lse, "lse");
      Checks.dtype(lse, "lse", DType.F32);
      Checks.device(lse, "lse", device);
      Checks.shape(lse, "lse", batch, numQoHeads);
      Checks.check(lse.isContiguous(), "lse", "contiguous", "strides " + java.util.Arrays.toString(lse.strides()));
    }
    Checks.check(cache.device().equals(device), "cache.device", device.toString(), cache.device());
    Checks.check(cache.dtype() == dtype, "cache.dtype", "the planned dtype " + dtype, cache.dtype());
    Checks.check(cache.numKvHeads() == numKvHeads, "cache.numKvHeads", "the planned " + numKvHeads,
        cache.numKvHeads());
    Checks.check(cache.headDim() == headDim, "cache.headDim", "the planned " + headDim, cache.headDim());
    Checks.check(cache.pageSize() == pageSize, "cache.pageSize", "the planned " + pageSize, cache.pageSize());
    pageTable.checkCompatible(cache);
    if (stream != null) {
      Checks.check(stream.device().equals(device), "stream.device", device.toString(), stream.device());
    }
    args.num_qo_heads(numQoHeads)
        .dtype(dtype.code())
        .q(q.pointer())
        .q_stride_n(q.stride(0))
        .q_stride_h(q.stride(1))
        .o(out.pointer())
        .o_stride_n(out.stride(0))
        .o_stride_h(out.stride(1))
        .lse(lse == null ? null : lse.pointer())
        .single_kv_len(0);
    cache.fill(args.kv());
    pageTable.fill(args.kv());
    Decoding.fillOptions(args.options(), options);
    Native.check(Fi4j.fi4j_batch_decode(device.code(), args, stream == null ? null : stream.pointer()));
  }

  private void checkQo(Tensor t, String name, int batch) {
    Checks.open(t, name);
    Checks.dtype(t, name, dtype);
    Checks.device(t, name, device);
    Checks.shape(t, name, batch, numQoHeads, headDim);
    Checks.lastDimContiguous(t, name);
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("BatchDecodeWithPagedKvCache is closed");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      args.close();
    }
  }
}
