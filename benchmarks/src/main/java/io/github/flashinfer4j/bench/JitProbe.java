package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.JitCache;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AttentionMask;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithRaggedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKv;
import io.github.flashinfer4j.attention.PagedKvCache;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;

/**
 * {@code jit-probe [--op decode|prefill] [--cache-dir DIR] [--head-dim D] [--dtype BF16|F16]}: the cost of a
 * run-time compiled decode (or prefill) kernel in a fresh process. After CUDA is initialised (an ahead-of-time
 * kernel of the op runs first), it prepares the kernel of the configuration (compile, or load from the disk cache)
 * and runs a first batch decode (or causal ragged prefill), checked against the CPU reference. Run it twice on the same fresh directory: the first run compiles, the second must find the cubin
 * on disk ({@code compiled=false source=DISK_CACHE}). Prints one {@code jit-probe:} line; exit code 0 when the
 * result matched.
 */
final class JitProbe {
  private JitProbe() {}

  static int run(String[] args) {
    Path dir = null;
    int headDim = 96;
    DType dtype = DType.BF16;
    boolean prefill = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--op":
          String op = args[++i];
          if (!op.equals("decode") && !op.equals("prefill")) {
            System.err.println("jit-probe: --op must be decode or prefill, got " + op);
            return 2;
          }
          prefill = op.equals("prefill");
          break;
        case "--cache-dir":
          dir = Path.of(args[++i]);
          break;
        case "--head-dim":
          headDim = Integer.parseInt(args[++i]);
          break;
        case "--dtype":
          dtype = DType.valueOf(args[++i].toUpperCase(Locale.ROOT));
          break;
        default:
          System.err.println("usage: jit-probe [--op decode|prefill] [--cache-dir DIR] [--head-dim D] "
              + "[--dtype BF16|F16]");
          return 2;
      }
    }
    if (Device.cudaDeviceCount() == 0) {
      System.out.println("jit-probe: no CUDA device: " + Device.noCudaDeviceReason());
      return 2;
    }
    if (!JitCache.isCompilerAvailable()) {
      System.out.println("jit-probe: " + JitCache.compilerUnavailableReason());
      return 2;
    }
    if (dir != null) {
      JitCache.setDirectory(dir);
    }
    Device dev = Device.cuda(0);
    long t0 = System.nanoTime();
    // CUDA context and ahead-of-time kernels: not measured
    if (prefill) {
      prefill(dev, dtype, 128, 1, new double[1]);
    } else {
      decode(dev, dtype, 128, 1, new double[1]);
    }
    double initMs = (System.nanoTime() - t0) / 1e6;

    KernelConfig config = prefill ? KernelConfig.prefill(dev, dtype, headDim).build()
        : KernelConfig.decode(dev, dtype, headDim).build();
    long t1 = System.nanoTime();
    Flashinfer4j.WarmUpResult prepared = Flashinfer4j.warmUp(config).get(0);
    double prepareMs = (System.nanoTime() - t1) / 1e6;
    double[] firstCall = new double[1];
    double err = prefill ? prefill(dev, dtype, headDim, 2, firstCall) : decode(dev, dtype, headDim, 2, firstCall);
    double firstCallMs = firstCall[0];
    double tol = dtype == DType.BF16 ? 1e-2 : 2e-3;
    boolean ok = err <= tol;
    System.out.printf(Locale.ROOT,
        "jit-probe: op=%s head_dim=%d dtype=%s compiled=%b source=%s compile_ms=%.1f prepare_ms=%.1f first_call_ms=%.1f "
            + "first_use_ms=%.1f cuda_init_ms=%.1f max_err=%.2e %s key=%s dir=%s cache_files=%d%n",
        prefill ? "prefill" : "decode", headDim, dtype, prepared.compiled(), prepared.source(), prepared.compileMillis(), prepareMs, firstCallMs,
        prepareMs + firstCallMs, initMs, err, ok ? "ok" : "MISMATCH", prepared.key(), JitCache.directory(),
        JitCache.stats().files());
    return ok ? 0 : 1;
  }

  /**
   * One batch decode on dev; returns max |dev - CPU reference| (relative to 1 + |reference|) and puts the time of
   * the device's plan + run + synchronize into ms[0] (data upload and the CPU reference not included).
   */
  private static double decode(Device dev, DType dtype, int headDim, long seed, double[] ms) {
    int hqo = 32;
    int hkv = 8;
    int page = 16;
    int[] kvLens = {500, 1, 2000, 77};
    int[] tokenIndptr = new int[kvLens.length + 1];
    for (int b = 0; b < kvLens.length; b++) {
      tokenIndptr[b + 1] = tokenIndptr[b] + kvLens[b];
    }
    int nnz = tokenIndptr[kvLens.length];
    Random rnd = new Random(seed);
    float[] k = new float[nnz * hkv * headDim];
    float[] v = new float[k.length];
    float[] q = new float[kvLens.length * hqo * headDim];
    for (float[] a : new float[][] {k, v, q}) {
      for (int i = 0; i < a.length; i++) {
        a[i] = rnd.nextFloat() * 2 - 1;
      }
    }
    float[] onDev = run(dev, dtype, headDim, hqo, hkv, page, kvLens, tokenIndptr, k, v, q, ms);
    float[] onCpu = run(Device.cpu(), dtype, headDim, hqo, hkv, page, kvLens, tokenIndptr, k, v, q, new double[1]);
    double err = 0;
    for (int i = 0; i < onDev.length; i++) {
      double e = Math.abs(onDev[i] - onCpu[i]) / (1 + Math.abs(onCpu[i]));
      err = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(err, e);
    }
    return err;
  }

  /** As decode, for a causal batch prefill over ragged K/V (a prompt attending to itself and an append). */
  private static double prefill(Device dev, DType dtype, int headDim, long seed, double[] ms) {
    int hqo = 32;
    int hkv = 8;
    int[] qoIndptr = {0, 300, 317};
    int[] kvIndptr = {0, 300, 800};
    Random rnd = new Random(seed);
    float[] k = new float[kvIndptr[2] * hkv * headDim];
    float[] v = new float[k.length];
    float[] q = new float[qoIndptr[2] * hqo * headDim];
    for (float[] a : new float[][] {k, v, q}) {
      for (int i = 0; i < a.length; i++) {
        a[i] = rnd.nextFloat() * 2 - 1;
      }
    }
    float[] onDev = runPrefill(dev, dtype, headDim, hqo, hkv, qoIndptr, kvIndptr, k, v, q, ms);
    float[] onCpu = runPrefill(Device.cpu(), dtype, headDim, hqo, hkv, qoIndptr, kvIndptr, k, v, q, new double[1]);
    double err = 0;
    for (int i = 0; i < onDev.length; i++) {
      double e = Math.abs(onDev[i] - onCpu[i]) / (1 + Math.abs(onCpu[i]));
      err = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(err, e);
    }
    return err;
  }

  private static float[] runPrefill(Device dev, DType dtype, int headDim, int hqo, int hkv, int[] qoIndptr,
      int[] kvIndptr, float[] k, float[] v, float[] q, double[] ms) {
    int nq = qoIndptr[qoIndptr.length - 1];
    int nk = kvIndptr[kvIndptr.length - 1];
    try (Tensor keys = Tensor.fromFloats(dev, dtype, k, nk, hkv, headDim);
        Tensor values = Tensor.fromFloats(dev, dtype, v, nk, hkv, headDim);
        Tensor qt = Tensor.fromFloats(dev, dtype, q, nq, hqo, headDim);
        Tensor out = Tensor.empty(dev, dtype, nq, hqo, headDim);
        BatchPrefillWithRaggedKvCache prefill = new BatchPrefillWithRaggedKvCache(dev)) {
      dev.synchronize();
      long t0 = System.nanoTime();
      prefill.plan(qoIndptr, kvIndptr, hqo, hkv, headDim, dtype, AttentionMask.causal());
      prefill.run(qt, keys, values, out, null);
      dev.synchronize();
      ms[0] = (System.nanoTime() - t0) / 1e6;
      return out.toFloatArray();
    }
  }

  private static float[] run(Device dev, DType dtype, int headDim, int hqo, int hkv, int page, int[] kvLens,
      int[] tokenIndptr, float[] k, float[] v, float[] q, double[] ms) {
    int nnz = tokenIndptr[kvLens.length];
    int pages = 0;
    for (int len : kvLens) {
      pages += (len + page - 1) / page;
    }
    try (PageTable table = PageTable.contiguous(dev, page, kvLens);
        PagedKvCache cache = PagedKvCache.allocate(dev, dtype, KvLayout.NHD, pages, page, hkv, headDim);
        Tensor keys = Tensor.fromFloats(dev, dtype, k, nnz, hkv, headDim);
        Tensor values = Tensor.fromFloats(dev, dtype, v, nnz, hkv, headDim);
        Tensor qt = Tensor.fromFloats(dev, dtype, q, kvLens.length, hqo, headDim);
        Tensor out = Tensor.empty(dev, dtype, kvLens.length, hqo, headDim);
        BatchDecodeWithPagedKvCache decode = new BatchDecodeWithPagedKvCache(dev)) {
      PagedKv.append(keys, values, PagedKv.batchIndicesAndPositions(tokenIndptr, kvLens), cache, table, null);
      dev.synchronize();
      long t0 = System.nanoTime();
      decode.plan(table, hqo, hkv, headDim, page, dtype, AttentionOptions.defaults());
      decode.run(qt, cache, out, null);
      dev.synchronize();
      ms[0] = (System.nanoTime() - t0) / 1e6;
      return out.toFloatArray();
    }
  }
}
