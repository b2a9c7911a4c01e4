package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.CudaEvent;
import io.github.flashinfer4j.CudaException;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4jException;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AttentionMask;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.BatchPrefillWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithRaggedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.attention.SinglePrefill;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The GPU prefill benchmark: prompts attending to themselves (qo_len = kv_len per request, causal or not) through the
 * public API, timed with CUDA events around single {@code run()} calls (prefill kernels run for milliseconds, so the
 * host's launch overhead is noise), warm-up, then the median of many runs. Variants: {@code ragged}
 * ({@link BatchPrefillWithRaggedKvCache}, every shape), {@code single} ({@link SinglePrefill}, batch-1 shapes) and
 * {@code paged} ({@link BatchPrefillWithPagedKvCache} over a cache of page size 16 with the pages shuffled over the
 * pool). Random data ({@link Tensor#fillUniform}); outputs poisoned before a first run and checked for NaN after it.
 * Writes prefill.json; python-compat/prefill_report.py turns it, with the peers' figures of the same run, into
 * BENCHMARKS.md's prefill table.
 *
 * <p>TFLOP/s counts {@code 4 * qo_len * kv_len * H_qo * D} per request, halved when causal (FlashInfer's and
 * FlashAttention's convention, also that of python-compat/torch_peers.py).
 *
 * <p>Usage: {@code bench prefill [--out DIR] [--quick] [--shapes 1x8192:32/8:causal,...] [--dim 64,128,256]
 * [--variants ragged,single,paged] [--paged] [--page N] [--dtype BF16|F16] [--device cuda|cpu] [--warmup N]
 * [--reps N] [--name NAME]} (writes NAME.json, default prefill.json). {@code --paged} is {@code --variants paged}.
 * A shape is {@code BxL[:Hqo/Hkv][:causal|full]}, default heads 32/8, default causal. {@code --device cpu} times the
 * CPU reference with the wall clock (a smoke test, not a benchmark).
 */
final class PrefillBenchmark {
  /** Issue 4's shapes (B x L, H_qo/H_kv, causal), run at each head dim of {@link #DIMS}, D=128 first. */
  static final Shape[] SHAPES = {
    new Shape(1, 8192, 32, 8, true), new Shape(1, 8192, 32, 8, false), new Shape(1, 16384, 32, 8, true),
    new Shape(4, 2048, 32, 8, true),
  };
  static final int[] DIMS = {128, 64, 256};
  static final List<String> VARIANTS = List.of("ragged", "single", "paged");

  /** One benchmark shape: {@code batch} requests of {@code len} query rows over {@code len} keys each. */
  record Shape(int batch, int len, int hq, int hkv, boolean causal) {
    String label() {
      return batch + "x" + len + " " + hq + "/" + hkv + " " + (causal ? "causal" : "full");
    }
  }

  /** Parsed command line. */
  record Config(Path out, boolean quick, Shape[] shapes, int[] dims, List<String> variants, int pageSize,
      DType dtype, boolean cpu, int warmup, int reps, String name) {}

  private PrefillBenchmark() {}

  static int run(String[] args) throws IOException {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) throws IOException {
    Config c;
    try {
      c = parse(args);
    } catch (IllegalArgumentException e) {
      err.println("bench prefill: " + e.getMessage());
      err.println("usage: bench prefill [--out DIR] [--quick] [--shapes BxL[:Hqo/Hkv][:causal|full],...] "
          + "[--dim D[,D...]] [--variants ragged,single,paged] [--paged] [--page N] [--dtype BF16|F16] "
          + "[--device cuda|cpu] [--warmup N] [--reps N] [--name NAME]");
      return 2;
    }
    Device d;
    if (c.cpu()) {
      d = Device.cpu();
    } else {
      if (Device.cudaDeviceCount() == 0) {
        err.println("bench prefill needs a CUDA device (or --device cpu for a smoke test): "
            + Device.noCudaDeviceReason());
        return 2;
      }
      d = Device.cuda(0);
    }
    Files.createDirectories(c.out());
    List<String> rows = new ArrayList<>();
    int failures = 0;
    out.printf(Locale.ROOT, "%s, %s, page %d; median of %d single run() calls after %d warm-up (%s)%n", d.name(),
        c.dtype(), c.pageSize(), c.reps(), c.warmup(), c.cpu() ? "wall clock" : "CUDA events");
    out.printf(Locale.ROOT, "%-26s %5s %-7s %10s %10s %9s%n", "shape", "D", "variant", "ms", "min ms", "TFLOP/s");
    try (Stream stream = Stream.create(d);
        CudaEvent start = c.cpu() ? null : CudaEvent.create(d);
        CudaEvent end = c.cpu() ? null : CudaEvent.create(d);
        BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(d);
        BatchPrefillWithPagedKvCache paged = new BatchPrefillWithPagedKvCache(d)) {
      dims:
      for (int dim : c.dims()) {
        for (Shape s : c.shapes()) {
          int nnz = s.batch() * s.len();
          int[] indptr = new int[s.batch() + 1];
          for (int b = 0; b < s.batch(); b++) {
            indptr[b + 1] = indptr[b] + s.len();
          }
          AttentionMask mask = AttentionMask.causal(s.causal());
          double flops = flops(s, dim);
          try (Tensor q = Tensor.empty(d, c.dtype(), nnz, s.hq(), dim);
              Tensor o = Tensor.empty(d, c.dtype(), nnz, s.hq(), dim);
              Tensor k = Tensor.empty(d, c.dtype(), nnz, s.hkv(), dim);
              Tensor v = Tensor.empty(d, c.dtype(), nnz, s.hkv(), dim)) {
            q.fillUniform(21, 1f, stream);
            k.fillUniform(22, 1f, stream);
            v.fillUniform(23, 1f, stream);
            for (String variant : c.variants()) {
              Runnable call;
              PagedKvCache cache = null;
              PageTable table = null;
              try {
                switch (variant) {
                  case "ragged":
                    ragged.plan(indptr, indptr, s.hq(), s.hkv(), dim, c.dtype(), mask, AttentionOptions.defaults(),
                        stream);
                    call = () -> ragged.run(q, k, v, o, null, stream);
                    break;
                  case "single":
                    if (s.batch() != 1) {
                      continue;
                    }
                    call = () -> SinglePrefill.run(q, k, v, o, null, KvLayout.NHD, mask, AttentionOptions.defaults(),
                        stream);
                    break;
                  case "paged":
                    int pagesPer = (s.len() + c.pageSize() - 1) / c.pageSize();
                    int numPages = s.batch() * pagesPer;
                    int[] pIndptr = new int[s.batch() + 1];
                    int[] last = new int[s.batch()];
                    for (int b = 0; b < s.batch(); b++) {
                      pIndptr[b + 1] = pIndptr[b] + pagesPer;
                      last[b] = s.len() - (pagesPer - 1) * c.pageSize();
                    }
                    table = PageTable.of(d, c.pageSize(), pIndptr,
                        DecodeBenchmark.shuffled(numPages, new Random(s.batch() * 31L + s.len())), last);
                    cache = PagedKvCache.allocate(d, c.dtype(), KvLayout.NHD, numPages, c.pageSize(), s.hkv(), dim);
                    cache.k().fillUniform(24, 1f, stream);
                    cache.v().fillUniform(25, 1f, stream);
                    paged.plan(indptr, table, s.hq(), s.hkv(), dim, c.dtype(), mask, AttentionOptions.defaults(),
                        stream);
                    PagedKvCache theCache = cache;
                    call = () -> paged.run(q, theCache, o, null, stream);
                    break;
                  default:
                    throw new AssertionError(variant);
                }
                // a first run into a poisoned output: every element must be written and finite
                o.fillBytes(0xff);
                call.run();
                stream.synchronize();
                long bad = countNonFinite(o.toBits(), c.dtype());
                if (bad != 0) {
                  err.printf(Locale.ROOT, "%s D=%d %s: %d of %d output elements are NaN/Inf%n", s.label(), dim,
                      variant, bad, o.numel());
                  failures++;
                }
                for (int i = 0; i < c.warmup(); i++) {
                  call.run();
                }
                float[] ms = new float[c.reps()];
                for (int i = 0; i < ms.length; i++) {
                  if (c.cpu()) {
                    long t0 = System.nanoTime();
                    call.run();
                    ms[i] = (System.nanoTime() - t0) / 1e6f;
                  } else {
                    start.record(stream);
                    call.run();
                    end.record(stream);
                    ms[i] = end.elapsedMillisSince(start);
                  }
                }
                stream.synchronize();
                Arrays.sort(ms);
                double median = ms[ms.length / 2];
                double tflops = flops / (median * 1e-3) / 1e12;
                out.printf(Locale.ROOT, "%-26s %5d %-7s %10.4f %10.4f %9.1f%n", s.label(), dim, variant, median,
                    ms[0], tflops);
                rows.add(row(s, dim, c.dtype(), variant, variant.equals("paged") ? c.pageSize() : 0, median, ms[0],
                    ms.length, flops, bad == 0));
              } catch (Flashinfer4jException e) {
                // an unsupported configuration or a failed launch: reported in its row, the others still run
                err.printf(Locale.ROOT, "%s D=%d %s: %s%n", s.label(), dim, variant, e);
                rows.add(errorRow(s, dim, c.dtype(), variant, e.toString()));
                failures++;
                if (e instanceof CudaException) {
                  break dims;  // the context may be unusable: stop, keeping the rows so far
                }
              } finally {
                if (cache != null) {
                  cache.close();
                }
                if (table != null) {
                  table.close();
                }
              }
            }
          }
        }
      }
    }
    String json = "{\"device\":" + Json.quote(d.name()) + ",\"date\":\"" + LocalDate.now() + "\",\"timing\":"
        + Json.quote(c.cpu() ? "wall clock, CPU reference" : "CUDA events, single run() calls") + ",\"warmup\":"
        + c.warmup() + ",\"reps\":" + c.reps() + ",\"prefill\":[\n" + String.join(",\n", rows) + "\n]}\n";
    Path file = c.out().resolve(c.name() + ".json");
    Files.write(file, json.getBytes(StandardCharsets.UTF_8));
    out.println("wrote " + file);
    return failures == 0 ? 0 : 1;
  }

  /** Parses the command line; IllegalArgumentException names the bad argument. */
  static Config parse(String[] args) {
    Path out = Paths.get(".");
    boolean quick = false;
    Shape[] shapes = SHAPES;
    int[] dims = DIMS;
    List<String> variants = VARIANTS;
    int pageSize = 16;
    DType dtype = DType.BF16;
    boolean cpu = false;
    Integer warmup = null;
    Integer reps = null;
    String name = "prefill";
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--quick")) {
        quick = true;
        continue;
      }
      if (a.equals("--paged")) {
        variants = List.of("paged");
        continue;
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(a.startsWith("--") ? a + " needs a value" : "unknown argument " + a);
      }
      String val = args[++i];
      switch (a) {
        case "--out": out = Paths.get(val); break;
        case "--shapes": shapes = parseShapes(val); break;
        case "--dim": dims = parseInts(val, "--dim"); break;
        case "--variants": variants = parseVariants(val); break;
        case "--page": pageSize = positive(val, "--page"); break;
        case "--dtype":
          if (!val.equals("BF16") && !val.equals("F16")) {
            throw new IllegalArgumentException("--dtype must be BF16 or F16, got " + val);
          }
          dtype = DType.valueOf(val);
          break;
        case "--device":
          if (!val.equals("cuda") && !val.equals("cpu")) {
            throw new IllegalArgumentException("--device must be cuda or cpu, got " + val);
          }
          cpu = val.equals("cpu");
          break;
        case "--warmup": warmup = nonNegative(val, "--warmup"); break;
        case "--reps": reps = positive(val, "--reps"); break;
        case "--name": name = val; break;
        default: throw new IllegalArgumentException("unknown argument " + a);
      }
    }
    return new Config(out, quick, shapes, dims, variants, pageSize, dtype, cpu,
        warmup != null ? warmup : quick ? 3 : 10, reps != null ? reps : quick ? 10 : 50, name);
  }

  /** "1x8192:32/8:causal,4x2048,1x8192:full" (heads default 32/8, mask default causal). */
  static Shape[] parseShapes(String spec) {
    String[] parts = spec.split(",");
    Shape[] out = new Shape[parts.length];
    for (int i = 0; i < parts.length; i++) {
      String p = parts[i].trim();
      String[] f = p.split(":");
      String[] bl = f[0].split("x");
      if (bl.length != 2 || f.length > 3) {
        throw new IllegalArgumentException("--shapes: " + p + " is not BxL[:Hqo/Hkv][:causal|full]");
      }
      int hq = 32;
      int hkv = 8;
      boolean causal = true;
      for (int j = 1; j < f.length; j++) {
        if (f[j].equals("causal") || f[j].equals("full")) {
          causal = f[j].equals("causal");
        } else {
          String[] h = f[j].split("/");
          if (h.length != 2) {
            throw new IllegalArgumentException("--shapes: " + p + ": " + f[j] + " is neither Hqo/Hkv nor causal|full");
          }
          hq = positive(h[0], "--shapes " + p + " H_qo");
          hkv = positive(h[1], "--shapes " + p + " H_kv");
        }
      }
      if (hq % hkv != 0) {
        throw new IllegalArgumentException("--shapes: " + p + ": H_qo " + hq + " is not a multiple of H_kv " + hkv);
      }
      out[i] = new Shape(positive(bl[0], "--shapes " + p + " B"), positive(bl[1], "--shapes " + p + " L"), hq, hkv,
          causal);
    }
    return out;
  }

  private static List<String> parseVariants(String spec) {
    List<String> out = new ArrayList<>();
    for (String v : spec.split(",")) {
      if (!VARIANTS.contains(v)) {
        throw new IllegalArgumentException("--variants: " + v + " is not one of " + VARIANTS);
      }
      if (!out.contains(v)) {
        out.add(v);
      }
    }
    return out;
  }

  private static int[] parseInts(String spec, String what) {
    String[] parts = spec.split(",");
    int[] out = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      out[i] = positive(parts[i], what);
    }
    return out;
  }

  private static int positive(String s, String what) {
    int v = nonNegative(s, what);
    if (v == 0) {
      throw new IllegalArgumentException(what + " must be > 0, got 0");
    }
    return v;
  }

  private static int nonNegative(String s, String what) {
    int v;
    try {
      v = Integer.parseInt(s.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(what + " must be an integer, got " + s);
    }
    if (v < 0) {
      throw new IllegalArgumentException(what + " must be >= 0, got " + v);
    }
    return v;
  }

  /** Floating-point operations of one run: 4 * L * L * H_qo * D per request (QK^T and PV), halved when causal. */
  static double flops(Shape s, int dim) {
    double perRequest = 4.0 * s.len() * (double) s.len() * s.hq() * dim;
    return s.batch() * perRequest * (s.causal() ? 0.5 : 1.0);
  }

  /** One JSON row of prefill.json. */
  static String row(Shape s, int dim, DType dtype, String variant, int page, double medianMs, double minMs, int reps,
      double flops, boolean finite) {
    return String.format(Locale.ROOT,
        "{\"B\":%d,\"qo_len\":%d,\"kv_len\":%d,\"H\":%d,\"Hkv\":%d,\"D\":%d,\"causal\":%b,\"dtype\":\"%s\","
            + "\"layout\":\"NHD\",\"variant\":\"%s\",\"page\":%d,\"ms\":%.5f,\"min_ms\":%.5f,\"reps\":%d,"
            + "\"TFLOP\":%.9g,\"TFLOPs\":%.3f,\"finite\":%b}",
        s.batch(), s.len(), s.len(), s.hq(), s.hkv(), dim, s.causal(), dtype, variant, page, medianMs, minMs, reps,
        flops / 1e12, flops / (medianMs * 1e-3) / 1e12, finite);
  }

  /** A row for a variant that could not run, with the error instead of timings. */
  static String errorRow(Shape s, int dim, DType dtype, String variant, String error) {
    return String.format(Locale.ROOT,
        "{\"B\":%d,\"qo_len\":%d,\"kv_len\":%d,\"H\":%d,\"Hkv\":%d,\"D\":%d,\"causal\":%b,\"dtype\":\"%s\","
            + "\"layout\":\"NHD\",\"variant\":\"%s\",\"error\":%s}",
        s.batch(), s.len(), s.len(), s.hq(), s.hkv(), dim, s.causal(), dtype, variant, Json.quote(error));
  }

  /** Elements of F16/BF16 bits that are NaN or infinite. */
  static long countNonFinite(short[] bits, DType dtype) {
    int exp = dtype == DType.BF16 ? 0x7f80 : 0x7c00;
    long n = 0;
    for (short b : bits) {
      if ((b & exp) == exp) {
        n++;
      }
    }
    return n;
  }

}
