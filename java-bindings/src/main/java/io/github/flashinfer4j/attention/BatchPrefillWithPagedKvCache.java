package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Batch prefill (and append) attention over a paged KV cache: request b's query rows are rows
 * {@code qoIndptr[b] .. qoIndptr[b+1]-1} of q ({@code [nnzQo, numQoHeads, headDim]}) and its keys are the
 * {@code kvLen(b)} tokens its pages hold ({@link PageTable}). The queries are the last qoLen positions of the
 * request (bottom-right aligned): the usual case is new tokens already appended to the cache
 * ({@link PagedKv#append}) attending to everything before them and, with {@link AttentionMask#causal()}, to each
 * other causally. With qoLen > kvLen the first rows see nothing (output 0, LSE -inf). Speculative-decoding tree
 * verification is a custom mask ({@link Masks#tree(int, int[])}).
 *
 * <p>Query head h reads KV head {@code h / (numQoHeads / numKvHeads)}. {@code lse[row, h]} is the base-2
 * log-sum-exp of the scaled (and soft-capped) logits. Masks, window, soft cap, sm scale and RoPE as in SPEC.md.
 *
 * <p>Plan/run as in {@link BatchDecodeWithPagedKvCache}: {@link #plan} validates the batch on the host, plans the
 * work and copies the query offsets (and a custom mask, packed) into the device's memory; {@link #run} may then be
 * called for every layer with that layer's q and cache, does argument checks and the launch only, and never
 * allocates. The page table must stay open while runs use it. plan() frees the previous plan's copies: on CUDA,
 * replan only when the runs that used them are done. Backends: the CPU reference and CUDA (head dims 64, 128, 256;
 * plan() throws {@link UnsupportedConfigurationException} for what the device cannot run).
 *
 * <p>CUDA graphs: {@link #run} launches its kernels (two for a split-KV plan) and neither allocates, copies nor synchronises, so it can be
 * captured ({@link CudaGraph#capture}) on a created stream after plan(). A replay reads whatever q and the cache
 * pages hold then (write new contents into the same tensors) and writes the captured out and lse. The graph keeps
 * this plan's device copies (query offsets, packed mask), the page table's device arrays and the launch grid of
 * this batch: it is valid until the next plan() or close() of this wrapper and while the page table stays open. A
 * new batch composition (lengths, pages, mask) needs a new plan and a new capture.
 *
 * <p>Not thread-safe: one thread at a time per wrapper; distinct wrappers (with distinct workspaces) may run
 * concurrently.
 */
public final class BatchPrefillWithPagedKvCache implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  /** Workspace the convenience constructors allocate on a CUDA device (128 MiB). */
  public static final long DEFAULT_WORKSPACE_BYTES = BatchDecodeWithPagedKvCache.DEFAULT_WORKSPACE_BYTES;

  private final Device device;
  private final Tensor workspace;
  private final boolean ownsWorkspace;
  private final Fi4j.fi4j_prefill_args args = new Fi4j.fi4j_prefill_args();
  private PrefillPlan plan;
  private PageTable pageTable;
  private boolean closed;

  /** A wrapper with its own workspace ({@value #DEFAULT_WORKSPACE_BYTES} bytes on CUDA). */
  public BatchPrefillWithPagedKvCache(Device device) {
    this(device, null);
  }

  /** A wrapper over a caller-owned contiguous U8 workspace on the same device (null: allocate one). */
  public BatchPrefillWithPagedKvCache(Device device, Tensor workspace) {
    this.device = Checks.notNull(device, "device");
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

  /** Plans with default options on the default stream. */
  public void plan(int[] qoIndptr, PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, DType dtype,
      AttentionMask mask) {
    plan(qoIndptr, pageTable, numQoHeads, numKvHeads, headDim, dtype, mask, AttentionOptions.defaults(), null);
  }

  /**
   * Fixes the batch ({@code qoIndptr}: {@code pageTable.batchSize() + 1} offsets from 0, non-decreasing; the page
   * table), the head configuration, the dtype of q, the cache and out, the mask and the variant options; copies
   * what the runs need into the device's memory on {@code stream} (null = default stream). Throws
   * {@link UnsupportedConfigurationException} when the device cannot run this configuration.
   */
  public synchronized void plan(int[] qoIndptr, PageTable pageTable, int numQoHeads, int numKvHeads, int headDim,
      DType dtype, AttentionMask mask, AttentionOptions options, Stream stream) {
    checkOpen();
    Checks.notNull(pageTable, "pageTable");
    Checks.check(pageTable.isOpen(), "pageTable", "open", "closed");
    Checks.check(pageTable.device().equals(device), "pageTable.device", device.toString(), pageTable.device());
    PrefillPlan.checkIndptr(qoIndptr, "qoIndptr");
    int batch = pageTable.batchSize();
    Checks.check(qoIndptr.length == batch + 1, "qoIndptr.length", "pageTable.batchSize() + 1 = " + (batch + 1),
        qoIndptr.length);
    int[] kvLens = new int[batch];
    for (int b = 0; b < batch; b++) {
      kvLens[b] = pageTable.kvLen(b);
    }
    PrefillPlan next = PrefillPlan.create(device, workspace, qoIndptr, null, kvLens, pageTable.pageSize(),
        numQoHeads, numKvHeads, headDim, dtype, mask, options, stream);
    if (plan != null) {
      plan.close();
    }
    plan = next;
    this.pageTable = pageTable;
  }

  /** Runs on the default stream. */
  public void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse) {
    run(q, cache, out, lse, null);
  }

  /**
   * Computes {@code out} (and {@code lse} when not null: {@code [nnzQo, numQoHeads]} F32, contiguous) for q of
   * the planned batch over {@code cache} (same device, dtype, KV heads, head dim and page size as planned). Queued
   * on {@code stream} (null = default stream) for CUDA; complete on return for the CPU backend.
   */
  public synchronized void run(Tensor q, PagedKvCache cache, Tensor out, Tensor lse, Stream stream) {
    checkOpen();
    if (plan == null) {
      throw new IllegalStateException("plan() must be called before run()");
    }
    Checks.notNull(cache, "cache");
    cache.checkOpen();
    CORE.checkOpen(workspace);
    plan.checkQueries(q, out, lse, stream);
    Checks.check(cache.device().equals(device), "cache.device", device.toString(), cache.device());
    Checks.check(cache.dtype() == plan.dtype, "cache.dtype", "the planned dtype " + plan.dtype, cache.dtype());
    Checks.check(cache.numKvHeads() == plan.numKvHeads, "cache.numKvHeads", "the planned " + plan.numKvHeads,
        cache.numKvHeads());
    Checks.check(cache.headDim() == plan.headDim, "cache.headDim", "the planned " + plan.headDim, cache.headDim());
    pageTable.checkCompatible(cache);
    // pins keep every buffer of the call alive (a concurrent close or the Cleaner waits for the call)
    try (Native.Pins pins = new Native.Pins()) {
      plan.fill(args, q, out, lse, workspace, pins);
      args.kv_storage(Fi4j.FI4J_KV_PAGED).k(null).v(null).nnz_kv(0);
      cache.fill(args.paged_kv(), pins);
      pageTable.fill(args.paged_kv(), pins);
      Native.check(Fi4j.fi4j_batch_prefill(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
    }
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("BatchPrefillWithPagedKvCache is closed");
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
