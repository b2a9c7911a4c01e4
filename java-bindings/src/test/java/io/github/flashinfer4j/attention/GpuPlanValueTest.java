package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.function.Executable;

/**
 * The supersede rule on CUDA, where plans can depend on the wrapper's workspace: a split plan (its work list is in
 * the workspace) and every plan of a CUDA-graph wrapper (its page table is in the wrapper's buffers) are superseded
 * by the next plan() that writes the workspace, and running them then throws IllegalStateException; a plan that
 * does not split is never superseded.
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuPlanValueTest {
  private static final int QO_HEADS = 8;
  private static final int KV_HEADS = 2;
  private static final int DIM = 128;
  private static final int PAGE = 16;
  private static final DType DTYPE = DType.BF16;

  private static void assertSuperseded(Executable run) {
    IllegalStateException e = assertThrows(IllegalStateException.class, run);
    assertTrue(e.getMessage().contains("was superseded") && e.getMessage().contains("plan again")
        && e.getMessage().contains("own wrapper"), e.getMessage());
  }

  @Test
  void splitDecodePlansAreSupersededByTheNextSplitPlan() {
    Device d = Device.cuda(0);
    int[] lens = {300, 47, 129};
    try (Stream stream = Stream.create(d);
        PagedKvCache cache = PagedKvCache.allocate(d, DTYPE, KvLayout.NHD, 64, PAGE, KV_HEADS, DIM);
        PageTable table = PageTable.contiguous(d, PAGE, lens);
        Tensor q = Tensor.empty(d, DTYPE, lens.length, QO_HEADS, DIM);
        Tensor out = Tensor.empty(d, DTYPE, lens.length, QO_HEADS, DIM);
        Tensor expected = Tensor.empty(d, DTYPE, lens.length, QO_HEADS, DIM);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(d)) {
      cache.k().fillUniform(1, 1f, stream);
      cache.v().fillUniform(2, 1f, stream);
      q.fillUniform(3, 1f, stream);
      DecodePlan split = dec.plan(table, QO_HEADS, KV_HEADS, DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.deterministic(32), stream);
      assertTrue(split.numWorkItems() > lens.length && split.usesWorkspace(), split.toString());
      dec.run(split, q, cache, expected, null, stream);
      DecodePlan whole = dec.plan(table, QO_HEADS, KV_HEADS, DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.builder().neverSplit().build(), stream);
      assertFalse(whole.usesWorkspace());
      assertTrue(split.isValid(), "a plan that does not split leaves the workspace alone");
      out.fillBytes(0xff);
      dec.run(split, q, cache, out, null, stream);
      stream.synchronize();
      assertArrayEquals(expected.toBits(), out.toBits(), "the split plan still runs its own work list");
      DecodePlan split2 = dec.plan(table, QO_HEADS, KV_HEADS, DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.deterministic(64), stream);
      assertTrue(split2.usesWorkspace());
      assertFalse(split.isValid());
      assertSuperseded(() -> dec.run(split, q, cache, out, null, stream));
      dec.run(split2, q, cache, out, null, stream);
      dec.run(whole, q, cache, out, null, stream);  // never superseded
      stream.synchronize();
    }
  }

  @Test
  void graphWrapperPlansAreSupersededByEveryPlan() {
    Device d = Device.cuda(0);
    int[] lens = {40, 7};
    try (Stream stream = Stream.create(d);
        PagedKvCache cache = PagedKvCache.allocate(d, DTYPE, KvLayout.NHD, 16, PAGE, KV_HEADS, DIM);
        PageTable t1 = PageTable.contiguous(d, PAGE, lens);
        PageTable t2 = PageTable.contiguous(d, PAGE, new int[] {3, 90});
        Tensor q = Tensor.zeros(d, DTYPE, 2, QO_HEADS, DIM);
        Tensor out = Tensor.empty(d, DTYPE, 2, QO_HEADS, DIM);
        BatchDecodeWithPagedKvCache dec = BatchDecodeWithPagedKvCache.forCudaGraph(d, null, 2, 16)) {
      DecodePlan a = dec.plan(t1, QO_HEADS, KV_HEADS, DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.defaults(), stream);
      assertTrue(a.usesWorkspace());
      DecodePlan b = dec.plan(t2, QO_HEADS, KV_HEADS, DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.defaults(), stream);
      assertSuperseded(() -> dec.run(a, q, cache, out, null, stream));
      dec.run(b, q, cache, out, null, stream);
      dec.run(q, cache, out, null, stream);  // the convenience run: the latest plan, b
      stream.synchronize();
    }
  }

  @Test
  void splitPrefillPlansAreSupersededByTheNextSplitPlan() {
    Device d = Device.cuda(0);
    int[] qo = new int[GpuPrefillSplitTest.QO.length + 1];
    int[] kv = new int[GpuPrefillSplitTest.KV.length + 1];
    for (int b = 0; b < GpuPrefillSplitTest.QO.length; b++) {
      qo[b + 1] = qo[b] + GpuPrefillSplitTest.QO[b];
      kv[b + 1] = kv[b] + GpuPrefillSplitTest.KV[b];
    }
    int nnzQo = qo[qo.length - 1];
    int nnzKv = kv[kv.length - 1];
    int hq = 32;
    int hkv = 8;
    try (Stream stream = Stream.create(d);
        Tensor q = Tensor.empty(d, DTYPE, nnzQo, hq, DIM);
        Tensor k = Tensor.empty(d, DTYPE, nnzKv, hkv, DIM);
        Tensor out = Tensor.empty(d, DTYPE, nnzQo, hq, DIM);
        BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(d, KvLayout.NHD, null)) {
      q.fillUniform(1, 1f, stream);
      k.fillUniform(2, 1f, stream);
      PrefillPlan a = ragged.plan(qo, kv, hq, hkv, DIM, DTYPE, AttentionMask.causal(), AttentionOptions.defaults(),
          stream);
      assertTrue(a.usesWorkspace() && a.numWorkItems() > 0, a.toString());
      ragged.run(a, q, k, k, out, null, stream);
      PrefillPlan b = ragged.plan(qo, kv, hq, hkv, DIM, DTYPE, AttentionMask.none(), AttentionOptions.defaults(),
          stream);
      assertTrue(b.usesWorkspace());
      assertFalse(a.isValid());
      assertSuperseded(() -> ragged.run(a, q, k, k, out, null, stream));
      ragged.run(b, q, k, k, out, null, stream);
      stream.synchronize();
      a.close();
      b.close();
    }
  }
}
