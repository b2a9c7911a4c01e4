package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.Gpu;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Non-finite inputs propagate as in every reference implementation (PyTorch SDPA, FlashInfer), on every device
 * ({@link Gpu#devices()}): a NaN in q, or in K of a key the row may see, makes that row's output and LSE NaN
 * (+inf in K against a positive q gives a +inf logit, whose softmax is inf - inf = NaN); a NaN in V of a visible key
 * makes that output element NaN and leaves the LSE as computed. Keys the row may not see (outside the causal
 * diagonal, the window or the custom mask, past kv_len: padded page slots, spare pages) never contaminate it, even
 * when they share a tile with keys other rows see (except V on CUDA prefill, see {@link #prefillHiddenValues}); rows that see nothing stay 0 and -inf. Other rows,
 * heads and requests are unchanged: they are compared with the float64 reference of the clean data.
 *
 * <p>Decode: batch (CUDA cores and tensor cores, unsplit and split, NHD and HND) and single. Prefill: ragged,
 * paged, single; causal, custom and windowed masks; a split-shaped batch (few short queries, long caches, which the
 * CUDA planner splits into key chunks plus a merge). Paged caches are filled with 0xff bytes (NaN in fp16/bf16)
 * before the append, so every slot no request owns is NaN. Outputs are pre-filled with a finite sentinel
 * (0x7b bytes), so an unwritten output can never pass as a propagated NaN.
 */
class NanPropagationTest {
  private static final int SENTINEL = 0x7b;

  /** Where a non-finite value is planted. */
  enum Kind { Q, K, V, K_POS_INF }

  /**
   * One planted value: for Q, (request, row i of the request, query head, dim); for K/V, (request, key j of the
   * request, KV head, dim).
   */
  record Poison(Kind kind, int request, int index, int head, int dim) {}

  /** Which keys row i of request b may see (the custom mask, causal and window of SPEC.md). */
  interface Visibility {
    boolean allowed(int b, int i, int j);
  }

  // ------------------------------------------------------------------------------------------------ expectations

  /**
   * Expected NaN flags {out [rows*Hqo*D], lse [rows*Hqo]} for the planted values: rows are numbered by qoIndptr
   * (decode: one row per request).
   */
  static boolean[][] expectedNaN(List<Poison> poisons, int[] qoLens, int[] kvLens, int hq, int hkv, int dim,
      Visibility vis) {
    int group = hq / hkv;
    int[] qoStart = new int[qoLens.length + 1];
    for (int b = 0; b < qoLens.length; b++) {
      qoStart[b + 1] = qoStart[b] + qoLens[b];
    }
    boolean[] out = new boolean[qoStart[qoLens.length] * hq * dim];
    boolean[] lse = new boolean[qoStart[qoLens.length] * hq];
    for (Poison p : poisons) {
      int b = p.request();
      for (int i = 0; i < qoLens[b]; i++) {
        int row = qoStart[b] + i;
        boolean seesAnything = false;
        for (int j = 0; j < kvLens[b]; j++) {
          seesAnything |= vis.allowed(b, i, j);
        }
        for (int h = 0; h < hq; h++) {
          boolean hit;
          switch (p.kind()) {
            case Q:
              hit = i == p.index() && h == p.head() && seesAnything;
              break;
            default:
              hit = h / group == p.head() && p.index() < kvLens[b] && vis.allowed(b, i, p.index());
          }
          if (!hit) {
            continue;
          }
          if (p.kind() == Kind.V) {
            out[(row * hq + h) * dim + p.dim()] = true;
          } else {
            Arrays.fill(out, (row * hq + h) * dim, (row * hq + h + 1) * dim, true);
            lse[row * hq + h] = true;
          }
        }
      }
    }
    return new boolean[][] {out, lse};
  }

  /** NaN exactly where expected; elsewhere within tolerance of the clean float64 reference. */
  static void assertNaNPattern(double[][] cleanRef, boolean[][] nan, float[][] got, DType dtype, String what) {
    int expectedNaN = 0;
    for (boolean x : nan[0]) {
      expectedNaN += x ? 1 : 0;
    }
    assertTrue(expectedNaN > 0, what + ": the case plants no visible non-finite value");
    check(cleanRef[0], nan[0], got[0], Assertions2.tolerance(dtype), what + " out");
    check(cleanRef[1], nan[1], got[1], 1e-3, what + " lse");
  }

  private static void check(double[] ref, boolean[] nan, float[] got, double tol, String what) {
    assertEquals(ref.length, got.length, what + ": length");
    for (int i = 0; i < ref.length; i++) {
      if (nan[i]) {
        if (!Float.isNaN(got[i])) {
          fail(what + "[" + i + "]: expected NaN, got " + got[i]);
        }
        continue;
      }
      double e = ref[i];
      boolean ok = Double.isInfinite(e) ? got[i] == e
          : !Float.isNaN(got[i]) && Math.abs(got[i] - e) <= tol * (1 + Math.abs(e));
      if (!ok) {
        fail(what + "[" + i + "]: expected " + e + " (unaffected by the planted values), got " + got[i]);
      }
    }
  }

  private static float[] round(DType dtype, float[] a) {
    try (Tensor t = Tensor.fromFloats(Device.cpu(), dtype, a, a.length)) {
      return t.toFloatArray();
    }
  }

  // ------------------------------------------------------------------------------------------------------ decode

  static List<Arguments> decodeCases() {
    List<Arguments> out = new ArrayList<>();
    DecodePlanOptions never = DecodePlanOptions.builder().neverSplit().build();
    DecodePlanOptions cc = DecodePlanOptions.builder().path(DecodePath.CUDA_CORES).neverSplit().build();
    DecodePlanOptions ccSplit = DecodePlanOptions.builder().path(DecodePath.CUDA_CORES).fixedChunk(64).build();
    DecodePlanOptions tc = DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).neverSplit().build();
    DecodePlanOptions tcSplit = DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).fixedChunk(64).build();
    DecodePlanOptions fixed = DecodePlanOptions.deterministic(48);
    for (Device d : Gpu.devices()) {
      int i = 0;
      for (DecodePlanOptions po : new DecodePlanOptions[] {never, cc, ccSplit, tc, tcSplit, fixed}) {
        for (int dim : new int[] {64, 128}) {
          out.add(Arguments.of(d, po, dim, i % 2 == 0 ? DType.BF16 : DType.F16,
              i % 3 == 0 ? KvLayout.HND : KvLayout.NHD, i % 2 == 0 ? AttentionOptions.defaults()
                  : AttentionOptions.builder().windowLeft(60).build()));
          i++;
        }
      }
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {1} D={2} {3} {4} {5}")
  @MethodSource("decodeCases")
  void batchDecode(Device device, DecodePlanOptions po, int dim, DType dtype, KvLayout layout,
      AttentionOptions opt) {
    int hq = 16;
    int hkv = 4;  // group 4
    int[] lens = {37, 0, 300, 129, 1, 200};
    DecodeProblem p = new DecodeProblem(71 + dim, dtype, layout, 16, hq, hkv, dim, lens,
        DecodeProblem.CacheKind.SEPARATE);
    int w = opt.windowLeft();
    List<Poison> poisons = List.of(
        new Poison(Kind.K, 0, 20, 1, 3),          // request 0: KV head 1 -> q heads 4..7 NaN
        new Poison(Kind.V, 2, 290, 0, 5),         // request 2: visible V, dim 5 of q heads 0..3
        new Poison(Kind.K, 2, 10, 2, 0),          // request 2: visible without a window, masked by window 60
        new Poison(Kind.V, 2, 11, 3, 6),          // likewise
        new Poison(Kind.Q, 3, 0, 9, 7),           // request 3: q head 9 only
        new Poison(Kind.K_POS_INF, 5, 150, 3, 2)  // request 5: +inf logit for q heads 12..15
    );
    prepareDecode(p, poisons);
    double[][] clean = p.reference(opt);
    plantDecode(p, poisons);
    Visibility vis = (b, i, j) -> w < 0 || j >= lens[b] - 1 - w;
    boolean[][] nan = expectedNaN(poisons, ones(lens.length), lens, hq, hkv, dim, vis);
    try (DecodeProblem.OnDevice on = p.on(device);
        Tensor o = Tensor.empty(device, dtype, lens.length, hq, dim);
        Tensor lse = Tensor.empty(device, DType.F32, lens.length, hq);
        Stream stream = Stream.create(device);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device)) {
      poisonPaddingSlots(on.cache, p.layout, p.indptr, p.indices, p.last, p.pageSize, p.numPages, hkv);
      o.fillBytes(SENTINEL);
      lse.fillBytes(SENTINEL);
      dec.plan(on.pageTable, hq, hkv, dim, 16, dtype, opt, po, stream);
      // a window shorter than the chunk leaves nothing to split
      if (device.isCuda() && po.splitMode() == DecodePlanOptions.SplitMode.FIXED
          && (opt.windowLeft() < 0 || opt.windowLeft() + 1 > po.fixedChunk())) {
        assertTrue(dec.numWorkItems() > lens.length, "the plan splits: " + dec.numWorkItems());
      }
      dec.run(on.q, on.cache, o, lse, stream);
      stream.synchronize();
      assertNaNPattern(clean, nan, new float[][] {o.toFloatArray(), lse.toFloatArray()}, dtype,
          device + " " + p + " " + po + " " + opt);
    }
  }

  @Test
  void singleDecode() {
    int hq = 8;
    int hkv = 2;
    int dim = 128;
    int len = 100;
    AttentionOptions opt = AttentionOptions.builder().windowLeft(20).build();
    for (Device device : Gpu.devices()) {
      for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
        DecodeProblem p = new DecodeProblem(5, dtype, KvLayout.NHD, 16, hq, hkv, dim, new int[] {len},
            DecodeProblem.CacheKind.SEPARATE);
        double[][] clean = p.reference(opt);
        List<Poison> poisons = List.of(
            new Poison(Kind.K, 0, 5, 0, 1),    // masked by the window
            new Poison(Kind.V, 0, 6, 1, 1),    // masked by the window
            new Poison(Kind.V, 0, 90, 0, 3),   // visible: dim 3 of q heads 0..3
            new Poison(Kind.Q, 0, 0, 5, 0));   // q head 5
        plantDecode(p, poisons);
        boolean[][] nan = expectedNaN(poisons, new int[] {1}, new int[] {len}, hq, hkv, dim,
            (b, i, j) -> j >= len - 1 - 20);
        try (Tensor q = Tensor.fromFloats(device, dtype, p.q, hq, dim);
            Tensor k = Tensor.fromFloats(device, dtype, p.keys, len, hkv, dim);
            Tensor v = Tensor.fromFloats(device, dtype, p.values, len, hkv, dim);
            Tensor o = Tensor.empty(device, dtype, hq, dim);
            Tensor lse = Tensor.empty(device, DType.F32, hq)) {
          o.fillBytes(SENTINEL);
          lse.fillBytes(SENTINEL);
          SingleDecode.run(q, k, v, o, lse, KvLayout.NHD, opt, null);
          device.synchronize();
          assertNaNPattern(clean, nan, new float[][] {o.toFloatArray(), lse.toFloatArray()}, dtype,
              device + " single decode " + dtype);
        }
      }
    }
  }

  private static int[] ones(int n) {
    int[] a = new int[n];
    Arrays.fill(a, 1);
    return a;
  }

  /**
   * For +inf in K at dim x.dim(): every q head of the group gets 1 there, so that q.k = +inf (done before the clean
   * reference, which the rows that do not see the key are compared with).
   */
  private static void prepareDecode(DecodeProblem p, List<Poison> poisons) {
    int group = p.numQoHeads / p.numKvHeads;
    for (Poison x : poisons) {
      if (x.kind() == Kind.K_POS_INF) {
        for (int h = x.head() * group; h < (x.head() + 1) * group; h++) {
          p.q[(x.request() * p.numQoHeads + h) * p.headDim + x.dim()] = 1f;
        }
      }
    }
  }

  /** Writes the planted values into the problem's host data (before it is put on a device). */
  private static void plantDecode(DecodeProblem p, List<Poison> poisons) {
    int d = p.headDim;
    for (Poison x : poisons) {
      int b = x.request();
      switch (x.kind()) {
        case Q:
          p.q[(b * p.numQoHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case K:
          p.keys[((p.tokenStart[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case V:
          p.values[((p.tokenStart[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case K_POS_INF:
          p.keys[((p.tokenStart[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.POSITIVE_INFINITY;
          break;
        default:
          throw new AssertionError(x);
      }
    }
  }

  /**
   * Fills every cache slot that no request owns (the tail of each last page, spare pages) with 0xff bytes: NaN in
   * fp16 and bf16, as uninitialised or recycled pages may hold.
   */
  private static void poisonPaddingSlots(PagedKvCache cache, KvLayout layout, int[] indptr, int[] indices,
      int[] last, int pageSize, int numPages, int hkv) {
    boolean[] used = new boolean[numPages];
    for (int b = 0; b + 1 < indptr.length; b++) {
      for (int pg = indptr[b]; pg < indptr[b + 1]; pg++) {
        used[indices[pg]] = true;
      }
    }
    for (Tensor t : new Tensor[] {cache.k(), cache.v()}) {
      for (int pg = 0; pg < numPages; pg++) {
        if (!used[pg]) {
          t.select(0, pg).fillBytes(0xff);
        }
      }
      for (int b = 0; b + 1 < indptr.length; b++) {
        if (indptr[b + 1] == indptr[b] || last[b] == pageSize) {
          continue;
        }
        Tensor page = t.select(0, indices[indptr[b + 1] - 1]);
        if (layout == KvLayout.NHD) {
          page.narrow(0, last[b], pageSize - last[b]).fillBytes(0xff);
        } else {
          for (int h = 0; h < hkv; h++) {
            page.select(0, h).narrow(0, last[b], pageSize - last[b]).fillBytes(0xff);
          }
        }
      }
    }
  }

  // ----------------------------------------------------------------------------------------------------- prefill

  enum PrefillRoute { RAGGED, PAGED, SINGLE }

  static List<Arguments> prefillCases() {
    List<Arguments> out = new ArrayList<>();
    for (Device d : Gpu.devices()) {
      int i = 0;
      for (PrefillRoute route : PrefillRoute.values()) {
        for (String mask : new String[] {"causal", "random", "none"}) {
          for (int dim : new int[] {64, 128}) {
            AttentionOptions opt = mask.equals("none") ? AttentionOptions.builder().windowLeft(25).build()
                : AttentionOptions.defaults();
            out.add(Arguments.of(d, route, mask, dim, i % 2 == 0 ? DType.BF16 : DType.F16, opt));
            i++;
          }
        }
      }
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {1} {2} D={3} {4} {5}")
  @MethodSource("prefillCases")
  void prefill(Device device, PrefillRoute route, String mask, int dim, DType dtype, AttentionOptions opt) {
    PrefillProblem p = prefillProblem(route, mask, dim, dtype);
    int b1 = route == PrefillRoute.SINGLE ? 0 : 1;  // 40 rows, 300 keys: row i sits at position i + 260
    List<Poison> poisons = new ArrayList<>();
    // K at key 280: causal rows i >= 20 see it, rows 0..19 share its tile but may not
    poisons.add(new Poison(Kind.K, b1, 280, 1, 3));
    poisons.add(new Poison(Kind.Q, b1, 33, 14, 0));
    if (!mask.equals("random")) {
      // V of a key every row of the request sees (causal: below 260; no mask with window 25: above 274)
      poisons.add(new Poison(Kind.V, b1, mask.equals("causal") ? 100 : 290, 0, 9));
    }
    if (route != PrefillRoute.SINGLE) {
      poisons.add(new Poison(Kind.Q, 0, 2, 3, 1));
      poisons.add(new Poison(Kind.K_POS_INF, 3, 1, 3, 5));  // a request of 3 rows and 2 keys
    }
    checkPrefill(p, route, device, opt, poisons);
  }

  /**
   * V of keys that some rows of a request may see and others may not, although they lie inside the key range of
   * the same row tile (the causal diagonal, the window edge, a custom mask): the rows that may not see them must
   * stay unchanged. The CPU backend skips hidden keys. The CUDA prefill kernel (like FlashInfer's FA2 kernels)
   * multiplies their zero weights into V on the tensor cores (0 * NaN = NaN), so on CUDA this runs only with
   * -Dflashinfer4j.strictHiddenNaN=true, until prefill.cuh handles it.
   */
  @ParameterizedTest(name = "{0} {1} {2} D={3} {4} {5}")
  @MethodSource("prefillCases")
  void prefillHiddenValues(Device device, PrefillRoute route, String mask, int dim, DType dtype,
      AttentionOptions opt) {
    Assumptions.assumeTrue(device.isCpu() || Boolean.getBoolean("flashinfer4j.strictHiddenNaN"),
        "CUDA prefill: a NaN in V of a key hidden from some rows of a tile reaches them (known, see prefill.cuh)");
    PrefillProblem p = prefillProblem(route, mask, dim, dtype);
    int b1 = route == PrefillRoute.SINGLE ? 0 : 1;
    Visibility vis = visibility(p, opt);
    List<Poison> poisons = new ArrayList<>();
    // V at key 270: causal rows 0..9 share its tile (keys 256..269 are theirs) and may not see it
    poisons.add(new Poison(Kind.V, b1, 270, 0, 9));
    poisons.add(new Poison(Kind.V, b1, hiddenKey(p, vis, b1), 2, 4));
    checkPrefill(p, route, device, opt, poisons);
  }

  private static PrefillProblem prefillProblem(PrefillRoute route, String mask, int dim, DType dtype) {
    boolean single = route == PrefillRoute.SINGLE;
    int[] qo = single ? new int[] {40} : new int[] {5, 40, 1, 3};
    int[] kv = single ? new int[] {300} : new int[] {37, 300, 129, 2};
    return new PrefillProblem(900 + dim, dtype, KvLayout.NHD,
        route == PrefillRoute.RAGGED ? PrefillProblem.Storage.RAGGED : PrefillProblem.Storage.PAGED, 16, 16, 4, dim,
        qo, kv, mask);
  }

  private static void checkPrefill(PrefillProblem p, PrefillRoute route, Device device, AttentionOptions opt,
      List<Poison> poisons) {
    Visibility vis = visibility(p, opt);
    preparePrefill(p, poisons);
    double[][] clean = p.reference(opt);
    plantPrefill(p, poisons);
    boolean[][] nan = expectedNaN(poisons, p.qoLens, p.kvLens, p.numQoHeads, p.numKvHeads, p.headDim, vis);
    float[][] got = runPrefill(p, route, device, opt);
    assertNaNPattern(clean, nan, got, p.dtype, device + " " + route + " " + p + " " + opt + " " + poisons);
    assertMaskedRowsEmpty(p, vis, got);
  }

  /**
   * Few short queries against long caches, which the CUDA planner splits into key chunks and merges: a NaN
   * partial state (K), a NaN partial output with a finite LSE (V), and clean requests beside them.
   */
  @Test
  void splitPrefill() {
    int[] qo = {16, 1, 7};
    int[] kv = {3000, 4100, 2500};
    for (Device device : Gpu.devices()) {
      for (PrefillRoute route : new PrefillRoute[] {PrefillRoute.PAGED, PrefillRoute.RAGGED}) {
        PrefillProblem p = new PrefillProblem(77, DType.BF16, KvLayout.NHD,
            route == PrefillRoute.RAGGED ? PrefillProblem.Storage.RAGGED : PrefillProblem.Storage.PAGED, 16, 32, 8,
            128, qo, kv, "causal");
        AttentionOptions opt = AttentionOptions.defaults();
        if (device.isCuda()) {
          assertTrue(GpuPrefillSplitTest.planWorkItems(p, opt) > qo.length, "expected a split plan");
        }
        List<Poison> poisons = List.of(
            new Poison(Kind.K, 0, 2990, 1, 0),  // request 0 (rows at 2984..2999): rows >= 6 see it
            new Poison(Kind.V, 0, 100, 0, 3),   // every row of request 0, dim 3 of q heads 0..3
            new Poison(Kind.K, 2, 1000, 7, 9)); // every row of request 2, q heads 28..31
        double[][] clean = p.reference(opt);
        plantPrefill(p, poisons);
        Visibility vis = visibility(p, opt);
        boolean[][] nan = expectedNaN(poisons, qo, kv, p.numQoHeads, p.numKvHeads, 128, vis);
        assertNaNPattern(clean, nan, runPrefill(p, route, device, opt), p.dtype, device + " split " + route);
      }
    }
  }

  static Visibility visibility(PrefillProblem p, AttentionOptions opt) {
    int[] maskBase = new int[p.batch() + 1];
    for (int b = 0; b < p.batch(); b++) {
      maskBase[b + 1] = maskBase[b] + p.qoLens[b] * p.kvLens[b];
    }
    int w = opt.windowLeft();
    return (b, i, j) -> {
      int posQ = i + p.kvLens[b] - p.qoLens[b];
      boolean keep = p.customMask != null ? p.customMask[maskBase[b] + i * p.kvLens[b] + j]
          : !p.mask.isCausal() || j <= posQ;
      return keep && (w < 0 || j >= posQ - w);
    };
  }

  /** A key of request b that some row of it may not see although it lies below the causal end of all rows. */
  private static int hiddenKey(PrefillProblem p, Visibility vis, int b) {
    for (int j = 250; j < p.kvLens[b]; j++) {
      boolean seen = false;
      boolean hidden = false;
      for (int i = 0; i < p.qoLens[b]; i++) {
        boolean a = vis.allowed(b, i, j);
        seen |= a;
        hidden |= !a && j <= i + p.kvLens[b] - p.qoLens[b];
      }
      if (hidden && (seen || p.customMask == null)) {
        return j;
      }
    }
    return 100;  // causal without a window sees every key below 260: a plain visible V
  }

  /** Rows that see no key give exactly 0 and -inf, never NaN. */
  private static void assertMaskedRowsEmpty(PrefillProblem p, Visibility vis, float[][] got) {
    int hq = p.numQoHeads;
    for (int b = 0; b < p.batch(); b++) {
      for (int i = 0; i < p.qoLens[b]; i++) {
        boolean any = false;
        for (int j = 0; j < p.kvLens[b]; j++) {
          any |= vis.allowed(b, i, j);
        }
        if (any) {
          continue;
        }
        int row = p.qoIndptr[b] + i;
        for (int h = 0; h < hq; h++) {
          assertEquals(Float.NEGATIVE_INFINITY, got[1][row * hq + h], "empty row " + row + " head " + h + " lse");
          for (int d = 0; d < p.headDim; d++) {
            assertEquals(0f, got[0][(row * hq + h) * p.headDim + d], "empty row " + row + " head " + h + " out");
          }
        }
      }
    }
  }

  /** As prepareDecode: q = 1 at the dim of a +inf key, for every row and q head of its group. */
  private static void preparePrefill(PrefillProblem p, List<Poison> poisons) {
    int group = p.numQoHeads / p.numKvHeads;
    for (Poison x : poisons) {
      if (x.kind() == Kind.K_POS_INF) {
        for (int i = 0; i < p.qoLens[x.request()]; i++) {
          for (int h = x.head() * group; h < (x.head() + 1) * group; h++) {
            p.q[((p.qoIndptr[x.request()] + i) * p.numQoHeads + h) * p.headDim + x.dim()] = 1f;
          }
        }
      }
    }
  }

  private static void plantPrefill(PrefillProblem p, List<Poison> poisons) {
    int d = p.headDim;
    for (Poison x : poisons) {
      int b = x.request();
      switch (x.kind()) {
        case Q:
          p.q[((p.qoIndptr[b] + x.index()) * p.numQoHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case K:
          p.keys[((p.kvIndptr[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case V:
          p.values[((p.kvIndptr[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.NaN;
          break;
        case K_POS_INF:
          p.keys[((p.kvIndptr[b] + x.index()) * p.numKvHeads + x.head()) * d + x.dim()] = Float.POSITIVE_INFINITY;
          break;
        default:
          throw new AssertionError(x);
      }
    }
  }

  /** Runs the (planted) problem: {out, lse}. Paged caches start as all-NaN bytes, so padding slots are NaN. */
  static float[][] runPrefill(PrefillProblem p, PrefillRoute route, Device device, AttentionOptions opt) {
    int hq = p.numQoHeads;
    int hkv = p.numKvHeads;
    int dim = p.headDim;
    DType dt = p.dtype;
    try (Tensor out = Tensor.empty(device, dt, p.nnzQo(), hq, dim);
        Tensor lse = Tensor.empty(device, DType.F32, p.nnzQo(), hq);
        Tensor q = Tensor.fromFloats(device, dt, p.q, p.nnzQo(), hq, dim)) {
      out.fillBytes(SENTINEL);
      lse.fillBytes(SENTINEL);
      switch (route) {
        case SINGLE:
          try (Tensor k = Tensor.fromFloats(device, dt, p.keys, p.nnzKv(), hkv, dim);
              Tensor v = Tensor.fromFloats(device, dt, p.values, p.nnzKv(), hkv, dim)) {
            SinglePrefill.run(q, k, v, out, lse, KvLayout.NHD, p.mask, opt, null);
          }
          break;
        case RAGGED:
          try (Tensor k = Tensor.fromFloats(device, dt, p.keys, p.nnzKv(), hkv, dim);
              Tensor v = Tensor.fromFloats(device, dt, p.values, p.nnzKv(), hkv, dim);
              BatchPrefillWithRaggedKvCache op = new BatchPrefillWithRaggedKvCache(device, KvLayout.NHD, null)) {
            op.plan(p.qoIndptr, p.kvIndptr, hq, hkv, dim, dt, p.mask, opt, null);
            op.run(q, k, v, out, lse);
          }
          break;
        default:
          runPagedPoisoned(p, device, opt, q, out, lse);
      }
      device.synchronize();
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  private static void runPagedPoisoned(PrefillProblem p, Device device, AttentionOptions opt, Tensor q, Tensor out,
      Tensor lse) {
    int batch = p.batch();
    int pageSize = p.pageSize;
    int[] indptr = new int[batch + 1];
    int[] last = new int[batch];
    for (int b = 0; b < batch; b++) {
      int pages = (p.kvLens[b] + pageSize - 1) / pageSize;
      indptr[b + 1] = indptr[b] + pages;
      last[b] = pages == 0 ? 0 : p.kvLens[b] - (pages - 1) * pageSize;
    }
    int numPages = indptr[batch] + 2;
    List<Integer> pool = new ArrayList<>();
    for (int i = 0; i < numPages; i++) {
      pool.add(i);
    }
    Collections.shuffle(pool, new Random(numPages));
    int[] indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = pool.get(i);
    }
    try (PagedKvCache cache = PagedKvCache.allocate(device, p.dtype, KvLayout.NHD, numPages, pageSize, p.numKvHeads,
            p.headDim);
        PageTable table = PageTable.of(device, pageSize, indptr, indices, last);
        BatchPrefillWithPagedKvCache op = new BatchPrefillWithPagedKvCache(device)) {
      cache.k().fillBytes(0xff);
      cache.v().fillBytes(0xff);
      try (Tensor k = Tensor.fromFloats(device, p.dtype, p.keys, p.nnzKv(), p.numKvHeads, p.headDim);
          Tensor v = Tensor.fromFloats(device, p.dtype, p.values, p.nnzKv(), p.numKvHeads, p.headDim)) {
        PagedKv.append(k, v, PagedKv.batchIndicesAndPositions(p.kvIndptr, p.kvLens), cache, table, null);
      }
      op.plan(p.qoIndptr, table, p.numQoHeads, p.numKvHeads, p.headDim, p.dtype, p.mask, opt, null);
      op.run(q, cache, out, lse);
    }
  }

  // ------------------------------------------------------------------------------------------------------ append

  /** NaN for NaN, otherwise the same bits (so +-inf and -0 too). */
  private static void assertSame(float expected, float actual, String what) {
    if (Float.isNaN(expected)) {
      assertTrue(Float.isNaN(actual), what + ": expected NaN, got " + actual);
    } else {
      assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(actual), what + ": " + actual);
    }
  }

  /** Append copies NaN and +-inf bits unchanged into the cache, on every device. */
  @Test
  void appendCopiesNonFiniteValues() {
    // head dim 16: the smallest the CUDA append copies (16-byte vectors); the second half repeats the first
    float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 1.5f, 0f, 2f, -3f,
        Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 1.5f, 0f, 2f, -3f};
    float[] values = {1f, Float.NaN, 2f, 3f, 4f, 5f, Float.NEGATIVE_INFINITY, 7f,
        1f, Float.NaN, 2f, 3f, 4f, 5f, Float.NEGATIVE_INFINITY, 7f};
    int dim = special.length;
    for (Device device : Gpu.devices()) {
      for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
        float[] kv = round(dtype, special);
        float[] vv = round(dtype, values);
        try (PagedKvCache cache = PagedKvCache.allocate(device, dtype, KvLayout.NHD, 2, 4, 1, dim);
            PageTable table = PageTable.of(device, 4, new int[] {0, 1}, new int[] {1}, new int[] {3});
            Tensor k = Tensor.fromFloats(device, dtype, kv, 1, 1, dim);
            Tensor v = Tensor.fromFloats(device, dtype, vv, 1, 1, dim)) {
          cache.k().fillBytes(0);
          cache.v().fillBytes(0);
          PagedKv.append(k, v, new int[] {0}, new int[] {2}, cache, table, null);
          device.synchronize();
          float[] kGot = cache.k().select(0, 1).select(0, 2).toFloatArray();
          float[] vGot = cache.v().select(0, 1).select(0, 2).toFloatArray();
          for (int i = 0; i < dim; i++) {
            assertSame(kv[i], kGot[i], device + " " + dtype + " k[" + i + "]");
            assertSame(vv[i], vGot[i], device + " " + dtype + " v[" + i + "]");
          }
        }
      }
    }
  }
}
