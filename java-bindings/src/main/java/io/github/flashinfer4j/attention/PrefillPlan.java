package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * What one plan() of a prefill wrapper ({@link BatchPrefillWithRaggedKvCache}, {@link BatchPrefillWithPagedKvCache})
 * fixed, as an immutable value: the configuration (heads, head dim, dtype, mask kind, options), the batch (query
 * offsets, KV lengths, the page table of a paged plan; their copies in the device's memory, with the packed custom
 * mask) and the work layout the planner chose (work items, query rows per block). Pass it to the wrapper's
 * {@code run(plan, ...)}, which uses nothing else of the wrapper's planning state.
 *
 * <h2>Ownership</h2>
 * The plan owns its device copies (one allocation). They are freed by {@link #close()}, by the close of the wrapper
 * that made the plan, or, when neither happens, once the plan is unreachable (by a Cleaner, without a warning:
 * ignoring the result of the FlashInfer-shaped {@code plan()} is a normal use). A later plan() of the wrapper does
 * not free an earlier plan, so a plan a thread holds cannot be freed under it by another thread; close plans you
 * made in a loop when you are done with them to free their copies promptly. A close while a run uses the copies
 * waits for the run's native call, and a CUDA graph that captured a run keeps them until the graph is closed. On
 * CUDA, close a plan only when the runs queued with it are done (cudaFree waits for the device in practice, but
 * that is not a promise).
 *
 * <h2>Validity</h2>
 * A plan is accepted only by the wrapper that made it ({@link InvalidArgumentException} for another's), while it
 * is open and, for a paged plan, its page table is open. A split plan ({@link #usesWorkspace()}: its work list
 * lives in the wrapper's workspace) is superseded by the next plan() of the same wrapper that writes the workspace,
 * and running it then throws {@link IllegalStateException}. Plans that do not split (always the case on the CPU
 * backend) are never superseded.
 *
 * <p>Immutable; safe to share between threads (runs that use it may run at once on distinct outputs).
 */
public final class PrefillPlan implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  final Object owner;
  final PlanWorkspace workspace;
  /** The workspace generation this plan wrote ({@link PlanWorkspace#NONE} when it does not use the workspace). */
  final long generation;
  final Device device;
  final int batch;
  final int numQoHeads;
  final int numKvHeads;
  final int headDim;
  final DType dtype;
  final AttentionMask.Kind maskKind;
  final AttentionOptions options;
  final int nnzQo;
  final int nnzKv;              // ragged: kvIndptr[batch]; paged: -1
  final PageTable pageTable;    // paged only
  private final int[] kvLens;
  final int numWork;
  final int ctaTileQ;
  /** The kernel registry handle the native plan resolved: run() launches it without routing again. */
  final long kernel;
  private final Tensor storage;       // qoIndptr | kvIndptr | maskIndptr | mask bits, one untracked allocation
  private final Tensor qoIndptr;
  private final Tensor kvIndptr;      // ragged only
  private final Tensor maskIndptr;    // custom mask only
  private final Tensor maskBits;
  private final long maskBytes;
  private final Cleaner.Cleanable cleanable;

  private PrefillPlan(Object owner, PlanWorkspace workspace, long generation, Device device, int[] qo, int[] kvLens,
      int nnzKv, PageTable pageTable, int numQoHeads, int numKvHeads, int headDim, DType dtype, AttentionMask mask,
      AttentionOptions options, int numWork, int ctaTileQ, long kernel, Tensor storage, Tensor qoIndptr,
      Tensor kvIndptr, Tensor maskIndptr, Tensor maskBits, long maskBytes) {
    this.owner = owner;
    this.workspace = workspace;
    this.generation = generation;
    this.device = device;
    this.batch = kvLens.length;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.dtype = dtype;
    this.maskKind = mask.kind();
    this.options = options;
    this.nnzQo = qo[batch];
    this.nnzKv = nnzKv;
    this.pageTable = pageTable;
    this.kvLens = kvLens;
    this.numWork = numWork;
    this.ctaTileQ = ctaTileQ;
    this.kernel = kernel;
    this.storage = storage;
    this.qoIndptr = qoIndptr;
    this.kvIndptr = kvIndptr;
    this.maskIndptr = maskIndptr;
    this.maskBits = maskBits;
    this.maskBytes = maskBytes;
    // frees the copies when the plan is unreachable; references the storage and the wrapper's set, not the plan
    java.util.Set<Tensor> copies = workspace.planCopies;
    this.cleanable = Native.whenUnreachable(this, () -> {
      storage.close();
      copies.remove(storage);
    });
  }

  /**
   * Validates, runs the native plan into the wrapper's workspace (advancing its generation when the plan writes
   * it) and uploads the batch. {@code kvIndptr} is the ragged offsets (null for a paged cache, whose
   * {@code pageTable} is then given and {@code pageSize} > 0). The caller has checked qoIndptr and kvLens (same
   * batch) and holds the wrapper's lock.
   */
  static PrefillPlan create(Object owner, PlanWorkspace workspace, Device device, int[] qoIndptr, int[] kvIndptr,
      int[] kvLens, PageTable pageTable, int pageSize, int numQoHeads, int numKvHeads, int headDim, DType dtype,
      AttentionMask mask, AttentionOptions options, Stream stream) {
    Checks.notNull(dtype, "dtype");
    Checks.notNull(mask, "mask");
    Checks.notNull(options, "options");
    Prefilling.checkHeads(numQoHeads, numKvHeads, headDim);
    Checks.stream(stream, device);
    int batch = kvLens.length;
    int[] qoLens = new int[batch];
    for (int b = 0; b < batch; b++) {
      qoLens[b] = qoIndptr[b + 1] - qoIndptr[b];
    }
    PackedMask packed = mask.packFor(qoLens, kvLens, "mask");
    int numWork;
    int ctaTileQ;
    long kernel;
    long generation = PlanWorkspace.NONE;
    try (Native.Pins pins = new Native.Pins();
        Fi4j.fi4j_prefill_plan p = new Fi4j.fi4j_prefill_plan();
        IntPointer hQo = new IntPointer(qoIndptr);
        IntPointer hKv = new IntPointer(batch == 0 ? new int[1] : kvLens)) {
      p.batch_size(batch)
          .num_qo_heads(numQoHeads)
          .num_kv_heads(numKvHeads)
          .head_dim(headDim)
          .page_size(pageSize)
          .mask_mode(mask.kind().code())
          .window_left(options.windowLeft())
          .qo_indptr_host(hQo)
          .kv_len_host(hKv)
          .dtype(CORE.code(dtype))
          .soft_cap(options.logitsSoftCap() > 0f ? 1 : 0)
          .pos_encoding(options.posEncoding().code())
          .num_work(0)
          .cta_tile_q(0)
          .workspace_bytes(0);
      Pointer streamPtr = stream == null ? null : CORE.pointer(stream, pins);
      Pointer ws = CORE.pointer(workspace.tensor, pins);
      try {
        Native.check(Fi4j.fi4j_batch_prefill_plan(CORE.code(device), p, ws, workspace.tensor.byteSize(), streamPtr));
      } catch (RuntimeException | Error e) {
        if (device.isCuda()) {
          workspace.overwritten();  // it may have written part of the work list: no earlier plan may trust it now
        }
        throw e;
      }
      numWork = p.num_work();
      ctaTileQ = p.cta_tile_q();
      // The plan resolved the kernel (routing once; a head dim outside the ahead-of-time set compiled or loaded
      // here), so that run() launches the handle and never compiles.
      kernel = Decoding.kernel(p.kernel(), () -> KernelConfig.forPrefill(device, dtype, headDim, options));
      if (numWork > 0) {
        generation = workspace.overwritten();
      }
    }
    // one allocation: qoIndptr | kvIndptr | maskIndptr (ints) | mask bits, each part on a 16-byte boundary
    long qoAt = 0;
    long kvAt = align16(qoAt + 4L * qoIndptr.length);
    long miAt = align16(kvAt + (kvIndptr == null ? 0 : 4L * kvIndptr.length));
    int[] maskIndptrHost = packed == null ? null : packed.indptrNoCopy();
    byte[] bits = packed == null ? null : packed.bitsNoCopy();
    long bitsAt = align16(miAt + (maskIndptrHost == null ? 0 : 4L * maskIndptrHost.length));
    long total = bitsAt + (bits == null ? 0 : Math.max(1, bits.length));
    Checks.check(total <= Integer.MAX_VALUE - 8, "plan size", "<= 2^31-9 bytes of offsets and mask", total);
    ByteBuffer image = ByteBuffer.allocate((int) total).order(ByteOrder.nativeOrder());
    image.asIntBuffer().put(qoIndptr);
    if (kvIndptr != null) {
      image.position((int) kvAt);
      image.slice().order(ByteOrder.nativeOrder()).asIntBuffer().put(kvIndptr);
    }
    if (maskIndptrHost != null) {
      image.position((int) miAt);
      image.slice().order(ByteOrder.nativeOrder()).asIntBuffer().put(maskIndptrHost);
      image.position((int) bitsAt);
      image.put(bits);
    }
    image.position(0);
    Tensor storage = CORE.allocateUntracked(owner.getClass().getSimpleName() + " plan", device, DType.U8, total);
    try {
      storage.copyFrom(image);
      Tensor dQo = storage.narrow(0, qoAt, 4L * qoIndptr.length);
      Tensor dKv = kvIndptr == null ? null : storage.narrow(0, kvAt, 4L * kvIndptr.length);
      Tensor dMaskIndptr = maskIndptrHost == null ? null : storage.narrow(0, miAt, 4L * maskIndptrHost.length);
      Tensor dBits = bits == null ? null : storage.narrow(0, bitsAt, Math.max(1, bits.length));
      PrefillPlan plan = new PrefillPlan(owner, workspace, generation, device, qoIndptr.clone(), kvLens.clone(),
          kvIndptr == null ? -1 : kvIndptr[batch], pageTable, numQoHeads, numKvHeads, headDim, dtype, mask, options,
          numWork, ctaTileQ, kernel, storage, dQo, dKv, dMaskIndptr, dBits, bits == null ? 0 : bits.length);
      workspace.planCopies.add(storage);
      return plan;
    } catch (RuntimeException | Error e) {
      storage.close();
      throw e;
    }
  }

  private static long align16(long n) {
    return (n + 15) & ~15L;
  }

  /**
   * Checks that {@code runner}'s run may use this plan: made by it, open, not superseded, its page table open.
   * {@code wrapperName} names the runner in the message.
   */
  void checkRunnable(Object runner, String wrapperName) {
    if (owner != runner) {
      throw InvalidArgumentException.of("plan", "a plan made by this wrapper's plan() (on " + device + ")",
          "a plan of another " + owner.getClass().getSimpleName() + " (on " + device + ")");
    }
    if (!storage.isOpen()) {
      throw Checks.closed("PrefillPlan");
    }
    workspace.checkCurrent(generation, "this PrefillPlan");
    if (pageTable != null && !pageTable.isOpen()) {
      throw Checks.closed("pageTable", pageTable + " (the page table of this plan)");
    }
  }

  /** Checks q, out ({@code [nnzQo, numQoHeads, headDim]}), lse ({@code [nnzQo, numQoHeads]} F32) and the stream. */
  void checkQueries(Tensor q, Tensor out, Tensor lse, Stream stream) {
    Checks.tensor(q, "q", dtype, device, nnzQo, numQoHeads, headDim);
    Checks.tensor(out, "out", dtype, device, nnzQo, numQoHeads, headDim);
    Checks.lse(lse, device, nnzQo, numQoHeads);
    Checks.stream(stream, device);
  }

  /** Fills everything of the native arguments but the keys and values, pinning what it points to. */
  void fill(Fi4j.fi4j_prefill_args args, Tensor q, Tensor out, Tensor lse, Native.Pins pins) {
    args.dtype(CORE.code(dtype))
        .batch_size(batch)
        .num_qo_heads(numQoHeads)
        .num_kv_heads(numKvHeads)
        .head_dim(headDim)
        .qo_indptr(CORE.pointer(qoIndptr, pins))
        .nnz_qo(nnzQo)
        .kv_indptr(kvIndptr == null ? null : CORE.pointer(kvIndptr, pins))
        .mask_mode(maskKind.code())
        .custom_mask(maskBits == null ? null : CORE.pointer(maskBits, pins))
        .mask_indptr(maskIndptr == null ? null : CORE.pointer(maskIndptr, pins))
        .custom_mask_bytes(maskBytes)
        .num_work(numWork)
        .cta_tile_q(ctaTileQ)
        .workspace(CORE.pointer(workspace.tensor, pins))
        .workspace_bytes(workspace.tensor.byteSize())
        .kernel(kernel);
    Prefilling.fillQueries(args, q, out, lse, pins);
    Decoding.fillOptions(args.options(), options);
  }

  /**
   * The device of the plan.
   *
   * @return the device of the plan
   */
  public Device device() {
    return device;
  }

  /**
   * Requests in the batch.
   *
   * @return requests in the batch
   */
  public int batchSize() {
    return batch;
  }

  /**
   * Query heads.
   *
   * @return query heads
   */
  public int numQoHeads() {
    return numQoHeads;
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
   * The dtype of q, k/v (or the cache) and out.
   *
   * @return the dtype of q, k/v (or the cache) and out
   */
  public DType dtype() {
    return dtype;
  }

  /**
   * The kind of mask the plan applies.
   *
   * @return the kind of mask the plan applies
   */
  public AttentionMask.Kind maskKind() {
    return maskKind;
  }

  /**
   * The attention variant.
   *
   * @return the attention variant
   */
  public AttentionOptions options() {
    return options;
  }

  /**
   * Query rows of the batch ({@code qoIndptr[batch]}).
   *
   * @return query rows of the batch ({@code qoIndptr[batch]})
   */
  public int nnzQo() {
    return nnzQo;
  }

  /**
   * Keys of request b.
   *
   * @param b the request index, {@code 0 <= b < batchSize()}
   * @return keys of request b
   */
  public int kvLen(int b) {
    Checks.check(b >= 0 && b < batch, "b", "in [0, " + batch + ")", b);
    return kvLens[b];
  }

  /**
   * The page table of a paged plan (must stay open while runs of this plan are made); null for a ragged plan.
   *
   * @return the page table of a paged plan (must stay open while runs of this plan are made)
   */
  public PageTable pageTable() {
    return pageTable;
  }

  /**
   * Work items of a split plan (0: no split).
   *
   * @return work items of a split plan (0: no split)
   */
  public int numWorkItems() {
    return numWork;
  }

  /**
   * Query rows per block the backend chose (0 on the CPU backend).
   *
   * @return query rows per block the backend chose (0 on the CPU backend)
   */
  public int ctaTileQ() {
    return ctaTileQ;
  }

  /**
   * Whether this is a split plan, whose work list lives in its wrapper's workspace (see Validity above).
   *
   * @return whether this is a split plan, whose work list lives in its wrapper's workspace (see Validity above)
   */
  public boolean usesWorkspace() {
    return generation != PlanWorkspace.NONE;
  }

  /**
   * Whether the plan's device copies are still allocated; safe to call from any thread.
   *
   * @return whether the plan's device copies are still allocated
   */
  public boolean isOpen() {
    return storage.isOpen();
  }

  /**
   * Whether its wrapper would run this plan now: open, not superseded, its page table (if paged) open, the
   * workspace open. (Another thread's plan() may change the answer at any moment.)
   *
   * @return whether its wrapper would run this plan now
   */
  public boolean isValid() {
    return isOpen() && workspace.isCurrent(generation) && workspace.tensor.isOpen()
        && (pageTable == null || pageTable.isOpen());
  }

  /**
   * Frees the device copies; idempotent. A run still using them finishes first; a CUDA graph that captured a run
   * keeps them until it is closed.
   */
  @Override
  public void close() {
    cleanable.clean();
  }

  @Override
  public String toString() {
    return "PrefillPlan{batch=" + batch + ", nnzQo=" + nnzQo + ", heads=" + numQoHeads + "/" + numKvHeads
        + ", headDim=" + headDim + ", " + dtype + ", mask=" + maskKind + ", work=" + numWork + ", ctaTileQ="
        + ctaTileQ + (pageTable != null ? ", paged" : ", ragged") + ", " + device + (isOpen() ? "" : ", closed")
        + "}";
  }
}
