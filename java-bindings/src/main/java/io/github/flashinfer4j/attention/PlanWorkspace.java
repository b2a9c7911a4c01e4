package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A batch wrapper's workspace, the one mutable thing its plans share, and its write generation: every plan() that
 * writes into the workspace (the work list of a split plan, the page-table buffers of CUDA-graph mode), or may have
 * written before it failed, starts a new generation. A plan that depends on the workspace records the generation
 * it wrote and is superseded once another begins; a plan that does not ({@link #NONE}) is never superseded.
 * Generations are advanced under the wrapper's lock and read by {@link #isCurrent} from any thread.
 */
final class PlanWorkspace {
  /** The generation of a plan that does not depend on the workspace. */
  static final long NONE = -1;

  final Tensor tensor;
  /** The device copies of the prefill plans made over this workspace that are not freed yet (closed with it). */
  final Set<Tensor> planCopies = ConcurrentHashMap.newKeySet();
  private final boolean owned;
  private volatile long generation;

  /** Over a caller-owned workspace (checked), or a new one of {@code bytes} when {@code workspace} is null. */
  PlanWorkspace(String owner, Device device, Tensor workspace, long bytes) {
    if (workspace != null) {
      this.tensor = Checks.workspace(workspace, device);
      this.owned = false;
    } else {
      this.tensor = Access.core().allocate(owner + " workspace", device, DType.U8, bytes);
      this.owned = true;
    }
  }

  /** Marks the workspace (possibly) overwritten; returns the new generation. Called under the wrapper's lock. */
  long overwritten() {
    long g = generation + 1;
    generation = g;
    return g;
  }

  boolean isCurrent(long planGeneration) {
    return planGeneration == NONE || planGeneration == generation;
  }

  /** Throws IllegalStateException naming the situation and the remedy when the plan has been superseded. */
  void checkCurrent(long planGeneration, String plan) {
    if (!isCurrent(planGeneration)) {
      throw new IllegalStateException(plan + " was superseded: a later plan() of the same wrapper overwrote the "
          + "workspace this plan uses (its work list or CUDA-graph buffers); plan again before this run, or give "
          + "each thread (each stream) its own wrapper");
    }
  }

  /** Closes the plans' copies that are still allocated, and the workspace when the wrapper allocated it. */
  void close() {
    for (Tensor t : planCopies) {
      t.close();
    }
    planCopies.clear();
    if (owned) {
      tensor.close();
    }
  }
}
