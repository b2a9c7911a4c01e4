package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU prefill reference against a float64 implementation in the test (PrefillProblem), over a sweep with the
 * edges: query lengths 1..300 mixed in one batch, kv_len < qo_len (rows that see nothing), empty requests on
 * either side, page size 1, GQA groups 1..16, NHD/HND, ragged (also strided views) and paged (separate and
 * combined), every mask kind and every variant option.
 */
class PrefillSweepTest {
  // qo 1..300 mixed; request 3 has kv < qo (causal: its first rows see nothing), request 5 has no keys,
  // request 2 no queries
  static final int[] MIXED_QO = {1, 300, 0, 17, 64, 5, 129, 3};
  static final int[] MIXED_KV = {1, 310, 40, 9, 100, 0, 129, 1};
  // qo <= kv everywhere (tree masks need it), with an empty request
  static final int[] TREE_QO = {1, 6, 0, 15, 4};
  static final int[] TREE_KV = {3, 50, 7, 15, 33};

  static List<Arguments> problems() {
    List<Arguments> out = new ArrayList<>();
    long seed = 1;
    int[][] heads = {{2, 2}, {4, 2}, {6, 2}, {8, 2}, {5, 1}, {8, 1}, {16, 1}};
    int[] pageSizes = {1, 3, 16};
    String[] masks = {"causal", "none", "random"};
    PrefillProblem.Storage[] storages = PrefillProblem.Storage.values();
    for (int hi = 0; hi < heads.length; hi++) {
      for (int mi = 0; mi < masks.length; mi++) {
        int i = hi * masks.length + mi;
        // independent cycles, so that every storage meets both layouts, several head dims and page size 1
        DType dt = i % 2 == 0 ? DType.BF16 : DType.F16;
        KvLayout layout = (i / 4) % 2 == 0 ? KvLayout.NHD : KvLayout.HND;
        PrefillProblem.Storage storage = storages[i % storages.length];
        int dim = new int[] {64, 128, 32, 256}[(i / 3) % 4];
        int page = pageSizes[(i / 4) % pageSizes.length];
        out.add(Arguments.of(new PrefillProblem(seed++, dt, layout, storage, page, heads[hi][0], heads[hi][1], dim,
            MIXED_QO, MIXED_KV, masks[mi]), AttentionOptions.defaults()));
      }
    }
    // every variant option, on a causal, a non-causal and a custom-mask problem
    AttentionOptions[] variants = {
      AttentionOptions.builder().logitsSoftCap(30).build(),
      AttentionOptions.builder().windowLeft(0).build(),
      AttentionOptions.builder().windowLeft(7).build(),
      AttentionOptions.builder().smScale(0.3f).logitsSoftCap(5).windowLeft(20).build(),
      AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build(),
      AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).ropeScale(2).ropeTheta(5e5f).windowLeft(33)
          .build(),
    };
    String[] variantMasks = {"causal", "none", "random"};
    for (int m = 0; m < variantMasks.length; m++) {
      PrefillProblem.Storage storage = m == 1 ? PrefillProblem.Storage.PAGED : PrefillProblem.Storage.RAGGED;
      PrefillProblem base = new PrefillProblem(100 + m, DType.BF16, m == 2 ? KvLayout.HND : KvLayout.NHD, storage, 4,
          8, 2, 64, MIXED_QO, MIXED_KV, variantMasks[m]);
      for (AttentionOptions v : variants) {
        out.add(Arguments.of(base, v));
      }
    }
    // speculative-decoding tree masks (random trees), ragged and paged, with and without window / RoPE
    out.add(Arguments.of(new PrefillProblem(200, DType.F16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 16, 32, 8,
        128, TREE_QO, TREE_KV, "tree"), AttentionOptions.defaults()));
    out.add(Arguments.of(new PrefillProblem(201, DType.BF16, KvLayout.HND, PrefillProblem.Storage.RAGGED, 0, 12, 4,
        64, TREE_QO, TREE_KV, "tree"), AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build()));
    out.add(Arguments.of(new PrefillProblem(202, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.PAGED_COMBINED, 1,
        4, 4, 64, TREE_QO, TREE_KV, "tree"), AttentionOptions.builder().windowLeft(10).build()));
    return out;
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("problems")
  void cpuMatchesFloat64(PrefillProblem p, AttentionOptions opt) {
    double[][] ref = p.reference(opt);
    float[][] got = p.run(Device.cpu(), opt);
    Assertions2.assertClose(ref[0], got[0], Assertions2.tolerance(p.dtype), p + " " + opt + " out");
    Assertions2.assertClose(ref[1], got[1], 1e-3, p + " " + opt + " lse");
  }

  @Test
  void rowsThatSeeNothingGiveZeroAndMinusInfinity() {
    // request 0: qo 5 > kv 2, causal: rows 0..2 see nothing; request 1: no keys at all
    PrefillProblem p = new PrefillProblem(7, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 2, 4, 2, 64,
        new int[] {5, 3}, new int[] {2, 0}, "causal");
    float[][] got = p.run(Device.cpu(), AttentionOptions.defaults());
    for (int row : new int[] {0, 1, 2, 5, 6, 7}) {
      for (int h = 0; h < 4; h++) {
        assertEquals(Float.NEGATIVE_INFINITY, got[1][row * 4 + h], "lse row " + row);
        for (int d = 0; d < 64; d++) {
          assertEquals(0f, got[0][(row * 4 + h) * 64 + d], "out row " + row);
        }
      }
    }
    assertTrue(Float.isFinite(got[1][3 * 4]), "row 3 sees key 0");
  }

  @Test
  void emptyBatchAndNoQueries() {
    PrefillProblem empty = new PrefillProblem(8, DType.F16, KvLayout.NHD, PrefillProblem.Storage.RAGGED, 0, 4, 4, 64,
        new int[0], new int[0], "causal");
    assertEquals(0, empty.run(Device.cpu(), AttentionOptions.defaults())[0].length);
    PrefillProblem noQueries = new PrefillProblem(9, DType.F16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 4, 4, 4,
        64, new int[] {0, 0}, new int[] {5, 0}, "random");
    assertEquals(0, noQueries.run(Device.cpu(), AttentionOptions.defaults())[1].length);
  }

  @Test
  void treeVerificationMirrorsADraftTree() {
    // A draft tree as speculative decoders build it (top-k expansion, 4 levels, 13 nodes): 0 is the next token
    // after the prefix; 1-3 its top-3 continuations; 4-5 follow 1, 6 follows 2, 7 follows 3; 8-9 follow 4, 10
    // follows 5, 11 follows 6; 12 follows 8.
    int[] parents = {-1, 0, 0, 0, 1, 1, 2, 3, 4, 4, 5, 6, 8};
    int n = parents.length;
    int[] prefixes = {37, 5, 120};
    int batch = prefixes.length;
    int hq = 16;
    int hkv = 4;
    int dim = 128;
    int[] qoLens = new int[batch];
    int[] kvLens = new int[batch];
    boolean[] mask = new boolean[0];
    for (int b = 0; b < batch; b++) {
      qoLens[b] = n;
      kvLens[b] = prefixes[b] + n;
      boolean[] t = Masks.tree(prefixes[b], parents);
      boolean[] joined = java.util.Arrays.copyOf(mask, mask.length + t.length);
      System.arraycopy(t, 0, joined, mask.length, t.length);
      mask = joined;
    }
    PrefillProblem p = new PrefillProblem(11, DType.BF16, KvLayout.NHD, PrefillProblem.Storage.PAGED, 16, hq, hkv,
        dim, qoLens, kvLens, "none");
    Device cpu = Device.cpu();
    AttentionMask tree = AttentionMask.custom(mask);
    float[] treeOut;
    float[] treeLse;
    int[] indptr = new int[batch + 1];
    int[] last = new int[batch];
    int pages = 0;
    for (int b = 0; b < batch; b++) {
      int np = (kvLens[b] + 15) / 16;
      indptr[b + 1] = indptr[b] + np;
      last[b] = kvLens[b] - (np - 1) * 16;
      pages += np;
    }
    // the draft tokens were appended to the cache after the prefix; verify all trees in one call
    try (PagedKvCache cache = PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, pages, 16, hkv, dim);
        PageTable table = PageTable.contiguous(cpu, 16, kvLens);
        Tensor k = Tensor.fromFloats(cpu, DType.BF16, p.keys, p.nnzKv(), hkv, dim);
        Tensor v = Tensor.fromFloats(cpu, DType.BF16, p.values, p.nnzKv(), hkv, dim);
        Tensor q = Tensor.fromFloats(cpu, DType.BF16, p.q, p.nnzQo(), hq, dim);
        Tensor out = Tensor.empty(cpu, DType.BF16, p.nnzQo(), hq, dim);
        Tensor lse = Tensor.empty(cpu, DType.F32, p.nnzQo(), hq);
        BatchPrefillWithPagedKvCache op = new BatchPrefillWithPagedKvCache(cpu)) {
      PagedKv.append(k, v, PagedKv.batchIndicesAndPositions(p.kvIndptr, kvLens), cache, table, null);
      out.fillBytes(0xff);
      op.plan(p.qoIndptr, table, hq, hkv, dim, DType.BF16, tree);
      op.run(q, cache, out, lse);
      treeOut = out.toFloatArray();
      treeLse = lse.toFloatArray();
    }
    // each node must see exactly what a plain decode of its own branch sees: the prefix, then its ancestors and
    // itself, in sequence order (a ragged batch of one query per node over the gathered branch)
    int rows = batch * n;
    int[] qoIndptr = new int[rows + 1];
    int[] kvIndptr = new int[rows + 1];
    List<float[]> branchKeys = new ArrayList<>();
    List<float[]> branchValues = new ArrayList<>();
    int tokenFloats = hkv * dim;
    for (int b = 0; b < batch; b++) {
      for (int i = 0; i < n; i++) {
        List<Integer> tokens = new ArrayList<>();
        for (int t = 0; t < prefixes[b]; t++) {
          tokens.add(t);
        }
        List<Integer> path = new ArrayList<>();
        for (int a = i; a >= 0; a = parents[a]) {
          path.add(0, prefixes[b] + a);
        }
        tokens.addAll(path);
        int r = b * n + i;
        qoIndptr[r + 1] = r + 1;
        kvIndptr[r + 1] = kvIndptr[r] + tokens.size();
        for (int t : tokens) {
          int src = (p.kvIndptr[b] + t) * tokenFloats;
          branchKeys.add(java.util.Arrays.copyOfRange(p.keys, src, src + tokenFloats));
          branchValues.add(java.util.Arrays.copyOfRange(p.values, src, src + tokenFloats));
        }
      }
    }
    float[] gk = concat(branchKeys);
    float[] gv = concat(branchValues);
    int nk = kvIndptr[rows];
    try (Tensor k = Tensor.fromFloats(cpu, DType.BF16, gk, nk, hkv, dim);
        Tensor v = Tensor.fromFloats(cpu, DType.BF16, gv, nk, hkv, dim);
        Tensor q = Tensor.fromFloats(cpu, DType.BF16, p.q, rows, hq, dim);
        Tensor out = Tensor.empty(cpu, DType.BF16, rows, hq, dim);
        Tensor lse = Tensor.empty(cpu, DType.F32, rows, hq);
        BatchPrefillWithRaggedKvCache op = new BatchPrefillWithRaggedKvCache(cpu)) {
      op.plan(qoIndptr, kvIndptr, hq, hkv, dim, DType.BF16, AttentionMask.none());
      op.run(q, k, v, out, lse);
      Assertions2.assertClose(out.toFloatArray(), treeOut, 1e-6, "tree rows vs their branches");
      Assertions2.assertClose(lse.toFloatArray(), treeLse, 1e-6, "tree LSE vs their branches");
    }
    double[][] ref = p.withMask(mask).reference(AttentionOptions.defaults());
    Assertions2.assertClose(ref[0], treeOut, 1e-2, "tree vs float64");
    Assertions2.assertClose(ref[1], treeLse, 1e-3, "tree LSE vs float64");
  }

  private static float[] concat(List<float[]> parts) {
    int total = 0;
    for (float[] a : parts) {
      total += a.length;
    }
    float[] out = new float[total];
    int at = 0;
    for (float[] a : parts) {
      System.arraycopy(a, 0, out, at, a.length);
      at += a.length;
    }
    return out;
  }

  @Test
  void singlePrefillMatchesBatchOfOne() {
    for (KvLayout layout : KvLayout.values()) {
      for (String m : new String[] {"causal", "random"}) {
        // qo 40 > kv 30: the first rows see nothing under the causal mask
        PrefillProblem p = new PrefillProblem(21, DType.F16, layout, PrefillProblem.Storage.RAGGED, 0, 8, 2, 128,
            new int[] {40}, new int[] {30}, m);
        AttentionOptions opt = AttentionOptions.builder().logitsSoftCap(20).windowLeft(25).build();
        double[][] ref = p.reference(opt);
        Device cpu = Device.cpu();
        boolean nhd = layout == KvLayout.NHD;
        try (Tensor q = Tensor.fromFloats(cpu, DType.F16, p.q, 40, 8, 128);
            Tensor k = Tensor.fromFloats(cpu, DType.F16, nhd ? p.keys : hnd(p.keys, 30, 2, 128),
                nhd ? new long[] {30, 2, 128} : new long[] {2, 30, 128});
            Tensor v = Tensor.fromFloats(cpu, DType.F16, nhd ? p.values : hnd(p.values, 30, 2, 128),
                nhd ? new long[] {30, 2, 128} : new long[] {2, 30, 128});
            Tensor out = Tensor.empty(cpu, DType.F16, 40, 8, 128);
            Tensor lse = Tensor.empty(cpu, DType.F32, 40, 8)) {
          out.fillBytes(0xff);
          lse.fillBytes(0xff);
          SinglePrefill.run(q, k, v, out, lse, layout, p.mask, opt, null);
          Assertions2.assertClose(ref[0], out.toFloatArray(), 2e-3, "single prefill out " + layout + " " + m);
          Assertions2.assertClose(ref[1], lse.toFloatArray(), 1e-3, "single prefill lse " + layout + " " + m);
          if (p.customMask != null) {
            // the packed form of the same mask gives the same bits out
            float[] unpackedOut = out.toFloatArray();
            out.fillBytes(0xff);
            PackedMask packed = Masks.segmentPackbits(p.customMask, new int[] {0, p.customMask.length});
            SinglePrefill.run(q, k, v, out, lse, layout, AttentionMask.packed(packed), opt, null);
            org.junit.jupiter.api.Assertions.assertArrayEquals(unpackedOut, out.toFloatArray());
          }
        }
      }
    }
  }

  private static float[] hnd(float[] nhd, int n, int heads, int dim) {
    float[] out = new float[nhd.length];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < heads; h++) {
        System.arraycopy(nhd, (t * heads + h) * dim, out, (h * n + t) * dim, dim);
      }
    }
    return out;
  }
}
