package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.KernelConfig;
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
 * <h2>Plans are values</h2>
 * {@link #plan} returns a {@link DecodePlan}, an immutable value that holds everything a run needs;
 * {@link #run(DecodePlan, Tensor, PagedKvCache, Tensor, Tensor, Stream)} uses that plan and nothing else of the
 * wrapper's planning state. The FlashInfer-shaped {@link #run(Tensor, PagedKvCache, Tensor, Tensor, Stream)}
 * uses the wrapper's latest plan, whichever thread made it.
 *
 * <h2>Threads</h2>
 * plan, run and close are serialised on the wrapper (a close racing a run waits for it, then later calls throw
 * IllegalStateException). Threads may share one wrapper when each runs the plan it made
 * ({@code DecodePlan p = dec.plan(...); dec.run(p, q, cache, out, lse, stream)}): a plan cannot be mixed with
 * another thread's. Not shareable this way: (1) the convenience {@code run(q, ...)}, which takes the latest plan of
 * any thread; (2) plans that use the workspace ({@link DecodePlan#usesWorkspace()}: split plans and every plan of
 * a CUDA-graph wrapper): the next plan() that writes the workspace supersedes them, and running a superseded plan
 * throws IllegalStateException (plan again, or use one wrapper per thread); (3) split runs that may overlap on the
 * device (distinct streams), which write their partial outputs into the same workspace even when their plans are
 * both current. Plans that do not split (always the case on the CPU backend) stay valid while the wrapper and their
 * page table are open. Threads that decode different batches on distinct streams are simplest with distinct
 * wrappers (with distinct workspaces).
 *
 * <p>The workspace (U8, caller-owned or allocated by the wrapper: {@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA)
 * holds the work list and the partial states of split requests; two wrappers must not share one while their runs
 * may overlap.
 */
public final class BatchDecodeWithPagedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Workspace the convenience constructors allocate on a CUDA device (128 MiB, as FlashInfer recommends). */
  public static final long DEFAULT_WORKSPACE_BYTES = 128L << 20;

  private final Device device;
  private final PlanWorkspace workspace;
  private final Fi4j.fi4j_decode_args args = new Fi4j.fi4j_decode_args();
  private final Fi4j.fi4j_paged_kv argsKv = args.kv();  // made once: a member accessor is a JNI call and an object
  private DecodePlan argsPlan;  // the plan whose constants args holds
  // The operands args holds: a run with the operands of the last one writes no field (each setter is a JNI call,
  // and about twenty of them were a measurable part of a one-request run()). Only run() writes them, under the lock.
  private long argsQ;
  private long argsQStrideN;
  private long argsQStrideH;
  private long argsO;
  private long argsOStrideN;
  private long argsOStrideH;
  private long argsLse;
  private PagedKvCache argsCache;
  private PageTable argsPageTable;
  // CUDA-graph mode: fixed batch size, work slots and page-table buffers, so captured runs replay any plan
  private final int graphBatch;
  private final int graphSlots;
  private final Tensor graphIndptr;
  private final Tensor graphIndices;
  private final Tensor graphLastPageLen;

  private volatile DecodePlan latest;  // the plan of the convenience run()
  private volatile boolean closed;

  /**
   * A wrapper with its own workspace ({@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA).
   *
   * @param device the device it lives and runs on (a CUDA device or the CPU backend)
   */
  public BatchDecodeWithPagedKvCache(Device device) {
    this(device, null, 0, 0);
  }

  /**
   * A wrapper over a caller-owned U8 workspace on the same device (see {@link #DEFAULT_WORKSPACE_BYTES}).
   *
   * @param device the device it lives and runs on (a CUDA device or the CPU backend)
   * @param workspace a caller-owned U8 workspace tensor on the same device, or null for one the wrapper allocates
   */
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
   *
   * @param device the device it lives and runs on (a CUDA device or the CPU backend)
   * @param workspace a caller-owned U8 workspace tensor on the same device, or null for one the wrapper allocates
   * @param batchSize the number of requests of every plan
   * @param maxPages the most page ids a plan's page table may hold
   * @return a new wrapper in CUDA-graph mode
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
    this.workspace = new PlanWorkspace("BatchDecodeWithPagedKvCache", device, workspace,
        device.isCuda() ? DEFAULT_WORKSPACE_BYTES : 256);
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

  /**
   * The device the wrapper runs on.
   *
   * @return the device the wrapper runs on
   */
  public Device device() {
    return device;
  }

  /**
   * Work items of the latest plan (0: no split, one block per request and KV head; 0 before any plan).
   *
   * @return work items of the latest plan (0: no split, one block per request and KV head; 0 before any plan)
   */
  public int numWorkItems() {
    DecodePlan p = latest;
    return p == null ? 0 : p.numWork;
  }

  /**
   * Tokens per work item of the latest plan (0 without a split).
   *
   * @return tokens per work item of the latest plan (0 without a split)
   */
  public int chunkSize() {
    DecodePlan p = latest;
    return p == null ? 0 : p.chunkSize;
  }

  /**
   * The kernel path of the latest plan.
   *
   * @return the kernel path of the latest plan
   */
  public DecodePath path() {
    DecodePlan p = latest;
    return p == null ? DecodePath.CUDA_CORES : p.path;
  }

  /**
   * The latest plan (the one {@link #run(Tensor, PagedKvCache, Tensor, Tensor, Stream)} uses), or null.
   *
   * @return the latest plan (the one {@link #run(Tensor, PagedKvCache, Tensor, Tensor, Stream)} uses), or null
   */
  public DecodePlan latestPlan() {
    return latest;
  }

  /**
   * Plans with default options; see {@link #plan(PageTable, int, int, int, int, DType, AttentionOptions,
   * DecodePlanOptions, Stream)}.
   *
   * @param pageTable the page table of the batch: which pages of the cache each request uses; stays open while plans
   *     and runs use it
   * @param numQoHeads the number of query (and output) heads H_qo, a multiple of numKvHeads
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @param pageSize tokens per page P
   * @param dtype the element type
   * @return the plan, which also becomes the wrapper's latest plan
   */
  public DecodePlan plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize,
      DType dtype) {
    return plan(pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype, AttentionOptions.defaults(),
        DecodePlanOptions.defaults(), null);
  }

  /**
   * Plans with default plan options on the default stream.
   *
   * @param pageTable the page table of the batch: which pages of the cache each request uses; stays open while plans
   *     and runs use it
   * @param numQoHeads the number of query (and output) heads H_qo, a multiple of numKvHeads
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @param pageSize tokens per page P
   * @param dtype the element type
   * @param options the attention variant (soft cap, window, sm scale, RoPE)
   * @return the plan, which also becomes the wrapper's latest plan
   */
  public DecodePlan plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize,
      DType dtype, AttentionOptions options) {
    return plan(pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype, options, DecodePlanOptions.defaults(),
        null);
  }

  /**
   * Fixes the batch (the page table, which must stay open while runs use it), the head configuration, the dtype
   * of q, K/V and out, and the variant options, partitions the work and copies the work list into the workspace
   * on {@code stream} (null = default stream). Throws {@link UnsupportedConfigurationException} when the device
   * cannot run this configuration, {@link InvalidArgumentException} when the workspace is too small for a fixed
   * split.
   *
   * <p>Returns the plan, which also becomes the wrapper's latest plan (used by the convenience {@code run(q, ...)}).
   * A plan that writes the workspace (a split plan, any plan in CUDA-graph mode) supersedes the earlier plans of
   * this wrapper that use it; see {@link DecodePlan}.
   *
   * @param pageTable the page table of the batch: which pages of the cache each request uses; stays open while plans
   *     and runs use it
   * @param numQoHeads the number of query (and output) heads H_qo, a multiple of numKvHeads
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @param pageSize tokens per page P
   * @param dtype the element type
   * @param options the attention variant (soft cap, window, sm scale, RoPE)
   * @param planOptions how the work is partitioned (split, kernel path)
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   * @return the plan, which also becomes the wrapper's latest plan
   */
  public synchronized DecodePlan plan(PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, int pageSize,
      DType dtype, AttentionOptions options, DecodePlanOptions planOptions, Stream stream) {
    checkOpen();
    Checks.notNull(pageTable, "pageTable");
    Checks.notNull(dtype, "dtype");
    Checks.notNull(options, "options");
    Checks.notNull(planOptions, "planOptions");
    Checks.open(pageTable, "pageTable");
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
    int numWork;
    int chosenPath;
    int chunkSize;
    long kernel;
    long generation = PlanWorkspace.NONE;
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
          .dtype(CORE.code(dtype))
          .soft_cap(options.logitsSoftCap() > 0f ? 1 : 0)
          .pos_encoding(options.posEncoding().code())
          .num_work(0)
          .chosen_path(0)
          .chunk_size(0)
          .workspace_bytes(0);
      Pointer streamPtr = stream == null ? null : CORE.pointer(stream, pins);
      Pointer ws = CORE.pointer(workspace.tensor, pins);
      try {
        Native.check(Fi4j.fi4j_batch_decode_plan(CORE.code(device), p, ws, workspace.tensor.byteSize(), streamPtr));
        if (graphBatch > 0) {
          uploadPageTable(indptr, pageTable.kvIndices(), last, streamPtr, pins);
        }
      } catch (RuntimeException | Error e) {
        if (device.isCuda()) {
          workspace.overwritten();  // it may have written part of the workspace: no earlier plan may trust it now
        }
        throw e;
      }
      numWork = p.num_work();
      chosenPath = p.chosen_path();
      chunkSize = p.chunk_size();
      // The plan resolved the kernel of its path (routing once; a head dim outside the ahead-of-time set compiled or
      // loaded here), so that run() launches the handle, never compiles, and can be captured in a CUDA graph.
      DecodePath chosen = DecodePath.of(chosenPath);
      kernel = Decoding.kernel(p.kernel(), () -> KernelConfig.forDecode(device, dtype, headDim, options, chosen));
      if (numWork > 0 || graphBatch > 0) {
        generation = workspace.overwritten();
      }
    }
    DecodePlan plan = new DecodePlan(this, generation, pageTable, numQoHeads, numKvHeads, headDim, pageSize, dtype,
        options, numWork, DecodePath.of(chosenPath), chunkSize, graphBatch > 0, kernel);
    latest = plan;
    return plan;
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

  /**
   * Runs the latest plan on the device's default stream.
   *
   * @param q the queries, [batch, numQoHeads, headDim], one row per request
   * @param cache the paged KV cache
   * @param out the output, [batch, numQoHeads, headDim], written by the call
   * @param lse float32 [batch, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   */
  public void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse) {
    run(q, cache, out, lse, null);
  }

  /**
   * Runs the wrapper's latest plan (whichever thread made it): the FlashInfer-shaped convenience. Threads sharing
   * the wrapper use {@link #run(DecodePlan, Tensor, PagedKvCache, Tensor, Tensor, Stream)} with their own plan.
   *
   * @param q the queries, [batch, numQoHeads, headDim], one row per request
   * @param cache the paged KV cache
   * @param out the output, [batch, numQoHeads, headDim], written by the call
   * @param lse float32 [batch, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public synchronized void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    requireOperands(q, cache, out);
    DecodePlan plan = latest;
    if (plan == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    runPlan(plan, q, cache, out, lse, stream);
  }

  /**
   * Runs {@code plan} on the device's default stream.
   *
   * @param plan a plan made by this wrapper's plan(), not superseded since
   * @param q the queries, [batch, numQoHeads, headDim], one row per request
   * @param cache the paged KV cache
   * @param out the output, [batch, numQoHeads, headDim], written by the call
   * @param lse float32 [batch, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   */
  public void run(DecodePlan plan, Tensor q, PagedKvCache cache, Tensor out, Tensor lse) {
    run(plan, q, cache, out, lse, null);
  }

  /**
   * Computes {@code out[b, h, :]} (and {@code lse[b, h]} when lse is not null) for q {@code [batch, numQoHeads,
   * headDim]} of the batch and configuration of {@code plan}, which must come from this wrapper's
   * {@link #plan plan()} ({@link InvalidArgumentException} otherwise) and must not have been superseded
   * ({@link IllegalStateException}, see {@link DecodePlan}). Queued on {@code stream} (null = default stream) for
   * CUDA; complete on return for the CPU backend.
   *
   * @param plan a plan made by this wrapper's plan(), not superseded since
   * @param q the queries, [batch, numQoHeads, headDim], one row per request
   * @param cache the paged KV cache
   * @param out the output, [batch, numQoHeads, headDim], written by the call
   * @param lse float32 [batch, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public synchronized void run(DecodePlan plan, Tensor q, PagedKvCache cache, Tensor out, Tensor lse,
      Stream stream) {
    checkOpen();
    Checks.notNull(plan, "plan");
    requireOperands(q, cache, out);
    if (plan.owner != this) {
      throw InvalidArgumentException.of("plan", "a plan made by this wrapper's plan() (on " + device + ")",
          "a plan of another BatchDecodeWithPagedKvCache (on " + plan.device() + ")");
    }
    runPlan(plan, q, cache, out, lse, stream);
  }

  /** The null policy first: a required operand that is null is named before anything else is checked. */
  private static void requireOperands(Tensor q, PagedKvCache cache, Tensor out) {
    if (q == null || cache == null || out == null) {
      Checks.notNull(q, "q");
      Checks.notNull(cache, "cache");
      Checks.notNull(out, "out");
    }
  }

  private void runPlan(DecodePlan plan, Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    workspace.checkCurrent(plan.generation, "this DecodePlan");
    // The common case checks plain conditions without building a message; only a failing call goes through the
    // detailed checks, which throw the exception that names the argument.
    if (!argumentsValid(plan, q, cache, out, lse, stream)) {
      throwInvalid(plan, q, cache, out, lse, stream);
    }
    if (argsPlan != plan) {
      fillPlanned(plan);
    }
    // pins keep every buffer of the call alive (a concurrent close or the Cleaner waits for the call)
    try (Native.Pins pins = new Native.Pins()) {
      Pointer qPointer = CORE.pointer(q, pins);
      Pointer outPointer = CORE.pointer(out, pins);
      Pointer lsePointer = lse == null ? null : CORE.pointer(lse, pins);
      if (q.address() != argsQ || q.stride(0) != argsQStrideN || q.stride(1) != argsQStrideH) {
        args.q(qPointer).q_stride_n(q.stride(0)).q_stride_h(q.stride(1));
        argsQ = q.address();
        argsQStrideN = q.stride(0);
        argsQStrideH = q.stride(1);
      }
      if (out.address() != argsO || out.stride(0) != argsOStrideN || out.stride(1) != argsOStrideH) {
        args.o(outPointer).o_stride_n(out.stride(0)).o_stride_h(out.stride(1));
        argsO = out.address();
        argsOStrideN = out.stride(0);
        argsOStrideH = out.stride(1);
      }
      long lseAddress = lse == null ? 0 : lse.address();
      if (lseAddress != argsLse) {
        args.lse(lsePointer);
        argsLse = lseAddress;
      }
      CORE.pointer(workspace.tensor, pins);
      // a cache and a page table are immutable once made: the same object writes the same fields
      if (cache != argsCache) {
        cache.fill(argsKv, pins);
        argsCache = cache;
      } else {
        cache.pin(pins);
      }
      if (graphBatch > 0) {
        CORE.pointer(graphIndptr, pins);
        CORE.pointer(graphIndices, pins);
        CORE.pointer(graphLastPageLen, pins);
      } else if (plan.pageTable != argsPageTable) {
        plan.pageTable.fill(argsKv, pins);
        argsPageTable = plan.pageTable;
      } else {
        plan.pageTable.pin(pins);
      }
      Native.check(Fi4j.fi4j_batch_decode(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
    }
  }

  /** The plan-constant part of the native descriptor, written when a run uses another plan than the last. */
  private void fillPlanned(DecodePlan plan) {
    args.num_qo_heads(plan.numQoHeads)
        .dtype(CORE.code(plan.dtype))
        .single_kv_len(0)
        .num_work(plan.numWork)
        .path(plan.path.code())
        .workspace(CORE.pointer(workspace.tensor))
        .workspace_bytes(workspace.tensor.byteSize())
        .kernel(plan.kernel);
    Decoding.fillOptions(args.options(), plan.options);
    if (graphBatch > 0) {
      plan.pageTable.fill(argsKv);
      argsKv
          .kv_indptr(CORE.pointer(graphIndptr))
          .kv_indices(CORE.pointer(graphIndices))
          .kv_last_page_len(CORE.pointer(graphLastPageLen));
    }
    argsPlan = plan;
    argsPageTable = null;  // graph mode wrote the plan's sizes beside the wrapper's buffers
  }

  /** Whether run() would accept {@code plan} now (see {@link DecodePlan#isValid()}). */
  boolean accepts(DecodePlan plan) {
    return !closed && workspace.isCurrent(plan.generation);
  }

  private boolean argumentsValid(DecodePlan p, Tensor q, PagedKvCache cache, Tensor out, Tensor lse,
      Stream stream) {
    PageTable pageTable = p.pageTable;
    int batch = pageTable.batchSize();
    return q != null && out != null && cache != null && q.isOpen() && out.isOpen() && cache.isOpen()
        && workspace.tensor.isOpen() && pageTable.isOpen() && qoValid(p, q, batch) && qoValid(p, out, batch)
        && (lse == null || (lse.isOpen() && lse.dtype() == DType.F32 && lse.device().equals(device) && lse.dim() == 2
            && lse.size(0) == batch && lse.size(1) == p.numQoHeads && lse.isContiguous()))
        && cache.device().equals(device) && cache.dtype() == p.dtype && cache.numKvHeads() == p.numKvHeads
        && cache.headDim() == p.headDim && cache.pageSize() == p.pageSize && pageTable.pageSize() == p.pageSize
        && pageTable.maxPageId() < cache.numPages()
        && (stream == null || (stream.isOpen() && stream.device().equals(device)));
  }

  private boolean qoValid(DecodePlan p, Tensor t, int batch) {
    return t.dtype() == p.dtype && t.device().equals(device) && t.dim() == 3 && t.size(0) == batch
        && t.size(1) == p.numQoHeads && t.size(2) == p.headDim && (p.headDim <= 1 || t.stride(2) == 1);
  }

  /** The detailed checks: throws the exception naming the first bad argument. */
  private void throwInvalid(DecodePlan p, Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    Checks.notNull(q, "q");
    Checks.notNull(cache, "cache");
    Checks.notNull(out, "out");
    Checks.open(cache, "cache");
    Checks.open(workspace.tensor, "workspace");
    if (!p.pageTable.isOpen()) {
      throw new IllegalStateException("pageTable is closed (the page table of this plan)");
    }
    int batch = p.pageTable.batchSize();
    Checks.tensor(q, "q", p.dtype, device, batch, p.numQoHeads, p.headDim);
    Checks.tensor(out, "out", p.dtype, device, batch, p.numQoHeads, p.headDim);
    Checks.lse(lse, device, batch, p.numQoHeads);
    Checks.check(cache.device().equals(device), "cache.device", device.toString(), cache.device());
    Checks.check(cache.dtype() == p.dtype, "cache.dtype", "the planned dtype " + p.dtype, cache.dtype());
    Checks.check(cache.numKvHeads() == p.numKvHeads, "cache.numKvHeads", "the planned " + p.numKvHeads,
        cache.numKvHeads());
    Checks.check(cache.headDim() == p.headDim, "cache.headDim", "the planned " + p.headDim, cache.headDim());
    Checks.check(cache.pageSize() == p.pageSize, "cache.pageSize", "the planned " + p.pageSize, cache.pageSize());
    p.pageTable.checkCompatible(cache);
    Checks.stream(stream, device);
    throw new IllegalStateException("run() arguments rejected without a detailed reason (internal inconsistency)");
  }

  private void checkOpen() {
    if (closed) {
      throw Checks.closed("BatchDecodeWithPagedKvCache");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      args.close();
      workspace.close();
      CORE.closeAll(graphIndptr, graphIndices, graphLastPageLen);
    }
  }
}
