package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A random batch-prefill problem held on the host (values already rounded to the dtype): per-request query and
 * key/value lengths, a mask, and the data, which can be run through the Java API with ragged or paged K/V on any
 * device and solved by a float64 implementation of SPEC.md's attention.
 */
final class PrefillProblem {
  /** How K/V (and q) reach the op. */
  enum Storage {
    /** Contiguous ragged q, k, v. */
    RAGGED,
    /** q and k are strided views (rows and heads wider than their extent), v contiguous: k and v strides differ. */
    RAGGED_FUSED,
    /** A paged cache with separate K and V pools, pages shuffled, filled by append. */
    PAGED,
    /** A paged cache in one combined K/V tensor. */
    PAGED_COMBINED
  }

  final DType dtype;
  final KvLayout layout;
  final Storage storage;
  final int pageSize;
  final int numQoHeads;
  final int numKvHeads;
  final int headDim;
  final int[] qoLens;
  final int[] kvLens;
  final int[] qoIndptr;
  final int[] kvIndptr;
  final float[] q;       // [nnzQo, Hqo, D]
  final float[] keys;    // [nnzKv, Hkv, D], requests in order
  final float[] values;
  final AttentionMask mask;
  final boolean[] customMask; // unpacked, requests concatenated; null unless custom
  private final String maskName;

  PrefillProblem(long seed, DType dtype, KvLayout layout, Storage storage, int pageSize, int numQoHeads,
      int numKvHeads, int headDim, int[] qoLens, int[] kvLens, String maskKind) {
    Random rnd = new Random(seed);
    this.dtype = dtype;
    this.layout = layout;
    this.storage = storage;
    this.pageSize = pageSize;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.qoLens = qoLens.clone();
    this.kvLens = kvLens.clone();
    int batch = qoLens.length;
    qoIndptr = new int[batch + 1];
    kvIndptr = new int[batch + 1];
    for (int b = 0; b < batch; b++) {
      qoIndptr[b + 1] = qoIndptr[b] + qoLens[b];
      kvIndptr[b + 1] = kvIndptr[b] + kvLens[b];
    }
    q = round(randoms(rnd, qoIndptr[batch] * numQoHeads * headDim));
    keys = round(randoms(rnd, kvIndptr[batch] * numKvHeads * headDim));
    values = round(randoms(rnd, kvIndptr[batch] * numKvHeads * headDim));
    this.maskName = maskKind;
    switch (maskKind) {
      case "none":
        mask = AttentionMask.none();
        customMask = null;
        break;
      case "causal":
        mask = AttentionMask.causal();
        customMask = null;
        break;
      case "random":
        customMask = randomMask(rnd);
        mask = AttentionMask.custom(customMask);
        break;
      case "tree":
        customMask = treeMasks(rnd);
        mask = AttentionMask.custom(customMask);
        break;
      default:
        throw new IllegalArgumentException(maskKind);
    }
  }

  private PrefillProblem(PrefillProblem o, boolean[] customMask) {
    this.dtype = o.dtype;
    this.layout = o.layout;
    this.storage = o.storage;
    this.pageSize = o.pageSize;
    this.numQoHeads = o.numQoHeads;
    this.numKvHeads = o.numKvHeads;
    this.headDim = o.headDim;
    this.qoLens = o.qoLens;
    this.kvLens = o.kvLens;
    this.qoIndptr = o.qoIndptr;
    this.kvIndptr = o.kvIndptr;
    this.q = o.q;
    this.keys = o.keys;
    this.values = o.values;
    this.customMask = customMask.clone();
    this.mask = AttentionMask.custom(customMask);
    this.maskName = "custom";
  }

  /** The same data under a given custom mask (requests' matrices concatenated). */
  PrefillProblem withMask(boolean[] customMask) {
    return new PrefillProblem(this, customMask);
  }

  /** Random keep bits (p = 0.6), with the first row of every request dropped entirely (a row seeing nothing). */
  private boolean[] randomMask(Random rnd) {
    int total = 0;
    for (int b = 0; b < batch(); b++) {
      total += qoLens[b] * kvLens[b];
    }
    boolean[] m = new boolean[total];
    int at = 0;
    for (int b = 0; b < batch(); b++) {
      for (int i = 0; i < qoLens[b]; i++) {
        for (int j = 0; j < kvLens[b]; j++) {
          m[at++] = i > 0 && rnd.nextDouble() < 0.6;
        }
      }
    }
    return m;
  }

  /** Per request a random draft tree over its last qoLen keys (needs qoLen <= kvLen). */
  private boolean[] treeMasks(Random rnd) {
    List<boolean[]> parts = new ArrayList<>();
    int total = 0;
    for (int b = 0; b < batch(); b++) {
      int n = qoLens[b];
      if (n > kvLens[b]) {
        throw new IllegalArgumentException("tree mask needs qoLen <= kvLen");
      }
      int[] parents = new int[n];
      for (int i = 0; i < n; i++) {
        parents[i] = i == 0 ? -1 : rnd.nextInt(i + 1) - 1;
      }
      boolean[] t = Masks.tree(kvLens[b] - n, parents);
      parts.add(t);
      total += t.length;
    }
    boolean[] m = new boolean[total];
    int at = 0;
    for (boolean[] t : parts) {
      System.arraycopy(t, 0, m, at, t.length);
      at += t.length;
    }
    return m;
  }

  int batch() {
    return qoLens.length;
  }

  int nnzQo() {
    return qoIndptr[batch()];
  }

  int nnzKv() {
    return kvIndptr[batch()];
  }

  private static float[] randoms(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }

  private float[] round(float[] a) {
    try (Tensor t = Tensor.fromFloats(Device.cpu(), dtype, a, a.length)) {
      return t.toFloatArray();
    }
  }

  /** Runs the problem through the Java API on {@code device}; returns {out, lse} as float arrays. */
  /**
   * Runs this problem on CUDA device 0 and checks out and LSE against the CPU backend and the float64 reference
   * (bf16/fp16 tolerance for out, 1e-3 for LSE).
   */
  void assertCudaMatchesReferences(AttentionOptions opt) {
    float[][] gpu = run(Device.cuda(0), opt);
    float[][] cpu = run(Device.cpu(), opt);
    double tol = Assertions2.tolerance(dtype);
    Assertions2.assertClose(cpu[0], gpu[0], tol, this + " " + opt + " out vs CPU");
    Assertions2.assertClose(cpu[1], gpu[1], 1e-3, this + " " + opt + " lse vs CPU");
    double[][] ref = reference(opt);
    Assertions2.assertClose(ref[0], gpu[0], tol, this + " " + opt + " out vs float64");
    Assertions2.assertClose(ref[1], gpu[1], 1e-3, this + " " + opt + " lse vs float64");
  }

  float[][] run(Device device, AttentionOptions opt) {
    int hq = numQoHeads;
    try (Tensor out = Tensor.empty(device, dtype, nnzQo(), hq, headDim);
        Tensor lse = Tensor.empty(device, DType.F32, nnzQo(), hq)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      if (storage == Storage.PAGED || storage == Storage.PAGED_COMBINED) {
        runPaged(device, opt, out, lse);
      } else {
        runRagged(device, opt, out, lse);
      }
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  private void runRagged(Device device, AttentionOptions opt, Tensor out, Tensor lse) {
    int nq = nnzQo();
    int nk = nnzKv();
    List<Tensor> owned = new ArrayList<>();
    try (BatchPrefillWithRaggedKvCache op = new BatchPrefillWithRaggedKvCache(device, layout, null)) {
      boolean nhd = layout == KvLayout.NHD;
      float[] kData = nhd ? keys : toHnd(keys, nk);
      float[] vData = nhd ? values : toHnd(values, nk);
      long[] kvShape = nhd ? new long[] {nk, numKvHeads, headDim} : new long[] {numKvHeads, nk, headDim};
      Tensor qT;
      Tensor kT;
      if (storage == Storage.RAGGED_FUSED) {
        // q rows with one spare head (row stride > extent) and k rows of twice the head dim (head and token
        // strides > extent): views as a fused projection output gives them; v stays contiguous
        float[] qWide = new float[nq * (numQoHeads + 1) * headDim];
        for (int r = 0; r < nq; r++) {
          System.arraycopy(q, r * numQoHeads * headDim, qWide, r * (numQoHeads + 1) * headDim, numQoHeads * headDim);
        }
        qT = track(owned, Tensor.fromFloats(device, dtype, qWide, nq, numQoHeads + 1, headDim))
            .narrow(1, 0, numQoHeads);
        float[] kWide = new float[2 * kData.length];
        for (int r = 0; r < kData.length / headDim; r++) {
          System.arraycopy(kData, r * headDim, kWide, 2 * r * headDim, headDim);
        }
        kT = track(owned, Tensor.fromFloats(device, dtype, kWide, kvShape[0], kvShape[1], 2L * headDim))
            .narrow(2, 0, headDim);
      } else {
        qT = track(owned, Tensor.fromFloats(device, dtype, q, nq, numQoHeads, headDim));
        kT = track(owned, Tensor.fromFloats(device, dtype, kData, kvShape));
      }
      Tensor vT = track(owned, Tensor.fromFloats(device, dtype, vData, kvShape));
      op.plan(qoIndptr, kvIndptr, numQoHeads, numKvHeads, headDim, dtype, mask, opt, null);
      op.run(qT, kT, vT, out, lse);
    } finally {
      for (Tensor t : owned) {
        t.close();
      }
    }
  }

  private static Tensor track(List<Tensor> owned, Tensor t) {
    owned.add(t);
    return t;
  }

  private float[] toHnd(float[] nhd, int n) {
    float[] out = new float[nhd.length];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < numKvHeads; h++) {
        System.arraycopy(nhd, (t * numKvHeads + h) * headDim, out, (h * n + t) * headDim, headDim);
      }
    }
    return out;
  }

  private void runPaged(Device device, AttentionOptions opt, Tensor out, Tensor lse) {
    int batch = batch();
    int[] indptr = new int[batch + 1];
    int[] last = new int[batch];
    for (int b = 0; b < batch; b++) {
      int pages = (kvLens[b] + pageSize - 1) / pageSize;
      indptr[b + 1] = indptr[b] + pages;
      last[b] = pages == 0 ? 0 : kvLens[b] - (pages - 1) * pageSize;
    }
    int numPages = indptr[batch] + 2;
    List<Integer> pool = new ArrayList<>();
    for (int i = 0; i < numPages; i++) {
      pool.add(i);
    }
    Collections.shuffle(pool, new Random(numPages * 31L + batch));
    int[] indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = pool.get(i);
    }
    try (PagedKvCache cache = storage == Storage.PAGED_COMBINED
            ? PagedKvCache.allocateCombined(device, dtype, layout, numPages, pageSize, numKvHeads, headDim)
            : PagedKvCache.allocate(device, dtype, layout, numPages, pageSize, numKvHeads, headDim);
        PageTable table = PageTable.of(device, pageSize, indptr, indices, last);
        Tensor qT = Tensor.fromFloats(device, dtype, q, nnzQo(), numQoHeads, headDim);
        BatchPrefillWithPagedKvCache op = new BatchPrefillWithPagedKvCache(device)) {
      if (nnzKv() > 0) {
        try (Tensor k = Tensor.fromFloats(device, dtype, keys, nnzKv(), numKvHeads, headDim);
            Tensor v = Tensor.fromFloats(device, dtype, values, nnzKv(), numKvHeads, headDim)) {
          PagedKv.append(k, v, PagedKv.batchIndicesAndPositions(kvIndptr, kvLens), cache, table, null);
        }
      }
      op.plan(qoIndptr, table, numQoHeads, numKvHeads, headDim, dtype, mask, opt, null);
      op.run(qT, cache, out, lse);
    }
  }

  /** Float64 SPEC.md attention: {out [nnzQo*Hqo*D], lse [nnzQo*Hqo]}. */
  double[][] reference(AttentionOptions opt) {
    int group = numQoHeads / numKvHeads;
    // keys once in double, rotated at their positions when RoPE is on
    double[] k = new double[keys.length];
    for (int b = 0; b < batch(); b++) {
      for (int j = 0; j < kvLens[b]; j++) {
        for (int h = 0; h < numKvHeads; h++) {
          int base = ((kvIndptr[b] + j) * numKvHeads + h) * headDim;
          double[] x = new double[headDim];
          for (int d = 0; d < headDim; d++) {
            x[d] = keys[base + d];
          }
          if (opt.posEncoding() == PosEncoding.ROPE_LLAMA) {
            x = rope(x, j, opt);
          }
          System.arraycopy(x, 0, k, base, headDim);
        }
      }
    }
    double[] out = new double[nnzQo() * numQoHeads * headDim];
    double[] lse = new double[nnzQo() * numQoHeads];
    int maskBase = 0;
    for (int b = 0; b < batch(); b++) {
      int qo = qoLens[b];
      int kv = kvLens[b];
      for (int i = 0; i < qo; i++) {
        int row = qoIndptr[b] + i;
        int posQ = i + kv - qo;
        boolean[] allowed = new boolean[kv];
        for (int j = 0; j < kv; j++) {
          boolean keep = customMask != null ? customMask[maskBase + i * kv + j]
              : !mask.isCausal() || j <= posQ;
          allowed[j] = keep && (opt.windowLeft() < 0 || j >= posQ - opt.windowLeft());
        }
        for (int h = 0; h < numQoHeads; h++) {
          double[] o = attend(k, b, row, h, h / group, posQ, allowed, opt);
          System.arraycopy(o, 0, out, (row * numQoHeads + h) * headDim, headDim);
          lse[row * numQoHeads + h] = o[headDim];
        }
      }
      maskBase += qo * kv;
    }
    return new double[][] {out, lse};
  }

  /** Output of one (row, head) followed by its base-2 LSE. */
  private double[] attend(double[] k, int b, int row, int h, int kvh, int posQ, boolean[] allowed,
      AttentionOptions opt) {
    boolean rope = opt.posEncoding() == PosEncoding.ROPE_LLAMA;
    double scale = opt.smScale(headDim);
    double[] qv = new double[headDim];
    for (int d = 0; d < headDim; d++) {
      qv[d] = q[(row * numQoHeads + h) * headDim + d];
    }
    if (rope) {
      qv = rope(qv, posQ, opt);
    }
    int kv = allowed.length;
    double[] logits = new double[kv];
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < kv; j++) {
      if (!allowed[j]) {
        continue;
      }
      int base = ((kvIndptr[b] + j) * numKvHeads + kvh) * headDim;
      double dot = 0;
      for (int d = 0; d < headDim; d++) {
        dot += qv[d] * k[base + d];
      }
      double x = dot * scale;
      if (opt.logitsSoftCap() > 0) {
        x = opt.logitsSoftCap() * Math.tanh(x / opt.logitsSoftCap());
      }
      logits[j] = x;
      max = Math.max(max, x);
    }
    double denom = 0;
    double[] acc = new double[headDim + 1];
    for (int j = 0; j < kv; j++) {
      if (!allowed[j]) {
        continue;
      }
      double w = Math.exp(logits[j] - max);
      denom += w;
      int base = ((kvIndptr[b] + j) * numKvHeads + kvh) * headDim;
      for (int d = 0; d < headDim; d++) {
        acc[d] += w * values[base + d];
      }
    }
    for (int d = 0; d < headDim; d++) {
      acc[d] = denom > 0 ? acc[d] / denom : 0;
    }
    acc[headDim] = denom > 0 ? (max + Math.log(denom)) / Math.log(2) : Double.NEGATIVE_INFINITY;
    return acc;
  }

  private double[] rope(double[] x, int pos, AttentionOptions opt) {
    int half = headDim / 2;
    double[] y = new double[headDim];
    for (int i = 0; i < half; i++) {
      // the frequency and angle are formed in float, as FlashInfer and our kernels do
      float freq = (float) (1.0 / opt.ropeScale()) * (float) Math.pow(opt.ropeTheta(), -2.0 * i / headDim);
      float angle = (float) pos * freq;
      double c = Math.cos(angle);
      double s = Math.sin(angle);
      y[i] = x[i] * c - x[i + half] * s;
      y[i + half] = x[i + half] * c + x[i] * s;
    }
    return y;
  }

  @Override
  public String toString() {
    return dtype + " " + layout + " " + storage + (pageSize > 0 ? " P=" + pageSize : "") + " H=" + numQoHeads + "/"
        + numKvHeads + " D=" + headDim + " " + maskName + " qo=" + Arrays.toString(qoLens) + " kv="
        + Arrays.toString(kvLens);
  }
}
