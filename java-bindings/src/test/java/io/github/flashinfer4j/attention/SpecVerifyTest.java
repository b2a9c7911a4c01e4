package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.Gpu;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Speculative-decoding verification (issue 4): draft trees of the shapes EAGLE- and Medusa-style drafters produce,
 * for three requests of one batch, verified in ONE {@link BatchPrefillWithPagedKvCache} call through
 * {@link Masks#tree} masks packed with {@link Masks#segmentPackbits}. Checks the defining property, node by node:
 * the output (and LSE) of draft node i equals ordinary attention of its query over the linear sequence
 * [prefix..., ancestors of i..., i] ({@link SingleDecode} over exactly that path); and that a node sees neither
 * its siblings nor any other non-ancestor: perturbing one node's K/V changes exactly the rows of that node and its
 * descendants, every other row staying bit-for-bit the same. On the CPU backend, and on CUDA when present.
 */
class SpecVerifyTest {
  private static final int PAGE = 16;
  private static final int HQ = 32;
  private static final int HKV = 8;
  private static final int D = 128;
  private static final DType DT = DType.BF16;

  /**
   * EAGLE-style tree (14 nodes): node 0 is the token the target sampled last step (not yet in the cache), its
   * children 1-3 the drafter's top-3 guesses for the next position, then 2-3 and 1-2 guesses below those.
   * <pre>
   *   prefix ... ── 0 ─┬─ 1 ─┬─ 4 ─┬─ 10
   *                    │     │     └─ 11
   *                    │     ├─ 5 ─── 12
   *                    │     └─ 6
   *                    ├─ 2 ─┬─ 7 ─── 13
   *                    │     └─ 8
   *                    └─ 3 ─── 9
   * </pre>
   */
  static final int[] EAGLE = {-1, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 5, 7};

  /**
   * Medusa-style tree (11 nodes): the top-3 candidates for the next position are children of the last committed
   * token (three roots, parent -1), with 2, 2 and 1 candidates for the position after and a third level.
   * <pre>
   *   prefix ... ─┬─ 0 ─┬─ 3 ─┬─ 8
   *               │     │     └─ 9
   *               │     └─ 4
   *               ├─ 1 ─┬─ 5 ─── 10
   *               │     └─ 6
   *               └─ 2 ─── 7
   * </pre>
   */
  static final int[] MEDUSA = {-1, -1, -1, 0, 0, 1, 1, 2, 3, 3, 5};

  // request 0: drafts at positions 37..50 cross the page boundary at 48; request 1: drafts 9..19 cross 16;
  // request 2: a 130-token prefix over 9 pages, the last page exactly full (144 = 9 x 16)
  static final int[] PREFIX = {37, 9, 130};
  static final int[][] TREES = {EAGLE, MEDUSA, EAGLE};

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** The batch on one device: a paged cache over scattered pages holding prefix + drafts, and the queries. */
  private static final class Batch implements AutoCloseable {
    final Device device;
    final int batch = PREFIX.length;
    final int[] kvLens = new int[batch];
    final int[] qoIndptr = new int[batch + 1];
    final float[][] k = new float[batch][];   // [kvLen, HKV, D] per request
    final float[][] v = new float[batch][];
    final float[] q;                          // [nnzQo, HQ, D]
    final PageTable table;
    final PagedKvCache cache;
    final Tensor qT;
    final Tensor out;
    final Tensor lse;

    Batch(Device device, long seed) {
      this.device = device;
      Random rnd = new Random(seed);
      int pages = 0;
      for (int b = 0; b < batch; b++) {
        kvLens[b] = PREFIX[b] + TREES[b].length;
        qoIndptr[b + 1] = qoIndptr[b] + TREES[b].length;
        pages += (kvLens[b] + PAGE - 1) / PAGE;
        k[b] = gaussian(rnd, kvLens[b] * HKV * D, 1f);
        v[b] = gaussian(rnd, kvLens[b] * HKV * D, 1f);
      }
      // pages in a shuffled order, with spare pages, as a serving engine's allocator leaves them
      int numPages = pages + 5;
      List<Integer> ids = new ArrayList<>();
      for (int i = 0; i < numPages; i++) {
        ids.add(i);
      }
      java.util.Collections.shuffle(ids, rnd);
      int[] indptr = new int[batch + 1];
      int[] indices = new int[pages];
      int[] last = new int[batch];
      for (int b = 0; b < batch; b++) {
        int n = (kvLens[b] + PAGE - 1) / PAGE;
        indptr[b + 1] = indptr[b] + n;
        for (int p = 0; p < n; p++) {
          indices[indptr[b] + p] = ids.get(indptr[b] + p);
        }
        last[b] = kvLens[b] - PAGE * (n - 1);
      }
      q = gaussian(rnd, qoIndptr[batch] * HQ * D, 2f);  // sharp attention: a leaked key shows
      PageTable t = null;
      PagedKvCache c = null;
      Tensor qq = null;
      Tensor o = null;
      try {
        t = PageTable.of(device, PAGE, indptr, indices, last);
        c = PagedKvCache.allocate(device, DT, KvLayout.NHD, numPages, PAGE, HKV, D);
        c.k().fillUniform(seed + 1, 100f, null);  // garbage in unused slots and spare pages
        c.v().fillUniform(seed + 2, 100f, null);
        for (int b = 0; b < batch; b++) {
          int[] bi = new int[kvLens[b]];
          int[] pos = new int[kvLens[b]];
          Arrays.fill(bi, b);
          for (int i = 0; i < pos.length; i++) {
            pos[i] = i;
          }
          try (Tensor kk = Tensor.fromFloats(device, DT, k[b], kvLens[b], HKV, D);
              Tensor vv = Tensor.fromFloats(device, DT, v[b], kvLens[b], HKV, D)) {
            PagedKv.append(kk, vv, bi, pos, c, t);
          }
        }
        qq = Tensor.fromFloats(device, DT, q, qoIndptr[batch], HQ, D);
        o = Tensor.empty(device, DT, qoIndptr[batch], HQ, D);
        this.lse = Tensor.empty(device, DType.F32, qoIndptr[batch], HQ);
      } catch (RuntimeException e) {
        for (AutoCloseable r : new AutoCloseable[] {o, qq, c, t}) {
          closeQuietly(r);
        }
        throw e;
      }
      this.table = t;
      this.cache = c;
      this.qT = qq;
      this.out = o;
    }

    /** The tree masks of the batch, concatenated, and each request's element offsets. */
    boolean[] mask(int[] elementIndptr) {
      List<boolean[]> parts = new ArrayList<>();
      for (int b = 0; b < batch; b++) {
        boolean[] m = Masks.tree(PREFIX[b], TREES[b]);
        elementIndptr[b + 1] = elementIndptr[b] + m.length;
        parts.add(m);
      }
      boolean[] all = new boolean[elementIndptr[batch]];
      for (int b = 0; b < batch; b++) {
        System.arraycopy(parts.get(b), 0, all, elementIndptr[b], parts.get(b).length);
      }
      return all;
    }

    /** One verification call; returns {out bits as ints, lse}. */
    Object[] verify(BatchPrefillWithPagedKvCache prefill) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      prefill.run(qT, cache, out, lse);
      device.synchronize();
      return new Object[] {out.toBits(), lse.toFloatArray()};
    }

    /** Overwrites the K/V of draft node {@code node} of request b, in the cache and in the host copy. */
    void perturb(int b, int node, long seed) {
      int pos = PREFIX[b] + node;
      float[] nk = gaussian(new Random(seed), HKV * D, 1f);
      float[] nv = gaussian(new Random(seed + 1), HKV * D, 1f);
      System.arraycopy(nk, 0, k[b], pos * HKV * D, HKV * D);
      System.arraycopy(nv, 0, v[b], pos * HKV * D, HKV * D);
      try (Tensor kk = Tensor.fromFloats(device, DT, nk, 1, HKV, D);
          Tensor vv = Tensor.fromFloats(device, DT, nv, 1, HKV, D)) {
        PagedKv.append(kk, vv, new int[] {b}, new int[] {pos}, cache, table);
      }
    }

    @Override
    public void close() {
      for (AutoCloseable r : new AutoCloseable[] {lse, out, qT, cache, table}) {
        closeQuietly(r);
      }
    }
  }

  /** The root-first path of tree positions (indices into the request's keys) that node i attends to. */
  static int[] path(int prefixLen, int[] parents, int i) {
    List<Integer> drafts = new ArrayList<>();
    for (int a = i; a >= 0; a = parents[a]) {
      drafts.add(0, a);
    }
    int[] p = new int[prefixLen + drafts.size()];
    for (int j = 0; j < prefixLen; j++) {
      p[j] = j;
    }
    for (int j = 0; j < drafts.size(); j++) {
      p[prefixLen + j] = prefixLen + drafts.get(j);
    }
    return p;
  }

  static boolean isDescendantOrSelf(int[] parents, int node, int of) {
    for (int a = node; a >= 0; a = parents[a]) {
      if (a == of) {
        return true;
      }
    }
    return false;
  }

  @ParameterizedTest
  @MethodSource("devices")
  void eachDraftNodeEqualsCausalAttentionOverItsPath(Device device) {
    try (Batch batch = new Batch(device, 11);
        BatchPrefillWithPagedKvCache prefill = new BatchPrefillWithPagedKvCache(device)) {
      int[] elements = new int[batch.batch + 1];
      boolean[] mask = batch.mask(elements);
      prefill.plan(batch.qoIndptr, batch.table, HQ, HKV, D, DT,
          AttentionMask.packed(Masks.segmentPackbits(mask, elements)));
      Object[] packed = batch.verify(prefill);
      float[] got = toFloats((short[]) packed[0]);
      float[] gotLse = (float[]) packed[1];

      // the unpacked form of the same mask gives the same bits
      prefill.plan(batch.qoIndptr, batch.table, HQ, HKV, D, DT, AttentionMask.custom(mask));
      Object[] unpacked = batch.verify(prefill);
      assertArrayEquals((short[]) packed[0], (short[]) unpacked[0], "packed and unpacked tree masks");
      assertArrayEquals(gotLse, (float[]) unpacked[1]);

      double tol = Assertions2.tolerance(DT);
      int row = HQ * D;
      for (int b = 0; b < batch.batch; b++) {
        int[] parents = TREES[b];
        for (int i = 0; i < parents.length; i++) {
          int r = batch.qoIndptr[b] + i;
          float[][] ref = pathAttention(device, batch, b, path(PREFIX[b], parents, i), r);
          String what = device + " request " + b + " node " + i + " (path " + pathString(parents, i) + ")";
          Assertions2.assertClose(ref[0], Arrays.copyOfRange(got, r * row, (r + 1) * row), tol, what + " out");
          Assertions2.assertClose(ref[1], Arrays.copyOfRange(gotLse, r * HQ, (r + 1) * HQ), 1e-3, what + " lse");
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void perturbingANodeChangesOnlyItsSubtree(Device device) {
    // request 0: node 2 (siblings 1 and 3 and their subtrees must not move); node 4 (a second-level node, whose
    // siblings 5, 6 and cousins must not move); request 1: root 1 of the Medusa tree (other roots 0 and 2)
    int[][] perturbations = {{0, 2}, {0, 4}, {1, 1}, {2, 13}};
    try (Batch batch = new Batch(device, 12);
        BatchPrefillWithPagedKvCache prefill = new BatchPrefillWithPagedKvCache(device)) {
      int[] elements = new int[batch.batch + 1];
      prefill.plan(batch.qoIndptr, batch.table, HQ, HKV, D, DT,
          AttentionMask.packed(Masks.segmentPackbits(batch.mask(elements), elements)));
      Object[] before = batch.verify(prefill);
      int row = HQ * D;
      for (int[] pt : perturbations) {
        int pb = pt[0];
        int node = pt[1];
        batch.perturb(pb, node, 1000 + 7L * pb + node);
        Object[] after = batch.verify(prefill);
        short[] o0 = (short[]) before[0];
        short[] o1 = (short[]) after[0];
        float[] l0 = (float[]) before[1];
        float[] l1 = (float[]) after[1];
        int changedRows = 0;
        for (int b = 0; b < batch.batch; b++) {
          for (int i = 0; i < TREES[b].length; i++) {
            int r = batch.qoIndptr[b] + i;
            short[] a0 = Arrays.copyOfRange(o0, r * row, (r + 1) * row);
            short[] a1 = Arrays.copyOfRange(o1, r * row, (r + 1) * row);
            float[] s0 = Arrays.copyOfRange(l0, r * HQ, (r + 1) * HQ);
            float[] s1 = Arrays.copyOfRange(l1, r * HQ, (r + 1) * HQ);
            String what = device + ": K/V of request " + pb + " node " + node + " perturbed, request " + b
                + " node " + i;
            if (b == pb && isDescendantOrSelf(TREES[b], i, node)) {
              changedRows++;
              assertTrue(!Arrays.equals(a0, a1) && !Arrays.equals(s0, s1), what + " (in the subtree) must change");
            } else {
              assertArrayEquals(a0, a1, what + " (outside the subtree) must stay bit-for-bit");
              assertArrayEquals(s0, s1, what + " lse");
            }
          }
        }
        assertTrue(changedRows >= 1);
        before = after;
      }
      // and the perturbed batch still satisfies the path property for the perturbed subtrees
      float[] got = toFloats((short[]) before[0]);
      for (int[] pt : perturbations) {
        int b = pt[0];
        for (int i = 0; i < TREES[b].length; i++) {
          if (isDescendantOrSelf(TREES[b], i, pt[1])) {
            int r = batch.qoIndptr[b] + i;
            float[][] ref = pathAttention(device, batch, b, path(PREFIX[b], TREES[b], i), r);
            Assertions2.assertClose(ref[0], Arrays.copyOfRange(got, r * row, (r + 1) * row),
                Assertions2.tolerance(DT), device + " perturbed request " + b + " node " + i);
          }
        }
      }
    }
  }

  @Test
  void treeMaskRowsMatchTheHandWrittenTree() {
    // the mask of the EAGLE tree for a 2-token prefix, row by row: prefix, then ancestors and self
    boolean[] m = Masks.tree(2, EAGLE);
    int kv = 2 + EAGLE.length;
    String[] expected = {
      "11" + "10000000000000",
      "11" + "11000000000000",
      "11" + "10100000000000",
      "11" + "10010000000000",
      "11" + "11001000000000",
      "11" + "11000100000000",
      "11" + "11000010000000",
      "11" + "10100001000000",
      "11" + "10100000100000",
      "11" + "10010000010000",
      "11" + "11001000001000",
      "11" + "11001000000100",
      "11" + "11000100000010",
      "11" + "10100001000001",
    };
    for (int i = 0; i < EAGLE.length; i++) {
      StringBuilder s = new StringBuilder();
      for (int j = 0; j < kv; j++) {
        s.append(m[i * kv + j] ? '1' : '0');
      }
      assertEquals(expected[i], s.toString(), "row " + i);
    }
  }

  /**
   * Ordinary attention of query row r (of request b) over the keys at {@code path}, laid out as a plain linear
   * sequence: a single decode step whose KV is exactly that path. Returns {out, lse}.
   */
  private static float[][] pathAttention(Device device, Batch batch, int b, int[] path, int r) {
    int n = path.length;
    float[] pk = new float[n * HKV * D];
    float[] pv = new float[n * HKV * D];
    for (int j = 0; j < n; j++) {
      System.arraycopy(batch.k[b], path[j] * HKV * D, pk, j * HKV * D, HKV * D);
      System.arraycopy(batch.v[b], path[j] * HKV * D, pv, j * HKV * D, HKV * D);
    }
    try (Tensor q = Tensor.fromFloats(device, DT, Arrays.copyOfRange(batch.q, r * HQ * D, (r + 1) * HQ * D), HQ, D);
        Tensor k = Tensor.fromFloats(device, DT, pk, n, HKV, D);
        Tensor v = Tensor.fromFloats(device, DT, pv, n, HKV, D);
        Tensor out = Tensor.empty(device, DT, HQ, D);
        Tensor lse = Tensor.empty(device, DType.F32, HQ)) {
      out.fillBytes(0xff);
      SingleDecode.run(q, k, v, out, lse, KvLayout.NHD);
      device.synchronize();
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  private static String pathString(int[] parents, int i) {
    StringBuilder s = new StringBuilder("prefix");
    List<Integer> drafts = new ArrayList<>();
    for (int a = i; a >= 0; a = parents[a]) {
      drafts.add(0, a);
    }
    for (int a : drafts) {
      s.append(" > ").append(a);
    }
    return s.toString();
  }

  private static float[] toFloats(short[] bf16) {
    float[] f = new float[bf16.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = Float.intBitsToFloat((bf16[i] & 0xffff) << 16);
    }
    return f;
  }

  private static float[] gaussian(Random rnd, int n, float scale) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian() * scale;
    }
    return a;
  }

  private static void closeQuietly(AutoCloseable r) {
    if (r != null) {
      try {
        r.close();
      } catch (Exception ignored) {
        // closing test resources; the test's own failure is the one to report
      }
    }
  }
}
