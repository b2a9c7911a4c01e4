package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;

/**
 * What one {@link BatchDecodeWithPagedKvCache#plan plan()} fixed, as an immutable value: the configuration (heads,
 * head dim, page size, dtype, options), the batch (the page table, whose host arrays and device copy are immutable
 * too) and the work layout the planner chose (work items, kernel path, chunk size). Pass it to
 * {@link BatchDecodeWithPagedKvCache#run(DecodePlan, Tensor, PagedKvCache, Tensor, Tensor, Stream)}, which uses
 * nothing else of the wrapper's planning state.
 *
 * <p>Validity: a plan is accepted only by the wrapper that made it. It holds no native memory of its own (nothing
 * to close) and stays valid while its wrapper and its page table are open, with one exception: a plan that uses the
 * wrapper's workspace ({@link #usesWorkspace()}: a split plan, whose work list lives there, or any plan of a
 * CUDA-graph wrapper, whose page table was copied into the wrapper's buffers) is superseded by the next plan() of
 * the same wrapper that writes the workspace, and running it then throws {@link IllegalStateException}. Plans that
 * do not split (always the case on the CPU backend) are never superseded.
 *
 * <p>Immutable and safe to share between threads.
 */
public final class DecodePlan {
  final BatchDecodeWithPagedKvCache owner;
  /** The workspace generation this plan wrote ({@link PlanWorkspace#NONE} when it does not use the workspace). */
  final long generation;
  final PageTable pageTable;
  final int numQoHeads;
  final int numKvHeads;
  final int headDim;
  final int pageSize;
  final DType dtype;
  final AttentionOptions options;
  final int numWork;
  final DecodePath path;
  final int chunkSize;
  final boolean graph;
  /** The kernel registry handle the native plan resolved: run() launches it without routing again. */
  final long kernel;

  DecodePlan(BatchDecodeWithPagedKvCache owner, long generation, PageTable pageTable, int numQoHeads,
      int numKvHeads, int headDim, int pageSize, DType dtype, AttentionOptions options, int numWork,
      DecodePath path, int chunkSize, boolean graph, long kernel) {
    this.owner = owner;
    this.generation = generation;
    this.pageTable = pageTable;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.pageSize = pageSize;
    this.dtype = dtype;
    this.options = options;
    this.numWork = numWork;
    this.path = path;
    this.chunkSize = chunkSize;
    this.graph = graph;
    this.kernel = kernel;
  }

  /**
   * The device of the plan.
   *
   * @return the device of the plan
   */
  public Device device() {
    return owner.device();
  }

  /**
   * The batch: request b's pages and lengths (must stay open while runs of this plan are made).
   *
   * @return the page table of the batch (must stay open while runs of this plan are made)
   */
  public PageTable pageTable() {
    return pageTable;
  }

  /**
   * Requests in the batch.
   *
   * @return requests in the batch
   */
  public int batchSize() {
    return pageTable.batchSize();
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
   * Tokens per page.
   *
   * @return tokens per page
   */
  public int pageSize() {
    return pageSize;
  }

  /**
   * The dtype of q, the cache and out.
   *
   * @return the dtype of q, the cache and out
   */
  public DType dtype() {
    return dtype;
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
   * Work items (0: no split, one block per request and KV head).
   *
   * @return work items (0: no split, one block per request and KV head)
   */
  public int numWorkItems() {
    return numWork;
  }

  /**
   * The kernel path the planner chose.
   *
   * @return the kernel path the planner chose
   */
  public DecodePath path() {
    return path;
  }

  /**
   * Tokens per work item (0 without a split).
   *
   * @return tokens per work item (0 without a split)
   */
  public int chunkSize() {
    return chunkSize;
  }

  /**
   * Whether this plan uses its wrapper's workspace (a split plan, or any plan of a CUDA-graph wrapper) and can
   * therefore be superseded by a later plan() of that wrapper.
   *
   * @return whether this plan uses its wrapper's workspace (a split plan, or any plan of a CUDA-graph wrapper) and can
   *     therefore be superseded by a later plan() of that wrapper
   */
  public boolean usesWorkspace() {
    return generation != PlanWorkspace.NONE;
  }

  /**
   * Whether its wrapper would run this plan now: the wrapper and the page table are open and no later plan()
   * overwrote the workspace this plan uses. (Another thread's plan() may change the answer at any moment.)
   *
   * @return whether its wrapper would run this plan now
   */
  public boolean isValid() {
    return owner.accepts(this) && pageTable.isOpen();
  }

  @Override
  public String toString() {
    return "DecodePlan{batch=" + batchSize() + ", heads=" + numQoHeads + "/" + numKvHeads + ", headDim=" + headDim
        + ", pageSize=" + pageSize + ", " + dtype + ", " + path + ", work=" + numWork + ", chunk=" + chunkSize
        + (graph ? ", graph" : "") + ", " + device() + "}";
  }
}
