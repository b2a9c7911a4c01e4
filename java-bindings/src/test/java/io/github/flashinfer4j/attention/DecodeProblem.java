package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A random batch-decode problem held on the host (values already rounded to the dtype), which can be
 * materialised on any device (cache filled through {@link PagedKv#append}) and solved by a float64 reference.
 */
final class DecodeProblem {
  final DType dtype;
  final KvLayout layout;
  final int pageSize;
  final int numQoHeads;
  final int numKvHeads;
  final int headDim;
  final int[] kvLens;
  final int numPages;
  final int[] indptr;
  final int[] indices;
  final int[] last;
  final float[] q;      // [B, Hqo, D]
  final float[] keys;   // [nnz, Hkv, D] in request order
  final float[] values;
  final int[] tokenStart; // first token row of each request in keys/values
  final CacheKind cacheKind;

  enum CacheKind { SEPARATE, COMBINED, STRIDED }

  DecodeProblem(long seed, DType dtype, KvLayout layout, int pageSize, int numQoHeads, int numKvHeads, int headDim,
      int[] kvLens, CacheKind cacheKind) {
    Random rnd = new Random(seed);
    this.dtype = dtype;
    this.layout = layout;
    this.pageSize = pageSize;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.kvLens = kvLens.clone();
    this.cacheKind = cacheKind;
    int batch = kvLens.length;
    indptr = new int[batch + 1];
    last = new int[batch];
    tokenStart = new int[batch + 1];
    for (int b = 0; b < batch; b++) {
      int pages = (kvLens[b] + pageSize - 1) / pageSize;
      indptr[b + 1] = indptr[b] + pages;
      last[b] = pages == 0 ? 0 : kvLens[b] - (pages - 1) * pageSize;
      tokenStart[b + 1] = tokenStart[b] + kvLens[b];
    }
    // pages are shuffled over a pool with a few spare pages, so page order != request order
    numPages = indptr[batch] + 3;
    List<Integer> pool = new ArrayList<>();
    for (int i = 0; i < numPages; i++) {
      pool.add(i);
    }
    Collections.shuffle(pool, rnd);
    indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = pool.get(i);
    }
    q = round(randoms(rnd, batch * numQoHeads * headDim, 1.0f));
    keys = round(randoms(rnd, tokenStart[batch] * numKvHeads * headDim, 1.0f));
    values = round(randoms(rnd, tokenStart[batch] * numKvHeads * headDim, 1.0f));
  }

  int batch() {
    return kvLens.length;
  }

  int nnz() {
    return tokenStart[batch()];
  }

  private static float[] randoms(Random rnd, int n, float scale) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rnd.nextGaussian() * scale);
    }
    return a;
  }

  private float[] round(float[] a) {
    try (Tensor t = Tensor.fromFloats(Device.cpu(), dtype, a, a.length)) {
      return t.toFloatArray();
    }
  }

  /** The problem on a device: cache (filled by append), page table and q. Close it after use. */
  final class OnDevice implements AutoCloseable {
    final Device device;
    final PagedKvCache cache;
    final PageTable pageTable;
    final Tensor q;
    private final Tensor backing;

    OnDevice(Device device) {
      this.device = device;
      Tensor backingT = null;
      PagedKvCache c;
      switch (cacheKind) {
        case COMBINED:
          c = PagedKvCache.allocateCombined(device, dtype, layout, numPages, pageSize, numKvHeads, headDim);
          break;
        case STRIDED: {
          // pages live in a pool with one extra slot of padding per page: page stride > page extent
          long[] s = PagedKvCache.shape(layout, numPages, pageSize + 1, numKvHeads, headDim);
          backingT = Tensor.empty(device, dtype, 2, s[0], s[1], s[2], s[3]);
          int slotDim = layout == KvLayout.NHD ? 1 : 2;
          c = PagedKvCache.of(backingT.select(0, 0).narrow(slotDim, 0, pageSize),
              backingT.select(0, 1).narrow(slotDim, 0, pageSize), layout);
          break;
        }
        default:
          c = PagedKvCache.allocate(device, dtype, layout, numPages, pageSize, numKvHeads, headDim);
      }
      this.backing = backingT;
      this.cache = c;
      this.pageTable = PageTable.of(device, pageSize, indptr, indices, last);
      this.q = Tensor.fromFloats(device, dtype, DecodeProblem.this.q, batch(), numQoHeads, headDim);
      if (nnz() > 0) {
        int[] appendIndptr = tokenStart.clone();
        AppendPositions targets = PagedKv.batchIndicesAndPositions(appendIndptr, kvLens);
        try (Tensor k = Tensor.fromFloats(device, dtype, keys, nnz(), numKvHeads, headDim);
            Tensor v = Tensor.fromFloats(device, dtype, values, nnz(), numKvHeads, headDim)) {
          PagedKv.append(k, v, targets, cache, pageTable, null);
        }
      }
    }

    @Override
    public void close() {
      q.close();
      pageTable.close();
      cache.close();
      if (backing != null) {
        backing.close();
      }
    }
  }

  OnDevice on(Device device) {
    return new OnDevice(device);
  }

  /** Float64 reference of SPEC.md decode: returns {out [B*Hqo*D], lse [B*Hqo]} as doubles. */
  double[][] reference(AttentionOptions opt) {
    int batch = batch();
    int group = numQoHeads / numKvHeads;
    double[] out = new double[batch * numQoHeads * headDim];
    double[] lse = new double[batch * numQoHeads];
    double scale = opt.smScale(headDim);
    boolean rope = opt.posEncoding() == PosEncoding.ROPE_LLAMA;
    for (int b = 0; b < batch; b++) {
      int len = kvLens[b];
      int posQ = len - 1;
      for (int h = 0; h < numQoHeads; h++) {
        int kvh = h / group;
        double[] qv = new double[headDim];
        for (int d = 0; d < headDim; d++) {
          qv[d] = q[(b * numQoHeads + h) * headDim + d];
        }
        if (rope) {
          qv = rope(qv, posQ, opt);
        }
        double[] logits = new double[len];
        boolean[] allowed = new boolean[len];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t < len; t++) {
          allowed[t] = opt.windowLeft() < 0 || t >= posQ - opt.windowLeft();
          if (!allowed[t]) {
            continue;
          }
          int row = (tokenStart[b] + t) * numKvHeads + kvh;
          double[] kv = new double[headDim];
          for (int d = 0; d < headDim; d++) {
            kv[d] = keys[row * headDim + d];
          }
          if (rope) {
            kv = rope(kv, t, opt);
          }
          double dot = 0;
          for (int d = 0; d < headDim; d++) {
            dot += qv[d] * kv[d];
          }
          double x = dot * scale;
          if (opt.logitsSoftCap() > 0) {
            x = opt.logitsSoftCap() * Math.tanh(x / opt.logitsSoftCap());
          }
          logits[t] = x;
          max = Math.max(max, x);
        }
        double denom = 0;
        double[] acc = new double[headDim];
        for (int t = 0; t < len; t++) {
          if (!allowed[t]) {
            continue;
          }
          double w = Math.exp(logits[t] - max);
          denom += w;
          int row = (tokenStart[b] + t) * numKvHeads + kvh;
          for (int d = 0; d < headDim; d++) {
            acc[d] += w * values[row * headDim + d];
          }
        }
        for (int d = 0; d < headDim; d++) {
          out[(b * numQoHeads + h) * headDim + d] = denom > 0 ? acc[d] / denom : 0;
        }
        lse[b * numQoHeads + h] = denom > 0 ? (max + Math.log(denom)) / Math.log(2) : Double.NEGATIVE_INFINITY;
      }
    }
    return new double[][] {out, lse};
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
    return dtype + " " + layout + " " + cacheKind + " P=" + pageSize + " H=" + numQoHeads + "/" + numKvHeads + " D="
        + headDim + " kvLens=" + java.util.Arrays.toString(kvLens);
  }
}
