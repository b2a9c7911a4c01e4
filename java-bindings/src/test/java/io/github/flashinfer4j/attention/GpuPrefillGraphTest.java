package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CUDA-graph capture of prefill (issue 4: "CUDA-graph capturable in the same way" as decode): after plan() on a
 * created stream, {@link BatchPrefillWithPagedKvCache#run} and {@link BatchPrefillWithRaggedKvCache#run} are
 * captured; each replay, before and after new q/K/V contents are written into the same tensors (same shapes, same
 * page table), equals a direct run bit for bit, and the first also matches the CPU reference. Causal, no mask and
 * a custom (draft-tree) mask, with 64-row and 256-row query tiles. {@link SinglePrefill} is capturable without a
 * custom mask; with one it stages the mask per call and cannot be captured (a clear failure, the stream still
 * usable after it).
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuPrefillGraphTest {
  private static final int HQ = 32;
  private static final int HKV = 8;
  private static final int D = 128;
  private static final int PAGE = 16;
  private static final DType DT = DType.BF16;

  // long rows (256-row tiles): a decode-like request, a chunk, a prompt and a draft tree
  static final int[] LONG_QO = {1, 37, 130, 14};
  static final int[] LONG_KV = {200, 37, 300, 51};
  // short rows (every request fits one 64-row tile)
  static final int[] SHORT_QO = {1, 2, 1, 2};
  static final int[] SHORT_KV = {17, 300, 1, 64};

  static List<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (String mask : new String[] {"causal", "none", "tree"}) {
      out.add(Arguments.of("long", mask));
      out.add(Arguments.of("short", mask));
    }
    return out;
  }

  static int[] qo(String rows) {
    return rows.equals("long") ? LONG_QO : SHORT_QO;
  }

  static int[] kv(String rows) {
    return rows.equals("long") ? LONG_KV : SHORT_KV;
  }

  static int[] indptr(int[] lens) {
    int[] p = new int[lens.length + 1];
    for (int b = 0; b < lens.length; b++) {
      p[b + 1] = p[b] + lens[b];
    }
    return p;
  }

  /** causal, none, or a random draft tree per request (Masks.tree over the request's kv - qo prefix). */
  static AttentionMask mask(String kind, int[] qo, int[] kv) {
    if (kind.equals("causal")) {
      return AttentionMask.causal();
    }
    if (kind.equals("none")) {
      return AttentionMask.none();
    }
    Random rnd = new Random(7);
    List<boolean[]> parts = new ArrayList<>();
    int total = 0;
    for (int b = 0; b < qo.length; b++) {
      int[] parents = new int[qo[b]];
      for (int i = 0; i < parents.length; i++) {
        parents[i] = rnd.nextInt(i + 1) - 1;
      }
      boolean[] m = Masks.tree(kv[b] - qo[b], parents);
      parts.add(m);
      total += m.length;
    }
    boolean[] all = new boolean[total];
    int at = 0;
    for (boolean[] m : parts) {
      System.arraycopy(m, 0, all, at, m.length);
      at += m.length;
    }
    return AttentionMask.custom(all);
  }

  @ParameterizedTest(name = "paged {0} {1}")
  @MethodSource("cases")
  void pagedReplayEqualsDirectRunForNewContents(String rows, String maskKind) {
    Device d = Device.cuda(0);
    int[] qo = qo(rows);
    int[] kv = kv(rows);
    int[] qoIndptr = indptr(qo);
    int nnzQo = qoIndptr[qo.length];
    // scattered pages with spares: page ids in reverse order
    int[] pageIndptr = new int[kv.length + 1];
    int[] last = new int[kv.length];
    for (int b = 0; b < kv.length; b++) {
      int n = (kv[b] + PAGE - 1) / PAGE;
      pageIndptr[b + 1] = pageIndptr[b] + n;
      last[b] = kv[b] - PAGE * (n - 1);
    }
    int numPages = pageIndptr[kv.length] + 3;
    int[] indices = new int[pageIndptr[kv.length]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = numPages - 1 - i;
    }
    AttentionMask mask = mask(maskKind, qo, kv);
    try (Stream s = Stream.create(d);
        PageTable table = PageTable.of(d, PAGE, pageIndptr, indices, last);
        PagedKvCache cache = PagedKvCache.allocate(d, DT, KvLayout.NHD, numPages, PAGE, HKV, D);
        Tensor q = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor out = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor lse = Tensor.empty(d, DType.F32, nnzQo, HQ);
        Tensor directOut = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor directLse = Tensor.empty(d, DType.F32, nnzQo, HQ);
        BatchPrefillWithPagedKvCache prefill = new BatchPrefillWithPagedKvCache(d)) {
      fill(s, 1, q, cache.k(), cache.v());
      prefill.plan(qoIndptr, table, HQ, HKV, D, DT, mask, AttentionOptions.defaults(), s);
      try (CudaGraph graph = CudaGraph.capture(s, () -> prefill.run(q, cache, out, lse, s))) {
        short[] previous = null;
        for (int round = 0; round < 3; round++) {
          if (round > 0) {
            fill(s, 1 + 10 * round, q, cache.k(), cache.v());  // new contents, same tensors and page table
          }
          short[][] replayed = replayAndDirect(s, graph, () -> prefill.run(q, cache, directOut, directLse, s),
              out, lse, directOut, directLse, "paged " + rows + " " + maskKind + " round " + round);
          if (round == 0) {
            try (Tensor cq = q.to(Device.cpu());
                Tensor ck = cache.k().to(Device.cpu());
                Tensor cv = cache.v().to(Device.cpu());
                PagedKvCache cc = PagedKvCache.of(ck, cv, KvLayout.NHD);
                PageTable ct = PageTable.of(Device.cpu(), PAGE, pageIndptr, indices, last);
                Tensor co = Tensor.empty(Device.cpu(), DT, nnzQo, HQ, D);
                Tensor cl = Tensor.empty(Device.cpu(), DType.F32, nnzQo, HQ);
                BatchPrefillWithPagedKvCache cpu = new BatchPrefillWithPagedKvCache(Device.cpu())) {
              cpu.plan(qoIndptr, ct, HQ, HKV, D, DT, mask);
              cpu.run(cq, cc, co, cl);
              Assertions2.assertClose(co.toFloatArray(), out.toFloatArray(), Assertions2.tolerance(DT),
                  "replay vs CPU reference");
              Assertions2.assertClose(cl.toFloatArray(), lse.toFloatArray(), 1e-3, "replay lse vs CPU reference");
            }
          } else {
            assertFalse(Arrays.equals(previous, replayed[0]), "the replay read the new contents");
          }
          previous = replayed[0];
        }
      }
    }
  }

  @ParameterizedTest(name = "ragged {0} {1}")
  @MethodSource("cases")
  void raggedReplayEqualsDirectRunForNewContents(String rows, String maskKind) {
    Device d = Device.cuda(0);
    int[] qo = qo(rows);
    int[] kv = kv(rows);
    int[] qoIndptr = indptr(qo);
    int[] kvIndptr = indptr(kv);
    int nnzQo = qoIndptr[qo.length];
    int nnzKv = kvIndptr[kv.length];
    AttentionMask mask = mask(maskKind, qo, kv);
    try (Stream s = Stream.create(d);
        Tensor q = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor k = Tensor.empty(d, DT, nnzKv, HKV, D);
        Tensor v = Tensor.empty(d, DT, nnzKv, HKV, D);
        Tensor out = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor lse = Tensor.empty(d, DType.F32, nnzQo, HQ);
        Tensor directOut = Tensor.empty(d, DT, nnzQo, HQ, D);
        Tensor directLse = Tensor.empty(d, DType.F32, nnzQo, HQ);
        BatchPrefillWithRaggedKvCache prefill = new BatchPrefillWithRaggedKvCache(d)) {
      fill(s, 2, q, k, v);
      prefill.plan(qoIndptr, kvIndptr, HQ, HKV, D, DT, mask, AttentionOptions.defaults(), s);
      try (CudaGraph graph = CudaGraph.capture(s, () -> prefill.run(q, k, v, out, lse, s))) {
        short[] previous = null;
        for (int round = 0; round < 3; round++) {
          if (round > 0) {
            fill(s, 2 + 10 * round, q, k, v);
          }
          short[][] replayed = replayAndDirect(s, graph, () -> prefill.run(q, k, v, directOut, directLse, s),
              out, lse, directOut, directLse, "ragged " + rows + " " + maskKind + " round " + round);
          if (round == 0) {
            try (Tensor cq = q.to(Device.cpu());
                Tensor ck = k.to(Device.cpu());
                Tensor cv = v.to(Device.cpu());
                Tensor co = Tensor.empty(Device.cpu(), DT, nnzQo, HQ, D);
                Tensor cl = Tensor.empty(Device.cpu(), DType.F32, nnzQo, HQ);
                BatchPrefillWithRaggedKvCache cpu = new BatchPrefillWithRaggedKvCache(Device.cpu())) {
              cpu.plan(qoIndptr, kvIndptr, HQ, HKV, D, DT, mask);
              cpu.run(cq, ck, cv, co, cl);
              Assertions2.assertClose(co.toFloatArray(), out.toFloatArray(), Assertions2.tolerance(DT),
                  "replay vs CPU reference");
              Assertions2.assertClose(cl.toFloatArray(), lse.toFloatArray(), 1e-3, "replay lse vs CPU reference");
            }
          } else {
            assertFalse(Arrays.equals(previous, replayed[0]), "the replay read the new contents");
          }
          previous = replayed[0];
        }
      }
    }
  }

  @Test
  void singlePrefillIsCapturableWithoutACustomMask() {
    Device d = Device.cuda(0);
    int qoLen = 40;
    int kvLen = 90;
    try (Stream s = Stream.create(d);
        Tensor q = Tensor.empty(d, DT, qoLen, HQ, D);
        Tensor k = Tensor.empty(d, DT, kvLen, HKV, D);
        Tensor v = Tensor.empty(d, DT, kvLen, HKV, D);
        Tensor out = Tensor.empty(d, DT, qoLen, HQ, D);
        Tensor lse = Tensor.empty(d, DType.F32, qoLen, HQ);
        Tensor directOut = Tensor.empty(d, DT, qoLen, HQ, D);
        Tensor directLse = Tensor.empty(d, DType.F32, qoLen, HQ)) {
      fill(s, 3, q, k, v);
      AttentionOptions opt = AttentionOptions.defaults();
      // a custom mask is packed and staged into device memory per call, then waited for: not capturable, refused
      // before any CUDA call (the capture stays valid and ends empty)
      AttentionMask tree = AttentionMask.custom(Masks.tree(kvLen - qoLen, chain(qoLen)));
      UnsupportedConfigurationException refused = assertThrows(UnsupportedConfigurationException.class,
          () -> CudaGraph.capture(s, () -> SinglePrefill.run(q, k, v, out, lse, KvLayout.NHD, tree, opt, s)).close());
      assertTrue(refused.getMessage().contains("cannot be captured"), refused.getMessage());
      // the stream is usable afterwards, and the causal call captures
      try (CudaGraph graph = CudaGraph.capture(s,
          () -> SinglePrefill.run(q, k, v, out, lse, KvLayout.NHD, AttentionMask.causal(), opt, s))) {
        short[] previous = null;
        for (int round = 0; round < 2; round++) {
          if (round > 0) {
            fill(s, 13, q, k, v);
          }
          short[][] replayed = replayAndDirect(s, graph,
              () -> SinglePrefill.run(q, k, v, directOut, directLse, KvLayout.NHD, AttentionMask.causal(), opt, s),
              out, lse, directOut, directLse, "single causal round " + round);
          if (previous != null) {
            assertFalse(Arrays.equals(previous, replayed[0]), "the replay read the new contents");
          }
          previous = replayed[0];
        }
      }
    }
  }

  /** A draft chain (each node the child of the previous one): the tree mask is then causal. */
  private static int[] chain(int n) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i - 1;
    }
    return p;
  }

  /**
   * Replays the graph into (out, lse) and runs {@code direct} into (directOut, directLse), both poisoned first;
   * asserts bit-identical results and returns the replay's {out bits}.
   */
  private static short[][] replayAndDirect(Stream s, CudaGraph graph, Runnable direct, Tensor out, Tensor lse,
      Tensor directOut, Tensor directLse, String what) {
    for (Tensor t : new Tensor[] {out, lse, directOut, directLse}) {
      t.fillBytes(0xff);
    }
    graph.replay(s);
    direct.run();
    s.synchronize();
    short[] replayed = out.toBits();
    assertArrayEquals(directOut.toBits(), replayed, what + ": replay vs direct run");
    assertArrayEquals(directLse.toFloatArray(), lse.toFloatArray(), what + ": replay lse vs direct run");
    for (float x : out.toFloatArray()) {
      assertFalse(Float.isNaN(x), what + ": NaN (an unwritten output) in the replay");
    }
    return new short[][] {replayed};
  }

  private static void fill(Stream s, long seed, Tensor... ts) {
    for (int i = 0; i < ts.length; i++) {
      ts[i].fillUniform(seed * 31 + i, 1f, s);
    }
    s.synchronize();
  }
}
