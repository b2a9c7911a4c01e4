package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.IntPointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Split-KV prefill on CUDA: batches whose row tiles cannot fill the GPU (few short queries against long caches:
 * chunked prefill, appends, draft verification) are planned as key chunks per row tile plus a merge. Every problem
 * here is checked to be split by the plan, then compared with the CPU reference and the float64 reference: causal
 * (chunks past a tile's causal end are never planned), no mask, a custom mask, a window (chunks wholly outside
 * some rows' windows: never NaN), soft cap, empty requests and requests without keys, GQA 1 to 16, D 64/128/256,
 * ragged and paged. RoPE (64-row blocks, which a plan does not assume) runs unsplit from the same plan.
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuPrefillSplitTest {
  private static final CoreAccess CORE = Access.core();

  static final int[] QO = {16, 1, 0, 7, 3};
  static final int[] KV = {3000, 4100, 50, 2500, 0};
  static final int[] QO_LONGER = {70, 3};
  static final int[] KV_LONGER = {5000, 900};

  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    int[][] heads = {{32, 8}, {8, 2}, {4, 4}, {16, 1}};
    int[] dims = {128, 64, 256, 128};
    String[] masks = {"causal", "none", "random", "causal"};
    PrefillProblem.Storage[] storages = {PrefillProblem.Storage.PAGED, PrefillProblem.Storage.RAGGED,
        PrefillProblem.Storage.PAGED_COMBINED, PrefillProblem.Storage.RAGGED_FUSED};
    for (int i = 0; i < heads.length; i++) {
      boolean longer = i % 2 == 1;
      out.add(Arguments.of(new PrefillProblem(300 + i, i % 2 == 0 ? DType.BF16 : DType.F16,
          i == 2 ? KvLayout.HND : KvLayout.NHD, storages[i], 16, heads[i][0], heads[i][1], dims[i],
          longer ? QO_LONGER : QO, longer ? KV_LONGER : KV, masks[i]), AttentionOptions.defaults()));
    }
    PrefillProblem causal = new PrefillProblem(310, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 16, 32, 8,
        128, QO, KV, "causal");
    out.add(Arguments.of(causal, AttentionOptions.builder().windowLeft(1000).build()));
    out.add(Arguments.of(causal, AttentionOptions.builder().windowLeft(100).build()));
    out.add(Arguments.of(causal, AttentionOptions.builder().windowLeft(0).build()));
    out.add(Arguments.of(causal, AttentionOptions.builder().logitsSoftCap(30).build()));
    out.add(Arguments.of(causal, AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build()));
    PrefillProblem none = new PrefillProblem(311, DType.F16, KvLayout.NHD, PrefillProblem.Storage.RAGGED, 0, 8, 2, 64,
        QO_LONGER, KV_LONGER, "none");
    out.add(Arguments.of(none, AttentionOptions.builder().smScale(0.3f).logitsSoftCap(5).windowLeft(700).build()));
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void splitMatchesReferences(PrefillProblem p, AttentionOptions opt) {
    if (opt.windowLeft() < 0 || opt.windowLeft() >= 1000) {  // short windows leave nothing worth splitting
      assertTrue(planWorkItems(p, opt) > p.qoLens.length, p + " " + opt + ": expected a split plan");
    }
    p.assertCudaMatchesReferences(opt);
  }

  /** A batch that fills the GPU is not split; without a workspace nothing is split either. */
  @Test
  void planSplitsOnlyWhenItHelps() {
    int[] manyQo = new int[64];
    int[] manyKv = new int[64];
    java.util.Arrays.fill(manyQo, 512);
    java.util.Arrays.fill(manyKv, 4096);
    assertEquals(0, plan(manyQo, manyKv, 32, 8, 128, true, -1, 128L << 20));
    assertTrue(plan(QO, KV, 32, 8, 128, true, -1, 128L << 20) > QO.length);
    assertEquals(0, plan(QO, KV, 32, 8, 128, true, -1, 4096));
    assertEquals(0, plan(QO, KV, 32, 8, 128, true, 0, 128L << 20));  // a window of one key: nothing to split
  }

  static int planWorkItems(PrefillProblem p, AttentionOptions opt) {
    return plan(p.qoLens, p.kvLens, p.numQoHeads, p.numKvHeads, p.headDim,
        p.mask.kind() == AttentionMask.Kind.CAUSAL, opt.windowLeft(), 128L << 20);
  }

  /** num_work of the CUDA plan for these lengths, with a workspace of the given size. */
  static int plan(int[] qoLens, int[] kvLens, int hq, int hkv, int dim, boolean causal, int windowLeft,
      long workspaceBytes) {
    int[] indptr = new int[qoLens.length + 1];
    for (int b = 0; b < qoLens.length; b++) {
      indptr[b + 1] = indptr[b] + qoLens[b];
    }
    Device cuda = Device.cuda(0);
    try (Tensor ws = Tensor.empty(cuda, DType.U8, workspaceBytes);
        Fi4j.fi4j_prefill_plan p = new Fi4j.fi4j_prefill_plan();
        IntPointer hQo = new IntPointer(indptr);
        IntPointer hKv = new IntPointer(kvLens)) {
      p.batch_size(qoLens.length).num_qo_heads(hq).num_kv_heads(hkv).head_dim(dim).page_size(16)
          .mask_mode(causal ? 1 : 0).window_left(windowLeft).qo_indptr_host(hQo).kv_len_host(hKv);
      Native.check(Fi4j.fi4j_batch_prefill_plan(CORE.code(cuda), p, CORE.pointer(ws), ws.byteSize(), null));
      return p.num_work();
    }
  }
}
