package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.CudaEvent;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.DecodePath;
import io.github.flashinfer4j.attention.DecodePlanOptions;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import java.io.IOException;
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
 * The GPU decode benchmark: CUDA-event timing (warm-up, median of many runs; each timed window replays a CUDA graph
 * of 10 back-to-back runs, and single calls with the host's launch overhead are reported beside) of batch decode
 * over a paged cache
 * with shuffled pages and random data larger than L2, for the shapes of ../shared/PEERS.md, with the automatic
 * plan and with each path forced. Writes decode.json (one row per shape and variant) into the output folder;
 * python-compat/decode_report.py turns it, with the peers' figures from the same run, into BENCHMARKS.md's table.
 *
 * <p>Usage: {@code bench decode [--out DIR] [--quick] [--layout NHD|HND] [--dtype BF16|F16] [--page N] [--dim D]
 * [--shapes 64x4096:32/8,...] [--variants auto,cuda,tensor,nosplit] [--name NAME]} (writes NAME.json, default
 * decode.json)
 */
final class DecodeBenchmark {
  /** B, kv_len, H_qo, H_kv. */
  static final int[][] SHAPES = {
    {1, 32768, 32, 8}, {16, 4096, 32, 8}, {64, 4096, 32, 8}, {128, 2048, 32, 8}, {256, 1024, 32, 8},
    {64, 8192, 32, 8}, {64, 4096, 32, 32}, {64, 4096, 64, 8}, {64, 512, 32, 8}, {256, 256, 32, 8},
  };

  /** Runs per captured graph in the timed replays. */
  private static final int INNER = 10;

  private DecodeBenchmark() {}

  static int run(String[] args) throws IOException {
    Path out = Paths.get(".");
    boolean quick = false;
    KvLayout layout = KvLayout.NHD;
    DType dtype = DType.BF16;
    int pageSize = 16;
    int dim = 128;
    int[][] shapes = SHAPES;
    String name = "decode";
    List<String> only = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--shapes": shapes = parseShapes(args[++i]); break;
        case "--variants": only = Arrays.asList(args[++i].split(",")); break;
        case "--out": out = Paths.get(args[++i]); break;
        case "--quick": quick = true; break;
        case "--layout": layout = KvLayout.valueOf(args[++i]); break;
        case "--dtype": dtype = DType.valueOf(args[++i]); break;
        case "--page": pageSize = Integer.parseInt(args[++i]); break;
        case "--dim": dim = Integer.parseInt(args[++i]); break;
        case "--name": name = args[++i]; break;
        default:
          System.err.println("unknown argument " + args[i]);
          return 2;
      }
    }
    if (Device.cudaDeviceCount() == 0) {
      System.err.println("bench decode needs a CUDA device: " + Device.noCudaDeviceReason());
      return 2;
    }
    Device d = Device.cuda(0);
    Files.createDirectories(out);
    int warmup = quick ? 3 : 10;
    int reps = quick ? 10 : 50;
    List<String> rows = new ArrayList<>();
    System.out.printf(Locale.ROOT, "%s, %s %s page %d D=%d; median of %d runs after %d warm-up%n", d.name(), dtype,
        layout, pageSize, dim, reps, warmup);
    System.out.printf(Locale.ROOT, "%-18s %-8s %7s %9s %8s %12s %6s%n", "shape", "variant", "work", "ms", "TB/s",
        "1-call TB/s", "path");
    try (Stream stream = Stream.create(d); CudaEvent start = CudaEvent.create(d); CudaEvent end = CudaEvent.create(d);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(d)) {
      for (int[] s : shapes) {
        int batch = s[0];
        int kvLen = s[1];
        int hq = s[2];
        int hkv = s[3];
        int pagesPer = (kvLen + pageSize - 1) / pageSize;
        int numPages = batch * pagesPer;
        int[] lens = new int[batch];
        Arrays.fill(lens, kvLen);
        int[] indptr = new int[batch + 1];
        int[] last = new int[batch];
        for (int b = 0; b < batch; b++) {
          indptr[b + 1] = indptr[b] + pagesPer;
          last[b] = kvLen - (pagesPer - 1) * pageSize;
        }
        int[] indices = shuffled(numPages, new Random(batch * 31L + kvLen));
        double bytes = 2.0 * batch * kvLen * hkv * dim * dtype.byteSize();
        try (PageTable table = PageTable.of(d, pageSize, indptr, indices, last);
            PagedKvCache cache = PagedKvCache.allocate(d, dtype, layout, numPages, pageSize, hkv, dim);
            Tensor q = Tensor.empty(d, dtype, batch, hq, dim);
            Tensor o = Tensor.empty(d, dtype, batch, hq, dim);
            Tensor lse = Tensor.empty(d, DType.F32, batch, hq)) {
          cache.k().fillUniform(11, 1f, stream);
          cache.v().fillUniform(12, 1f, stream);
          q.fillUniform(13, 1f, stream);
          String[] names = {"auto", "cuda", "tensor", "nosplit"};
          DecodePlanOptions[] variants = {
            DecodePlanOptions.defaults(),
            DecodePlanOptions.builder().path(DecodePath.CUDA_CORES).build(),
            DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).build(),
            DecodePlanOptions.builder().neverSplit().build(),
          };
          for (int v = 0; v < variants.length; v++) {
            if (only != null && !only.contains(names[v])) {
              continue;
            }
            dec.plan(table, hq, hkv, dim, pageSize, dtype, AttentionOptions.defaults(), variants[v], stream);
            for (int i = 0; i < warmup; i++) {
              dec.run(q, cache, o, lse, stream);
            }
            // single calls: what one run() costs end to end, host launch overhead included
            float[] single = new float[Math.max(5, reps / 2)];
            for (int i = 0; i < single.length; i++) {
              start.record(stream);
              dec.run(q, cache, o, lse, stream);
              end.record(stream);
              single[i] = end.elapsedMillisSince(start);
            }
            Arrays.sort(single);
            // kernel time: a CUDA graph of INNER back-to-back runs (as a serving loop replays them), so the host's
            // launch overhead does not sit between the events
            float[] ms = new float[reps];
            try (CudaGraph graph = CudaGraph.capture(stream, () -> {
              for (int i = 0; i < INNER; i++) {
                dec.run(q, cache, o, lse, stream);
              }
            })) {
              graph.replay(stream);
              graph.replay(stream);
              for (int i = 0; i < reps; i++) {
                start.record(stream);
                graph.replay(stream);
                end.record(stream);
                ms[i] = end.elapsedMillisSince(start) / INNER;
              }
            }
            Arrays.sort(ms);
            double median = ms[reps / 2];
            double tbps = bytes / (median * 1e-3) / 1e12;
            String shape = batch + "x" + kvLen + " " + hq + "/" + hkv;
            System.out.printf(Locale.ROOT, "%-18s %-8s %7d %9.4f %8.3f %12.3f %6s%n", shape, names[v],
                dec.numWorkItems(), median, tbps, bytes / (single[single.length / 2] * 1e-3) / 1e12, dec.path());
            rows.add(String.format(Locale.ROOT,
                "{\"B\":%d,\"KV\":%d,\"H\":%d,\"Hkv\":%d,\"D\":%d,\"page\":%d,\"dtype\":\"%s\",\"layout\":\"%s\","
                    + "\"variant\":\"%s\",\"path\":\"%s\",\"work_items\":%d,\"chunk\":%d,\"ms\":%.5f,\"min_ms\":%.5f,"
                    + "\"TBps\":%.4f,\"single_call_ms\":%.5f,\"single_call_TBps\":%.4f,\"GB\":%.4f}",
                batch, kvLen, hq, hkv, dim, pageSize, dtype, layout, names[v], dec.path(), dec.numWorkItems(),
                dec.chunkSize(), median, ms[0], tbps, single[single.length / 2],
                bytes / (single[single.length / 2] * 1e-3) / 1e12, bytes / 1e9));
          }
          stream.synchronize();
        }
      }
    }
    String json = "{\"device\":\"" + d.name() + "\",\"date\":\"" + LocalDate.now() + "\",\"decode\":[\n"
        + String.join(",\n", rows) + "\n]}\n";
    Files.write(out.resolve(name + ".json"), json.getBytes(StandardCharsets.UTF_8));
    System.out.println("wrote " + out.resolve(name + ".json"));
    return 0;
  }

  /** "64x4096:32/8,1x32768:32/8" -> {{64, 4096, 32, 8}, {1, 32768, 32, 8}}. */
  private static int[][] parseShapes(String spec) {
    String[] parts = spec.split(",");
    int[][] out = new int[parts.length][];
    for (int i = 0; i < parts.length; i++) {
      String[] bk = parts[i].split("[x:/]");
      out[i] = new int[] {Integer.parseInt(bk[0]), Integer.parseInt(bk[1]), Integer.parseInt(bk[2]),
          Integer.parseInt(bk[3])};
    }
    return out;
  }

  /** 0 .. n-1 in a random order (page ids scattered over the pool, as a serving cache has them). */
  static int[] shuffled(int n, Random rnd) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      int t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}
