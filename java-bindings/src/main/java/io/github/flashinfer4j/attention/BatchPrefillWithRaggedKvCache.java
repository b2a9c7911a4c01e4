package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Batch prefill attention over ragged K/V tensors: request b's query rows are rows
 * {@code qoIndptr[b] .. qoIndptr[b+1]-1} of q ({@code [nnzQo, numQoHeads, headDim]}) and its keys and values are
 * rows {@code kvIndptr[b] .. kvIndptr[b+1]-1} of k and v ({@code [nnzKv, numKvHeads, headDim]} in the NHD layout,
 * {@code [numKvHeads, nnzKv, headDim]} in HND; k and v may have different strides). The usual case is a prompt
 * attending to itself (qoLen = kvLen) with {@link AttentionMask#causal()}; with {@code qoLen < kvLen} the queries
 * are the last qoLen positions (bottom-right aligned), and with {@code qoLen > kvLen} the first rows see nothing
 * (output 0, LSE -inf).
 *
 * <p>Query head h reads KV head {@code h / (numQoHeads / numKvHeads)}. {@code lse[row, h]} is the base-2
 * log-sum-exp of the scaled (and soft-capped) logits. Masks, window, soft cap, sm scale and RoPE as in
 * <a href="https://github.com/flashinfer4j/flashinfer4j/blob/main/docs/SPEC.md">docs/SPEC.md</a>.
 *
 * <p>Plan/run as in {@link BatchDecodeWithPagedKvCache}: {@link #plan} validates the batch on the host, plans the
 * work and copies the offsets (and a custom mask, packed) into the device's memory; {@link #run} may then be called
 * for every layer, does argument checks and the launch only, and never allocates. Each plan owns its copies ({@link
 * PrefillPlan}: freed by its close, the wrapper's close, or when unreachable). Backends: the CPU reference and CUDA
 * (head dims 64, 128, 256 ahead of time; the other multiples of 16 up to 256 compiled at run time by plan(), see
 * {@link Flashinfer4j}).
 *
 * <p>CUDA graphs: {@link #run} launches its kernels (two for a split-KV plan) and neither allocates, copies nor
 * synchronises, so it can be captured ({@link CudaGraph#capture}) on a created stream after plan(). A replay reads
 * whatever q, k and v hold then (write new contents into the same tensors) and writes the captured out and lse. The
 * graph keeps this plan's device copies (offsets, packed mask) and the launch grid of this batch: it is valid until
 * a later split plan() of this wrapper overwrites the work list in the workspace (a plan that does not split leaves
 * it alone) or the wrapper is closed; the graph keeps the plan's copies allocated even if the plan is closed. A new
 * batch composition needs a new plan and a new capture. This is also the way to capture a single request with a
 * custom mask (a batch of one), which {@link SinglePrefill} cannot.
 *
 * <h2>Plans are values</h2>
 * {@link #plan} returns a {@link PrefillPlan}, an immutable value holding everything a run needs (and its own device
 * copies: see its ownership rules); {@code run(plan, ...)} uses that plan and nothing else of the wrapper's planning
 * state. The FlashInfer-shaped {@code run(q, ...)} uses the wrapper's latest plan, whichever thread made it.
 *
 * <h2>Threads</h2>
 * plan, run and close are serialised on the wrapper (a close racing a run waits for it). Threads may share one
 * wrapper when each runs the plan it made ({@code PrefillPlan p = w.plan(...); w.run(p, ...)}): a plan cannot be
 * mixed with another thread's. Not shareable this way: (1) the convenience {@code run(q, ...)}, which takes the
 * latest plan of any thread; (2) split plans ({@link PrefillPlan#usesWorkspace()}), whose work list lives in the
 * workspace: the next plan() that writes it supersedes them, and running a superseded plan throws
 * IllegalStateException (plan again, or use one wrapper per thread); (3) split runs that may overlap on the device
 * (distinct streams), which write their partial outputs into the same workspace. Plans that do not split (always
 * the case on the CPU backend) stay valid until closed. Threads on distinct streams are simplest with distinct
 * wrappers (with distinct workspaces).
 */
public final class BatchPrefillWithRaggedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Workspace the convenience constructors allocate on a CUDA device (128 MiB). */
  public static final long DEFAULT_WORKSPACE_BYTES = BatchDecodeWithPagedKvCache.DEFAULT_WORKSPACE_BYTES;

  private final Device device;
  private final KvLayout layout;
  private final PlanWorkspace workspace;
  private final Fi4j.fi4j_prefill_args args = new Fi4j.fi4j_prefill_args();
  private volatile PrefillPlan latest;  // the plan of the convenience run()
  private volatile boolean closed;

  /**
   * A wrapper for NHD K/V with its own workspace.
   *
   * @param device the device it lives and runs on (a CUDA device or the CPU backend)
   */
  public BatchPrefillWithRaggedKvCache(Device device) {
    this(device, KvLayout.NHD, null);
  }

  /**
   * A wrapper for K/V in {@code layout}, over a caller-owned contiguous U8 workspace on the same device, or its
   * own ({@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA) when {@code workspace} is null.
   *
   * @param device the device it lives and runs on (a CUDA device or the CPU backend)
   * @param layout the layout of k and v in run()
   * @param workspace a caller-owned U8 workspace tensor on the same device, or null for one the wrapper allocates
   */
  public BatchPrefillWithRaggedKvCache(Device device, KvLayout layout, Tensor workspace) {
    this.device = Checks.notNull(device, "device");
    this.layout = Checks.notNull(layout, "layout");
    Native.ensureLoaded();
    this.workspace = new PlanWorkspace("BatchPrefillWithRaggedKvCache", device, workspace,
        device.isCuda() ? DEFAULT_WORKSPACE_BYTES : 256);
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
   * The latest plan (the one the convenience {@code run(q, ...)} uses), or null before the first plan().
   *
   * @return the latest plan (the one the convenience {@code run(q, ...)} uses), or null before the first plan()
   */
  public PrefillPlan latestPlan() {
    return latest;
  }

  /**
   * The layout of k and v that run() expects.
   *
   * @return the layout of k and v that run() expects
   */
  public KvLayout layout() {
    return layout;
  }

  /**
   * Plans with default options on the default stream.
   *
   * @param qoIndptr int32 [batch + 1]: request b's query rows are rows qoIndptr[b] .. qoIndptr[b+1]-1 of q
   * @param kvIndptr int32 [batch + 1]: request b's keys and values are rows kvIndptr[b] .. kvIndptr[b+1]-1 of k and v
   * @param numQoHeads the number of query (and output) heads H_qo, a multiple of numKvHeads
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @param dtype the element type
   * @param mask which keys each query row may see
   * @return the plan, which also becomes the wrapper's latest plan
   */
  public PrefillPlan plan(int[] qoIndptr, int[] kvIndptr, int numQoHeads, int numKvHeads, int headDim, DType dtype,
      AttentionMask mask) {
    return plan(qoIndptr, kvIndptr, numQoHeads, numKvHeads, headDim, dtype, mask, AttentionOptions.defaults(), null);
  }

  /**
   * Fixes the batch ({@code qoIndptr} and {@code kvIndptr}: batch + 1 offsets each, from 0, non-decreasing), the
   * head configuration, the dtype of q, k, v and out, the mask and the variant options; copies what the runs need
   * into the device's memory on {@code stream} (null = default stream). Throws
   * {@link UnsupportedConfigurationException} when the device cannot run this configuration.
   *
   * <p>Returns the plan, which also becomes the wrapper's latest plan (used by the convenience {@code run(q, ...)}).
   * Earlier plans stay open (see {@link PrefillPlan} for when their copies are freed); a split plan supersedes the
   * earlier split plans of this wrapper.
   *
   * @param qoIndptr int32 [batch + 1]: request b's query rows are rows qoIndptr[b] .. qoIndptr[b+1]-1 of q
   * @param kvIndptr int32 [batch + 1]: request b's keys and values are rows kvIndptr[b] .. kvIndptr[b+1]-1 of k and v
   * @param numQoHeads the number of query (and output) heads H_qo, a multiple of numKvHeads
   * @param numKvHeads the number of KV heads H_kv
   * @param headDim the head dimension D
   * @param dtype the element type
   * @param mask which keys each query row may see
   * @param options the attention variant (soft cap, window, sm scale, RoPE)
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   * @return the plan, which also becomes the wrapper's latest plan
   */
  public synchronized PrefillPlan plan(int[] qoIndptr, int[] kvIndptr, int numQoHeads, int numKvHeads, int headDim,
      DType dtype, AttentionMask mask, AttentionOptions options, Stream stream) {
    checkOpen();
    Checks.notNull(qoIndptr, "qoIndptr");
    Checks.notNull(kvIndptr, "kvIndptr");
    Checks.notNull(dtype, "dtype");
    Checks.notNull(mask, "mask");
    Checks.notNull(options, "options");
    Prefilling.checkIndptr(qoIndptr, "qoIndptr");
    Prefilling.checkIndptr(kvIndptr, "kvIndptr");
    Checks.check(kvIndptr.length == qoIndptr.length, "kvIndptr.length", "qoIndptr.length = " + qoIndptr.length,
        kvIndptr.length);
    int batch = qoIndptr.length - 1;
    int[] kvLens = new int[batch];
    for (int b = 0; b < batch; b++) {
      kvLens[b] = kvIndptr[b + 1] - kvIndptr[b];
    }
    PrefillPlan plan = PrefillPlan.create(this, workspace, device, qoIndptr, kvIndptr, kvLens, null, 0, numQoHeads,
        numKvHeads, headDim, dtype, mask, options, stream);
    latest = plan;
    return plan;
  }

  /**
   * Runs the latest plan on the default stream.
   *
   * @param q the queries, [nnzQo, numQoHeads, headDim]
   * @param k the keys, [nnzKv, numKvHeads, headDim] (NHD) or [numKvHeads, nnzKv, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [nnzQo, numQoHeads, headDim], written by the call
   * @param lse float32 [nnzQo, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   */
  public void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
    run(q, k, v, out, lse, null);
  }

  /**
   * Runs the wrapper's latest plan (whichever thread made it): the FlashInfer-shaped convenience. Threads sharing
   * the wrapper use {@link #run(PrefillPlan, Tensor, Tensor, Tensor, Tensor, Tensor, Stream)} with their own plan.
   *
   * @param q the queries, [nnzQo, numQoHeads, headDim]
   * @param k the keys, [nnzKv, numKvHeads, headDim] (NHD) or [numKvHeads, nnzKv, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [nnzQo, numQoHeads, headDim], written by the call
   * @param lse float32 [nnzQo, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public synchronized void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    requireOperands(q, k, v, out);
    PrefillPlan plan = latest;
    if (plan == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    runPlan(plan, q, k, v, out, lse, stream);
  }

  /**
   * Runs {@code plan} on the default stream.
   *
   * @param plan a plan made by this wrapper's plan(), not superseded since
   * @param q the queries, [nnzQo, numQoHeads, headDim]
   * @param k the keys, [nnzKv, numKvHeads, headDim] (NHD) or [numKvHeads, nnzKv, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [nnzQo, numQoHeads, headDim], written by the call
   * @param lse float32 [nnzQo, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   */
  public void run(PrefillPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
    run(plan, q, k, v, out, lse, null);
  }

  /**
   * Computes {@code out} (and {@code lse} when not null: {@code [nnzQo, numQoHeads]} F32, contiguous) for q of
   * the batch of {@code plan}, which must come from this wrapper's {@link #plan plan()}
   * ({@link io.github.flashinfer4j.InvalidArgumentException} otherwise), be open and not superseded
   * ({@link IllegalStateException}, see {@link PrefillPlan}). Queued on {@code stream} (null = default stream) for
   * CUDA; complete on return for the CPU backend.
   *
   * @param plan a plan made by this wrapper's plan(), not superseded since
   * @param q the queries, [nnzQo, numQoHeads, headDim]
   * @param k the keys, [nnzKv, numKvHeads, headDim] (NHD) or [numKvHeads, nnzKv, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [nnzQo, numQoHeads, headDim], written by the call
   * @param lse float32 [nnzQo, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public synchronized void run(PrefillPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
      Stream stream) {
    checkOpen();
    Checks.notNull(plan, "plan");
    requireOperands(q, k, v, out);
    runPlan(plan, q, k, v, out, lse, stream);
  }

  /** The null policy first: a required operand that is null is named before anything else is checked. */
  private static void requireOperands(Tensor q, Tensor k, Tensor v, Tensor out) {
    Checks.notNull(q, "q");
    Checks.notNull(k, "k");
    Checks.notNull(v, "v");
    Checks.notNull(out, "out");
  }

  private void runPlan(PrefillPlan plan, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Stream stream) {
    plan.checkRunnable(this, "BatchPrefillWithRaggedKvCache");
    Checks.open(workspace.tensor, "workspace");
    plan.checkQueries(q, out, lse, stream);
    long[] kvShape = layout == KvLayout.NHD
        ? new long[] {plan.nnzKv, plan.numKvHeads, plan.headDim}
        : new long[] {plan.numKvHeads, plan.nnzKv, plan.headDim};
    Checks.tensor(k, "k", plan.dtype, device, kvShape);
    Checks.tensor(v, "v", plan.dtype, device, kvShape);
    // pins keep every buffer of the call alive (a concurrent close or the Cleaner waits for the call)
    try (Native.Pins pins = new Native.Pins()) {
      plan.fill(args, q, out, lse, pins);
      Prefilling.fillRaggedKv(args, k, v, layout, plan.nnzKv, pins);
      Native.check(Fi4j.fi4j_batch_prefill(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
    }
  }

  private void checkOpen() {
    if (closed) {
      throw Checks.closed("BatchPrefillWithRaggedKvCache");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      args.close();
      workspace.close();  // and the device copies of every plan not closed yet
    }
  }
}
