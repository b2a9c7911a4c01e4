package io.github.flashinfer4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.bench.PrefillBenchmark.Config;
import io.github.flashinfer4j.bench.PrefillBenchmark.Shape;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What of {@code bench prefill} runs without a GPU: argument parsing, FLOP counting, the NaN check, the JSON rows,
 * the whole command on the CPU reference (a smoke test with tiny shapes), and python-compat/prefill_report.py on
 * synthetic and smoke-test output (skipped, with the reason, when python3 is missing).
 */
class PrefillBenchmarkTest {
  @TempDir
  Path tmp;

  @Test
  void defaultsAreIssue4sShapesAtThreeHeadDims() {
    Config c = PrefillBenchmark.parse(new String[0]);
    assertEquals(List.of(new Shape(1, 8192, 32, 8, true), new Shape(1, 8192, 32, 8, false),
        new Shape(1, 16384, 32, 8, true), new Shape(4, 2048, 32, 8, true)), Arrays.asList(c.shapes()));
    assertArrayEquals(new int[] {128, 64, 256}, c.dims());
    assertEquals(List.of("ragged", "single", "paged"), c.variants());
    assertEquals(16, c.pageSize());
    assertEquals(DType.BF16, c.dtype());
    assertFalse(c.cpu());
    assertEquals(10, c.warmup());
    assertEquals(50, c.reps());
    assertEquals("prefill", c.name());
    assertEquals(Paths.get("."), c.out());
    Config q = PrefillBenchmark.parse(new String[] {"--quick"});
    assertEquals(3, q.warmup());
    assertEquals(10, q.reps());
  }

  @Test
  void options() {
    Config c = PrefillBenchmark.parse(new String[] {"--shapes", "1x8192:32/8:causal,4x2048,1x512:full,2x100:8/8",
        "--dim", "64", "--paged", "--page", "1", "--dtype", "F16", "--device", "cpu", "--out", "x/y", "--quick",
        "--reps", "7", "--warmup", "0", "--name", "p64"});
    assertEquals(List.of(new Shape(1, 8192, 32, 8, true), new Shape(4, 2048, 32, 8, true),
        new Shape(1, 512, 32, 8, false), new Shape(2, 100, 8, 8, true)), Arrays.asList(c.shapes()));
    assertArrayEquals(new int[] {64}, c.dims());
    assertEquals(List.of("paged"), c.variants());
    assertEquals(1, c.pageSize());
    assertEquals(DType.F16, c.dtype());
    assertTrue(c.cpu());
    assertEquals(Paths.get("x/y"), c.out());
    assertEquals(7, c.reps(), "--reps wins over --quick");
    assertEquals(0, c.warmup());
    assertEquals("p64", c.name());
    assertEquals(List.of("single", "ragged"),
        PrefillBenchmark.parse(new String[] {"--variants", "single,ragged,single"}).variants());
    assertArrayEquals(new int[] {64, 256}, PrefillBenchmark.parse(new String[] {"--dim", "64,256"}).dims());
  }

  @Test
  void badArgumentsNameTheArgument() throws IOException {
    String[][] bad = {
      {"--bogus", "1"}, {"stray"}, {"--dim"}, {"--dim", "0"}, {"--dim", "x"}, {"--page", "-1"},
      {"--shapes", "1x"}, {"--shapes", "8192"}, {"--shapes", "1x8192:32/7"}, {"--shapes", "1x8192:32"},
      {"--shapes", "1x8192:32/8:causal:full:x"}, {"--dtype", "F32"}, {"--device", "tpu"}, {"--variants", "cascade"},
      {"--reps", "0"},
    };
    String[] expected = {
      "unknown argument --bogus", "unknown argument stray", "--dim needs a value", "--dim must be > 0, got 0",
      "--dim must be an integer, got x", "--page must be >= 0, got -1", "1x is not BxL", "8192 is not BxL",
      "H_qo 32 is not a multiple of H_kv 7", "32 is neither Hqo/Hkv nor causal|full", "is not BxL",
      "--dtype must be BF16 or F16, got F32", "--device must be cuda or cpu, got tpu",
      "cascade is not one of [ragged, single, paged]", "--reps must be > 0, got 0",
    };
    for (int i = 0; i < bad.length; i++) {
      String[] args = bad[i];
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PrefillBenchmark.parse(args),
          String.join(" ", args));
      assertTrue(e.getMessage().contains(expected[i]), String.join(" ", args) + ": " + e.getMessage());
    }
    Run r = bench("--shapes", "1x");
    assertEquals(2, r.rc);
    assertTrue(r.err.contains("bench prefill: --shapes: 1x is not BxL") && r.err.contains("usage: bench prefill"),
        r.err);
  }

  @Test
  void flopsAreFourLSquaredHdPerRequestHalvedWhenCausal() {
    // 1 x 8192 causal, 32 heads, D=128: 4 * 8192^2 * 32 * 128 / 2 = 2^39
    assertEquals(0x1p39, PrefillBenchmark.flops(new Shape(1, 8192, 32, 8, true), 128));
    assertEquals(0x1p40, PrefillBenchmark.flops(new Shape(1, 8192, 32, 8, false), 128));
    assertEquals(0x1p41, PrefillBenchmark.flops(new Shape(1, 16384, 32, 8, true), 128));
    // the batch multiplies, the KV heads do not count (GQA reads fewer K/V rows, computes the same)
    assertEquals(4 * 4.0 * 2048 * 2048 * 32 * 128 / 2, PrefillBenchmark.flops(new Shape(4, 2048, 32, 8, true), 128));
    assertEquals(PrefillBenchmark.flops(new Shape(4, 2048, 32, 32, true), 128),
        PrefillBenchmark.flops(new Shape(4, 2048, 32, 8, true), 128));
    assertEquals(0x1p38, PrefillBenchmark.flops(new Shape(1, 8192, 32, 8, true), 64));
    // no int overflow on long prompts: 1 x 131072, 64 heads, D=256
    assertEquals(4.0 * 131072 * 131072 * 64 * 256, PrefillBenchmark.flops(new Shape(1, 131072, 64, 8, false), 256));
  }

  @Test
  void nonFiniteCount() {
    short[] bf16 = {0x3f80, (short) 0xffff, 0x7f80, (short) 0xff80, 0x7f7f, 0};
    assertEquals(3, PrefillBenchmark.countNonFinite(bf16, DType.BF16));
    short[] f16 = {0x3c00, 0x7c00, (short) 0xfe00, 0x7bff, (short) 0x8000};
    assertEquals(2, PrefillBenchmark.countNonFinite(f16, DType.F16));
  }

  @Test
  void jsonRows() {
    Shape s = new Shape(1, 8192, 32, 8, true);
    double flops = PrefillBenchmark.flops(s, 128);
    double ms = flops / 359e12 * 1e3;  // FlashInfer's recorded 359 TFLOP/s
    Map<String, Object> r = Json.parseObject(
        PrefillBenchmark.row(s, 128, DType.BF16, "paged", 16, ms, ms * 0.99, 50, flops, true));
    assertEquals(1L, r.get("B"));
    assertEquals(8192L, r.get("qo_len"));
    assertEquals(8192L, r.get("kv_len"));
    assertEquals(32L, r.get("H"));
    assertEquals(8L, r.get("Hkv"));
    assertEquals(128L, r.get("D"));
    assertEquals(true, r.get("causal"));
    assertEquals("BF16", r.get("dtype"));
    assertEquals("paged", r.get("variant"));
    assertEquals(16L, r.get("page"));
    assertEquals(359.0, ((Number) r.get("TFLOPs")).doubleValue(), 1e-3);
    assertEquals(0.549755813888, ((Number) r.get("TFLOP")).doubleValue(), 1e-9);
    assertEquals(ms, ((Number) r.get("ms")).doubleValue(), 1e-5);
    assertEquals(50L, r.get("reps"));
    assertEquals(true, r.get("finite"));
    Map<String, Object> e = Json.parseObject(PrefillBenchmark.errorRow(new Shape(4, 2048, 32, 8, false), 256,
        DType.BF16, "paged", "UnsupportedConfigurationException: \"head_dim\"\nline 2"));
    assertEquals("UnsupportedConfigurationException: \"head_dim\"\nline 2", e.get("error"));
    assertEquals(false, e.get("causal"));
    assertFalse(e.containsKey("TFLOPs"));
  }

  /** The command end to end on the CPU reference, then its output through prefill_report.py. */
  @Test
  @SuppressWarnings("unchecked")
  void cpuSmokeRunWritesPrefillJsonThatTheReportReads() throws Exception {
    Run r = bench("--device", "cpu", "--quick", "--reps", "3", "--warmup", "1", "--shapes", "1x48:4/2,2x33:4/2:full",
        "--dim", "64", "--out", tmp.toString());
    assertEquals(0, r.rc, r.out + r.err);
    assertTrue(r.out.contains("CPU reference, BF16, page 16; median of 3 single run() calls after 1 warm-up"), r.out);
    Map<String, Object> doc = Json.parseObject(Files.readString(tmp.resolve("prefill.json")));
    assertEquals("CPU reference", doc.get("device"));
    assertEquals(3L, doc.get("reps"));
    List<Object> rows = (List<Object>) doc.get("prefill");
    List<String> seen = new ArrayList<>();
    for (Object o : rows) {
      Map<String, Object> row = (Map<String, Object>) o;
      seen.add(row.get("B") + "x" + row.get("qo_len") + " " + row.get("variant"));
      assertEquals(64L, row.get("D"));
      assertEquals(4L, row.get("H"));
      assertEquals(2L, row.get("Hkv"));
      assertEquals(true, row.get("finite"), "the CPU reference writes every output: " + row);
      assertEquals(row.get("variant").equals("paged") ? 16L : 0L, row.get("page"));
      assertTrue(((Number) row.get("ms")).doubleValue() > 0, row.toString());
      assertTrue(((Number) row.get("min_ms")).doubleValue() <= ((Number) row.get("ms")).doubleValue());
      Shape s = new Shape(((Number) row.get("B")).intValue(), ((Number) row.get("qo_len")).intValue(), 4, 2,
          (Boolean) row.get("causal"));
      double tflop = PrefillBenchmark.flops(s, 64) / 1e12;
      assertEquals(tflop, ((Number) row.get("TFLOP")).doubleValue(), tflop * 1e-8);
    }
    // single only for batch 1
    assertEquals(List.of("1x48 ragged", "1x48 single", "1x48 paged", "2x33 ragged", "2x33 paged"), seen);

    Run rep = report(tmp.resolve("prefill.json"));
    assertEquals(0, rep.rc, rep.out + rep.err);
    assertTrue(rep.out.startsWith("### Prefill, CPU reference, "), rep.out);
    assertTrue(rep.out.contains("Peers: not measured in this run"), rep.out);
    assertTrue(tableRow(rep.out, "1 x 48 causal, 4/2, D=64").endsWith("| - | - | - | - | - | - |"), rep.out);
    assertTrue(rep.out.contains("(`SinglePrefill`, batch 1, same data: 1 x 48 causal, 4/2, D=64: "), rep.out);
  }

  @Test
  void reportTableAgainstTargetsAndPeers() throws Exception {
    List<String> rows = new ArrayList<>();
    // D=128: two targets met, one missed, one paged variant 20% behind ragged; D=64 rows have no target
    rows.add(row(1, 8192, 128, true, "ragged", 381.0));
    rows.add(row(1, 8192, 128, true, "paged", 370.0));
    rows.add(row(1, 8192, 128, false, "ragged", 409.9));
    rows.add(row(1, 8192, 128, false, "paged", 400.0));
    rows.add(row(4, 2048, 128, true, "ragged", 330.0));
    rows.add(row(4, 2048, 128, true, "paged", 264.0));
    rows.add(row(1, 8192, 64, true, "ragged", 300.0));
    rows.add(row(1, 8192, 64, true, "paged", 290.0));
    rows.add("{\"B\":1,\"qo_len\":16384,\"kv_len\":16384,\"H\":32,\"Hkv\":8,\"D\":256,\"causal\":true,"
        + "\"dtype\":\"BF16\",\"layout\":\"NHD\",\"variant\":\"paged\",\"error\":\"UnsupportedConfigurationException: smem\"}");
    // the runner emits D=64 before D=128 here: the report still puts the rows with targets first
    List<String> ordered = new ArrayList<>(rows.subList(6, 9));
    ordered.addAll(rows.subList(0, 6));
    Path ours = tmp.resolve("prefill.json");
    Files.writeString(ours, "{\"device\":\"NVIDIA H100 80GB HBM3\",\"date\":\"2026-12-01\",\"timing\":\"CUDA events, "
        + "single run() calls\",\"warmup\":10,\"reps\":50,\"prefill\":[" + String.join(",", ordered) + "]}");
    Path peers = tmp.resolve("peers.json");
    Files.writeString(peers, "{\"device\":\"NVIDIA H100 80GB HBM3\",\"copy_TBps\":2.9,\"gemm_bf16_TFLOPs\":771.2,"
        + "\"decode\":[],\"prefill\":["
        + "{\"B\":1,\"L\":8192,\"H\":32,\"Hkv\":8,\"D\":128,\"causal\":true,\"flash_TFLOPs\":316.3,\"flash_gqa\":"
        + "\"enable_gqa\",\"cudnn_TFLOPs\":572.6,\"cudnn_gqa\":\"enable_gqa\",\"efficient_TFLOPs\":\"err:no\"},"
        + "{\"B\":4,\"L\":2048,\"H\":32,\"Hkv\":8,\"D\":128,\"causal\":true,\"flash_TFLOPs\":273.5,\"cudnn_TFLOPs\":477.0},"
        + "{\"B\":1,\"L\":8192,\"H\":32,\"Hkv\":8,\"D\":64,\"causal\":true,\"flash_TFLOPs\":250.0,\"flash_gqa\":"
        + "\"enable_gqa\",\"cudnn_TFLOPs\":420.0,\"cudnn_gqa\":\"expanded\"},"
        + "{\"B\":1,\"L\":16384,\"H\":32,\"Hkv\":8,\"D\":256,\"causal\":true,\"flash_TFLOPs\":330.0,\"flash_gqa\":"
        + "\"enable_gqa\",\"cudnn_TFLOPs\":\"err:No available kernel\"}]}");
    Run r = report(ours, peers);
    assertEquals(0, r.rc, r.out + r.err);
    String t = r.out;
    assertTrue(t.startsWith("### Prefill, NVIDIA H100 80GB HBM3, 2026-12-01: BF16, NHD"), t);
    assertTrue(t.contains("| shape | flashinfer4j ragged | % of GEMM | paged | paged/ragged | FlashInfer FA2 (recorded) "
        + "| PyTorch FA2 | cuDNN | ours/FlashInfer | target | met |"), t);
    assertEquals("| 1 x 8192 causal, 32/8, D=128 | 381.0 | 49% | 370.0 | 0.97 | 359 | 316.3 | 572.6 | 1.06 | 380 | yes |",
        tableRow(t, "1 x 8192 causal, 32/8, D=128"));
    assertEquals("| 1 x 8192 non-causal, 32/8, D=128 | 409.9 | 53% | 400.0 | 0.98 | 393 | - | - | 1.04 | 410 | no |",
        tableRow(t, "1 x 8192 non-causal, 32/8, D=128"));
    assertEquals("| 4 x 2048 causal, 32/8, D=128 | 330.0 | 43% | 264.0 | 0.80 | 312 | 273.5 | 477.0 | 1.06 | 330 | yes |",
        tableRow(t, "4 x 2048 causal, 32/8, D=128"));
    assertEquals("| 1 x 8192 causal, 32/8, D=64 | 300.0 | 39% | 290.0 | 0.97 | - | 250.0 | 420.0 (exp.) | - | - | - |",
        tableRow(t, "1 x 8192 causal, 32/8, D=64"));
    assertEquals("| 1 x 16384 causal, 32/8, D=256 | - | - | - | - | - | 330.0 | err | - | - | - |",
        tableRow(t, "1 x 16384 causal, 32/8, D=256"));
    assertTrue(t.indexOf("D=128 |") < t.indexOf("D=64 |") && t.indexOf("D=64 |") < t.indexOf("D=256 |"), t);
    assertTrue(t.contains("Paged within 10% of ragged (issue 4): no for 4 x 2048 causal, 32/8, D=128: 0.80."), t);
    assertTrue(t.contains("or K/V expanded to H_qo heads before the timed call where the backend refused it, "
        + "marked (exp.)"), t);
    assertTrue(t.contains("bf16 GEMM 8192^3 in this run: 771 TFLOP/s"), t);
    assertTrue(t.contains("Not measured / failed: 1 x 16384 causal, 32/8, D=256 paged: "
        + "UnsupportedConfigurationException: smem"), t);
    assertFalse(t.contains("Warning"), t);
  }

  private static String row(int b, int len, int dim, boolean causal, String variant, double tflops) {
    Shape s = new Shape(b, len, 32, 8, causal);
    double flops = PrefillBenchmark.flops(s, dim);
    double ms = flops / (tflops * 1e12) * 1e3;
    return PrefillBenchmark.row(s, dim, DType.BF16, variant, variant.equals("paged") ? 16 : 0, ms, ms, 50, flops,
        true);
  }

  // ---- helpers ----

  private static final class Run {
    final int rc;
    final String out;
    final String err;

    Run(int rc, String out, String err) {
      this.rc = rc;
      this.out = out;
      this.err = err;
    }
  }

  private static Run bench(String... args) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      int rc = PrefillBenchmark.run(args, o, e);
      return new Run(rc, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
  }

  private static String tableRow(String table, String shape) {
    for (String line : table.split("\n")) {
      if (line.startsWith("| " + shape + " |")) {
        return line.trim();
      }
    }
    fail("no row for " + shape + " in:\n" + table);
    return null;
  }

  /** Runs python-compat/prefill_report.py (standard library only); skips the test when python3 is missing. */
  private Run report(Path... files) throws Exception {
    String python = System.getProperty("flashinfer4j.python", "python3");
    Path script = null;
    for (Path d = Paths.get(System.getProperty("user.dir")).toAbsolutePath(); d != null; d = d.getParent()) {
      Path p = d.resolve("python-compat").resolve("prefill_report.py");
      if (Files.isRegularFile(p)) {
        script = p;
        break;
      }
    }
    if (script == null) {
      throw new IllegalStateException("python-compat/prefill_report.py not found above " + System.getProperty("user.dir"));
    }
    List<String> cmd = new ArrayList<>(List.of(python, "-B", script.toString()));
    for (Path f : files) {
      cmd.add(f.toString());
    }
    Path errFile = Files.createTempFile(tmp, "report", ".err");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(errFile.toFile());
    pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      Assumptions.abort("prefill_report.py not run: " + python + " cannot be started (" + e.getMessage()
          + "); install python3 or set -Dflashinfer4j.python=/path/to/python3");
      return null;
    }
    p.getOutputStream().close();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      fail(String.join(" ", cmd) + " did not finish in 60 s");
    }
    return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), Files.readString(errFile));
  }
}
