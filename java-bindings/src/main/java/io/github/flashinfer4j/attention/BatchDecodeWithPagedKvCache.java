package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.Arrays;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Batch decode attention over a paged KV cache: each request has one query row per query head and attends to all
 * of its cached tokens (within the sliding window, if any). The plan/run split follows FlashInfer: {@link #plan}
 * validates the batch and partitions the work on the host once per batch composition (splitting long KV into
 * chunks when the requests alone cannot fill the GPU, see {@link DecodePlanOptions}) and writes the work list into
 * the workspace; {@link #run} may then be called for every layer with that layer's query and cache, does no host
 * work beyond argument checks and the launch, never allocates and never synchronises, so it can be captured in a
 * {@link CudaGraph}.
 *
 * <p>Query heads {@code h} read KV head {@code h / (numQoHeads / numKvHeads)} (GQA, MQA when numKvHeads = 1).
 * Requests with no tokens produce 0 and LSE -inf. LSE is the base-2 log-sum-exp of the scaled logits.
 *
 * <p>plan, run and close are mutually exclusive (a close racing a run waits for it, then later calls throw
 * IllegalStateException). The workspace (U8, caller-owned or allocated by the wrapper:
 * {@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA)
 * holds the work list and the partial states of split requests; two wrappers must not share one while their
 * runs may overlap. Safe to call from several threads (calls on one wrapper are serialised), but a wrapper holds one
 * plan: threads that decode different batches concurrently use distinct wrappers, on distinct streams.
 */
public final class BatchDecodeWithPagedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Workspace the convenience constructors allocate on a CUDA device (128 MiB, as FlashInfer recommends). */
  public static final long DEFAULT_WORKSPACE_BYTES = 128L << 20;

  private final Device device;
  private final Tensor workspace;
  private final boolean ownsWorkspace;
  private final Fi4j.fi4j_decode_args args = new Fi4j.fi4j_decode_args();
  // CUDA-graph mode: fixed batch size, work slots and page-table buffers, so captured runs replay any plan
  private final int graphBatch;
  private final int graphSlots;
  private final Tensor graphIndptr;
  private final Tensor graphIndices;
  private final Tensor graphLastPageLen;

  private PageTable pageTable;
  private int numQoHeads;
  private int numKvHeads;
  private int headDim;
  private int pageSize;
  private DType dtype;
  private AttentionOptions options;
  private int numWork;
  private DecodePath path = DecodePath.CUDA_CORES;
  private int chunkSize;
  private boolean closed;

  /** A wrapper with its own workspace ({@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA). */
  public BatchDecodeWithPagedKvCache(Device device) {
    this(device, null, 0, 0);
  }

  /** A wrapper over a caller-owned U8 workspace on the same device (see {@link #DEFAULT_WORKSPACE_BYTES}). */
  public BatchDecodeWithPagedKvCache(Device device, Tensor workspace) {
    this(device, Checks.notNull(workspace, "workspace"), 0, 0);
  }

  /**
   * A wrapper for CUDA-graph capture: the batch size and the launch grid are fixed here, and plan() copies each
   * new page table (of exactly {@code batchSize} requests and at most {@code maxPages} page ids) into buffers owned
   * by the wrapper, so that one captured {@link #run} replays for any of them. {@code workspace} may be null (the
   * wrapper allocates {@value #DEFAULT_WORKSPACE_BYTES} bytes).
   *
   * <p>plan() overwrites buffers that queued replays read: plan on the stream the replays use (or synchronise
   * first).
   */
  public static BatchDecodeWithPagedKvCache forCudaGraph(Device device, Tensor workspace, int batchSize,
      int maxPages) {
    Checks.notNull(device, "device");
    if (device.isCpu()) {
      throw new UnsupportedConfigurationException("CUDA-graph mode needs a CUDA device, got the CPU backend");
    }
    Checks.check(batchSize >= 1, "batchSize", ">= 1", batchSize);
    Checks.check(maxPages >= 0, "maxPages", ">= 0", maxPages);
    return new BatchDecodeWithPagedKvCache(device, workspace, batchSize, maxPages);
  }

  private BatchDecodeWithPagedKvCache(Device device, Tensor workspace, int graphBatch, int maxPages) {
    this.device = Checks.notNull(device, "device");
    Native.ensureLoaded();
    if (workspace != null) {
      this.workspace = Checks.workspace(workspace, device);
      this.ownsWorkspace = false;
    } else {
      this.workspace = CORE.allocate("BatchDecodeWithPagedKvCache workspace", device, DType.U8,
          device.isCuda() ? DEFAULT_WORKSPACE_BYTES : 256);
      this.ownsWorkspace = true;
    }
    this.graphBatch = graphBatch;
    if (graphBatch > 0) {
      // enough work slots for every request plus the chunks that fill two waves of the GPU
      this.graphSlots = graphBatch + 8 * device.multiprocessorCount();
      this.graphIndptr = Tensor.empty(device, DType.I32, graphBatch + 1);
      this.graphIndices = Tensor.empty(device, DType.I32, Math.max(1, maxPages));
      this.graphLastPageLen = Tensor.empty(device, DType.I32, graphBatch);
    } else {
      this.graphSlots = 0;
      this.graphIndptr = null;
      this.graphIndices = null;
      this.graphLastPageLen = null;
    }
  }

  public Device device() {
    return device;
  }

  /** Work items of the current plan (0: no split, one block per request and KV head). */
  public int numWorkItems() {
    return numWork;
  }

  /** Tokens per work item of the current plan (0 without a split). */
  public int chunkSize() {
    return chunkSize;
  }

  /** The kernel path of the current plan. */
  public DecodePath path() {
    return path;
  }

  /** Plans with default options; see {@link #plan(PageTable, int, int, int, int, DType, AttentionOptions,
   * DecodePlanOptions, Stream)}. */
  public void plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize, DType dtype) {
    plan(pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype, AttentionOptions.defaults(),
        DecodePlanOptions.defaults(), null);
  }

  /** Plans with default plan options on the default stream. */
  public void plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize, DType dtype,
      AttentionOptions options) {
    plan(pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype, options, DecodePlanOptions.defaults(), null);
  }

  /**
   * Fixes the batch (the page table, which must stay open while runs use it), the head configuration, the dtype
   * of q, K/V and out, and the variant options, partitions the work and copies the work list into the workspace
   * on {@code stream} (null = default stream). Throws {@link UnsupportedConfigurationException} when the device
   * cannot run this configuration, {@link InvalidArgumentException} when the workspace is too small for a fixed
   * split.
   */
  public synchronized void plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize,
      DType dtype, AttentionOptions options, DecodePlanOptions planOptions, Stream stream) {
    checkOpen();
    Checks.notNull(pageTable, "pageTable");
    Checks.notNull(dtype, "dtype");
    Checks.notNull(options, "options");
    Checks.notNull(planOptions, "planOptions");
    if (!pageTable.isOpen()) {
      throw new IllegalStateException("pageTable is closed");
    }
    Checks.check(pageTable.device().equals(device), "pageTable.device", device.toString(), pageTable.device());
    Checks.check(pageSize >= 1, "pageSize", ">= 1", pageSize);
    Checks.check(pageTable.pageSize() == pageSize, "pageSize", "the page table's page size " + pageTable.pageSize(),
        pageSize);
    Checks.check(numKvHeads >= 1, "numKvHeads", ">= 1", numKvHeads);
    Checks.check(numQoHeads >= 1, "numQoHeads", ">= 1", numQoHeads);
    Checks.check(numQoHeads % numKvHeads == 0, "numQoHeads", "a multiple of numKvHeads = " + numKvHeads, numQoHeads);
    Checks.check(headDim >= 1, "headDim", ">= 1", headDim);
    Checks.stream(stream, device);
    int[] indptr = pageTable.kvIndptr();
    int[] last = pageTable.kvLastPageLen();
    int batch = pageTable.batchSize();
    if (graphBatch > 0) {
      Checks.check(batch == graphBatch, "pageTable.batchSize()", "the graph batch size " + graphBatch, batch);
      Checks.check(indptr[batch] <= graphIndices.numel(), "pageTable pages",
          "<= the graph wrapper's maxPages " + graphIndices.numel(), indptr[batch]);
    }
    Native.check(Fi4j.fi4j_decode_supported(CORE.code(device), CORE.code(dtype), headDim, numQoHeads, numKvHeads));
    if (device.isCuda()) {
      // Plan time, not run time: a head dim outside the ahead-of-time set is compiled (or loaded from the disk
      // cache) here, so that run() stays free of compiles and can be captured in a CUDA graph.
      Decoding.prepareDecode(device, dtype, headDim, options, planOptions.path());
    }
    try (Native.Pins pins = new Native.Pins();
        Fi4j.fi4j_decode_plan p = new Fi4j.fi4j_decode_plan();
        IntPointer hIndptr = new IntPointer(indptr);
        IntPointer hLast = new IntPointer(last.length == 0 ? new int[1] : last)) {
      p.batch_size(batch)
          .num_qo_heads(numQoHeads)
          .num_kv_heads(numKvHeads)
          .head_dim(headDim)
          .page_size(pageSize)
          .window_left(options.windowLeft())
          .kv_indptr_host(hIndptr)
          .kv_last_page_len_host(hLast)
          .split_mode(planOptions.splitMode().code())
          .fixed_chunk(planOptions.fixedChunk())
          .path(planOptions.path().code())
          .graph_slots(graphSlots)
          .num_work(0)
          .chosen_path(0)
          .chunk_size(0)
          .workspace_bytes(0);
      Pointer streamPtr = stream == null ? null : CORE.pointer(stream, pins);
      Native.check(Fi4j.fi4j_batch_decode_plan(CORE.code(device), p, CORE.pointer(workspace, pins),
          workspace.byteSize(), streamPtr));
      if (graphBatch > 0) {
        uploadPageTable(indptr, pageTable.kvIndices(), last, streamPtr, pins);
      }
      this.numWork = p.num_work();
      this.path = DecodePath.of(p.chosen_path());
      this.chunkSize = p.chunk_size();
    }
    this.pageTable = pageTable;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.pageSize = pageSize;
    this.dtype = dtype;
    this.options = options;
    fillPlanned();
  }

  private void uploadPageTable(int[] indptr, int[] indices, int[] last, Pointer stream, Native.Pins pins) {
    int n = indptr[indptr.length - 1];
    try (IntPointer a = new IntPointer(indptr);
        IntPointer b = new IntPointer(n == 0 ? new int[1] : Arrays.copyOf(indices, n));
        IntPointer c = new IntPointer(last)) {
      // pageable sources: each copy returns once its source is staged, so the pointers may die after it
      Native.check(Fi4j.fi4j_memcpy_async(CORE.code(device), CORE.pointer(graphIndptr, pins), Native.CPU, a,
          4L * indptr.length, stream));
      Native.check(Fi4j.fi4j_memcpy_async(CORE.code(device), CORE.pointer(graphIndices, pins), Native.CPU, b,
          4L * n, stream));
      Native.check(Fi4j.fi4j_memcpy_async(CORE.code(device), CORE.pointer(graphLastPageLen, pins), Native.CPU, c,
          4L * last.length, stream));
    }
  }

  /** Runs on the device's default stream. */
  public void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse) {
    run(q, cache, out, lse, null);
  }

  /**
   * Computes {@code out[b, h, :]} (and {@code lse[b, h]} when lse is not null) for q {@code [batch, numQoHeads,
   * headDim]}. Queued on {@code stream} (null = default stream) for CUDA; complete on return for the CPU backend.
   */
  public synchronized void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    if (pageTable == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    // The common case checks plain conditions without building a message; only a failing call goes through the
    // detailed checks, which throw the exception that names the argument.
    if (!argumentsValid(q, cache, out, lse, stream)) {
      throwInvalid(q, cache, out, lse, stream);
    }
    // pins keep every buffer of the call alive (a concurrent close or the Cleaner waits for the call)
    try (Native.Pins pins = new Native.Pins()) {
      args.q(CORE.pointer(q, pins))
          .q_stride_n(q.stride(0))
          .q_stride_h(q.stride(1))
          .o(CORE.pointer(out, pins))
          .o_stride_n(out.stride(0))
          .o_stride_h(out.stride(1))
          .lse(lse == null ? null : CORE.pointer(lse, pins));
      CORE.pointer(workspace, pins);
      cache.fill(args.kv(), pins);
      if (graphBatch > 0) {
        CORE.pointer(graphIndptr, pins);
        CORE.pointer(graphIndices, pins);
        CORE.pointer(graphLastPageLen, pins);
      } else {
        pageTable.fill(args.kv(), pins);
      }
      Native.check(Fi4j.fi4j_batch_decode(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
    }
  }

  /** The plan-constant part of the native descriptor, written once per plan. */
  private void fillPlanned() {
    args.num_qo_heads(numQoHeads)
        .dtype(CORE.code(dtype))
        .single_kv_len(0)
        .num_work(numWork)
        .path(path.code())
        .workspace(CORE.pointer(workspace))
        .workspace_bytes(workspace.byteSize());
    Decoding.fillOptions(args.options(), options);
    if (graphBatch > 0) {
      pageTable.fill(args.kv());
      args.kv()
          .kv_indptr(CORE.pointer(graphIndptr))
          .kv_indices(CORE.pointer(graphIndices))
          .kv_last_page_len(CORE.pointer(graphLastPageLen));
    }
  }

  private boolean argumentsValid(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    int batch = pageTable.batchSize();
    return q != null && out != null && cache != null && q.isOpen() && out.isOpen() && cache.isOpen()
        && workspace.isOpen() && pageTable.isOpen() && qoValid(q, batch) && qoValid(out, batch)
        && (lse == null || (lse.isOpen() && lse.dtype() == DType.F32 && lse.device().equals(device) && lse.dim() == 2
            && lse.size(0) == batch && lse.size(1) == numQoHeads && lse.isContiguous()))
        && cache.device().equals(device) && cache.dtype() == dtype && cache.numKvHeads() == numKvHeads
        && cache.headDim() == headDim && cache.pageSize() == pageSize && pageTable.pageSize() == pageSize
        && pageTable.maxPageId() < cache.numPages() && (stream == null || stream.device().equals(device));
  }

  private boolean qoValid(Tensor t, int batch) {
    return t.dtype() == dtype && t.device().equals(device) && t.dim() == 3 && t.size(0) == batch
        && t.size(1) == numQoHeads && t.size(2) == headDim && (headDim <= 1 || t.stride(2) == 1);
  }

  /** The detailed checks: throws the exception naming the first bad argument. */
  private void throwInvalid(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    Checks.notNull(cache, "cache");
    cache.checkOpen();
    CORE.checkOpen(workspace);
    int batch = pageTable.batchSize();
    checkQo(q, "q", batch);
    checkQo(out, "out", batch);
    Checks.lse(lse, device, batch, numQoHeads);
    Checks.check(cache.device().equals(device), "cache.device", device.toString(), cache.device());
    Checks.check(cache.dtype() == dtype, "cache.dtype", "the planned dtype " + dtype, cache.dtype());
    Checks.check(cache.numKvHeads() == numKvHeads, "cache.numKvHeads", "the planned " + numKvHeads,
        cache.numKvHeads());
    Checks.check(cache.headDim() == headDim, "cache.headDim", "the planned " + headDim, cache.headDim());
    Checks.check(cache.pageSize() == pageSize, "cache.pageSize", "the planned " + pageSize, cache.pageSize());
    pageTable.checkCompatible(cache);
    Checks.stream(stream, device);
    throw new IllegalStateException("run() arguments rejected without a detailed reason (internal inconsistency)");
  }

  private void checkQo(Tensor t, String name, int batch) {
    Checks.tensor(t, name, dtype, device, batch, numQoHeads, headDim);
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("BatchDecodeWithPagedKvCache is closed");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      args.close();
      if (ownsWorkspace) {
        workspace.close();
      }
      CORE.closeAll(graphIndptr, graphIndices, graphLastPageLen);
    }
  }
}
