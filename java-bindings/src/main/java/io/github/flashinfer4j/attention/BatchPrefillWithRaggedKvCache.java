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
 * attending to itself (qoLen = kvLen) with {@link AttentionMask#causal()}; with qoLen < kvLen the queries are the
 * last qoLen positions (bottom-right aligned), and with qoLen > kvLen the first rows see nothing (output 0, LSE
 * -inf).
 *
 * <p>Query head h reads KV head {@code h / (numQoHeads / numKvHeads)}. {@code lse[row, h]} is the base-2
 * log-sum-exp of the scaled (and soft-capped) logits. Masks, window, soft cap, sm scale and RoPE as in SPEC.md.
 *
 * <p>Plan/run as in {@link BatchDecodeWithPagedKvCache}: {@link #plan} validates the batch on the host, plans the
 * work and copies the offsets (and a custom mask, packed) into the device's memory; {@link #run} may then be
 * called for every layer, does argument checks and the launch only, and never allocates. plan() frees the previous
 * plan's copies: on CUDA, replan only when the runs that used them are done. Backends: the CPU reference and CUDA
 * (head dims 64, 128, 256 ahead of time; the other multiples of 16 up to 256 compiled at run time by plan(), see
 * {@link Flashinfer4j}).
 *
 * <p>CUDA graphs: {@link #run} launches its kernels (two for a split-KV plan) and neither allocates, copies nor synchronises, so it can be
 * captured ({@link CudaGraph#capture}) on a created stream after plan(). A replay reads whatever q, k and v hold
 * then (write new contents into the same tensors) and writes the captured out and lse. The graph keeps this plan's
 * device copies (offsets, packed mask) and the launch grid of this batch: it is valid until the next plan() or
 * close() of this wrapper. A new batch composition needs a new plan and a new capture. This is also the way to
 * capture a single request with a custom mask (a batch of one), which {@link SinglePrefill} cannot.
 *
 * <p>Not thread-safe: one thread at a time per wrapper; distinct wrappers (with distinct workspaces) may run
 * concurrently.
 */
public final class BatchPrefillWithRaggedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Workspace the convenience constructors allocate on a CUDA device (128 MiB). */
  public static final long DEFAULT_WORKSPACE_BYTES = BatchDecodeWithPagedKvCache.DEFAULT_WORKSPACE_BYTES;

  private final Device device;
  private final KvLayout layout;
  private final Tensor workspace;
  private final boolean ownsWorkspace;
  private final Fi4j.fi4j_prefill_args args = new Fi4j.fi4j_prefill_args();
  private PrefillPlan plan;
  private int nnzKv;
  private boolean closed;

  /** A wrapper for NHD K/V with its own workspace. */
  public BatchPrefillWithRaggedKvCache(Device device) {
    this(device, KvLayout.NHD, null);
  }

  /**
   * A wrapper for K/V in {@code layout}, over a caller-owned contiguous U8 workspace on the same device, or its
   * own ({@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA) when {@code workspace} is null.
   */
  public BatchPrefillWithRaggedKvCache(Device device, KvLayout layout, Tensor workspace) {
    this.device = Checks.notNull(device, "device");
    this.layout = Checks.notNull(layout, "layout");
    Native.ensureLoaded();
    if (workspace != null) {
      this.workspace = Checks.workspace(workspace, device);
      this.ownsWorkspace = false;
    } else {
      this.workspace = Tensor.empty(device, DType.U8, device.isCuda() ? DEFAULT_WORKSPACE_BYTES : 256);
      this.ownsWorkspace = true;
    }
  }

  public Device device() {
    return device;
  }

  public KvLayout layout() {
    return layout;
  }

  /** Plans with default options on the default stream. */
  public void plan(int[] qoIndptr, int[] kvIndptr, int numQoHeads, int numKvHeads, int headDim, DType dtype,
      AttentionMask mask) {
    plan(qoIndptr, kvIndptr, numQoHeads, numKvHeads, headDim, dtype, mask, AttentionOptions.defaults(), null);
  }

  /**
   * Fixes the batch ({@code qoIndptr} and {@code kvIndptr}: batch + 1 offsets each, from 0, non-decreasing), the
   * head configuration, the dtype of q, k, v and out, the mask and the variant options; copies what the runs need
   * into the device's memory on {@code stream} (null = default stream). Throws
   * {@link UnsupportedConfigurationException} when the device cannot run this configuration.
   */
  public synchronized void plan(int[] qoIndptr, int[] kvIndptr, int numQoHeads, int numKvHeads, int headDim,
      DType dtype, AttentionMask mask, AttentionOptions options, Stream stream) {
    checkOpen();
    PrefillPlan.checkIndptr(qoIndptr, "qoIndptr");
    PrefillPlan.checkIndptr(kvIndptr, "kvIndptr");
    Checks.check(kvIndptr.length == qoIndptr.length, "kvIndptr.length", "qoIndptr.length = " + qoIndptr.length,
        kvIndptr.length);
    int batch = qoIndptr.length - 1;
    int[] kvLens = new int[batch];
    for (int b = 0; b < batch; b++) {
      kvLens[b] = kvIndptr[b + 1] - kvIndptr[b];
    }
    PrefillPlan next = PrefillPlan.create(device, workspace, qoIndptr, kvIndptr, kvLens, 0, numQoHeads, numKvHeads,
        headDim, dtype, mask, options, stream);
    if (plan != null) {
      plan.close();
    }
    plan = next;
    nnzKv = kvIndptr[batch];
  }

  /** Runs on the default stream. */
  public void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
    run(q, k, v, out, lse, null);
  }

  /**
   * Computes {@code out} (and {@code lse} when not null: {@code [nnzQo, numQoHeads]} F32, contiguous) for q of
   * the planned batch. Queued on {@code stream} (null = default stream) for CUDA; complete on return for the CPU
   * backend.
   */
  public synchronized void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    if (plan == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    CORE.checkOpen(workspace);
    plan.checkQueries(q, out, lse, stream);
    long[] kvShape = layout == KvLayout.NHD
        ? new long[] {nnzKv, plan.numKvHeads, plan.headDim}
        : new long[] {plan.numKvHeads, nnzKv, plan.headDim};
    for (Tensor t : new Tensor[] {k, v}) {
      Checks.tensor(t, t == k ? "k" : "v", plan.dtype, device, kvShape);
    }
    // pins keep every buffer of the call alive (a concurrent close or the Cleaner waits for the call)
    try (Native.Pins pins = new Native.Pins()) {
      plan.fill(args, q, out, lse, workspace, pins);
      PrefillPlan.fillRaggedKv(args, k, v, layout, nnzKv, pins);
      Native.check(Fi4j.fi4j_batch_prefill(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
    }
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("BatchPrefillWithRaggedKvCache is closed");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      args.close();
      if (plan != null) {
        plan.close();
      }
      if (ownsWorkspace) {
        workspace.close();
      }
    }
  }
}
