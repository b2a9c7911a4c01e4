package io.github.flashinfer4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.bench.PrefillBenchmark.Config;
import io.github.flashinfer4j.bench.PrefillBenchmark.Shape;
import io.github.flashinfer4j.testing.Json;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What of {@code bench prefill} runs without a GPU: argument parsing, FLOP counting, the NaN check, the JSON rows,
 * and the whole command on the CPU reference (a smoke test with tiny shapes).
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

  /** The command end to end on the CPU reference. */
  @Test
  @SuppressWarnings("unchecked")
  void cpuSmokeRunWritesPrefillJson() throws Exception {
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
}
