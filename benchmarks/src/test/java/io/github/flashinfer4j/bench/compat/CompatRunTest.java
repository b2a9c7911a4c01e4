package io.github.flashinfer4j.bench.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.testing.GoldenCases;
import io.github.flashinfer4j.testing.Json;
import io.github.flashinfer4j.testing.Safetensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compat run} end to end on the CPU backend over FlashInfer's golden files, and python-compat/compare.py
 * on its output (with numpy alone: compare.py is run with {@code --numpy-only}). The Python half is skipped, with
 * the reason, when python3 or numpy is missing; the golden folder is required, as in GoldenDecodeTest.
 */
class CompatRunTest {
  private static final String[] DECODE_CASES = {
    "decode_gqa_bf16_d128_p16", "decode_mqa_bf16_d128_p16", "decode_softcap_window_bf16_d128",
    "decode_mha_fp16_d64_p1_hnd",
  };

  @TempDir
  static Path tmp;

  private static Path goldenDecode;
  private static Path decodeOut;

  @BeforeAll
  static void runGoldenDecode() throws IOException {
    goldenDecode = golden("decode");
    decodeOut = tmp.resolve("decode-out.safetensors");
    Run r = compat("run", goldenDecode.toString(), decodeOut.toString(), "--device", "cpu");
    assertEquals(0, r.rc, r.output);
  }

  @Test
  void goldenDecodeCasesRunAndMatchFlashInfer() throws IOException {
    Safetensors out = Safetensors.open(decodeOut);
    Safetensors gold = Safetensors.open(goldenDecode);
    Map<String, Map<String, Object>> cases = cases(out);
    assertEquals(Arrays.asList(DECODE_CASES), new ArrayList<>(cases.keySet()));
    for (String name : DECODE_CASES) {
      assertEquals("ok", cases.get(name).get("status"), name);
      assertEquals("batch_decode_paged", cases.get(name).get("op"), name + ": the parameters are repeated");
      for (String field : new String[] {"o", "lse"}) {
        Safetensors.Entry got = out.get(name + "." + field);
        Safetensors.Entry want = gold.get(name + "." + field);
        assertEquals(want.dtype(), got.dtype(), name + "." + field);
        assertTrue(Arrays.equals(want.shape(), got.shape()), name + "." + field + " shape");
        float[] w = want.toFloats();
        float[] g = got.toFloats();
        double tol = field.equals("lse") ? 1e-3 : want.dtype().equals("BF16") ? 1e-2 : 2e-3;
        for (int i = 0; i < w.length; i++) {
          if (!(Math.abs(g[i] - w[i]) <= tol * (1 + Math.abs(w[i])))) {
            fail(name + "." + field + "[" + i + "]: expected " + w[i] + ", got " + g[i]);
          }
        }
      }
    }
    assertTrue(out.metadata().get("source").contains("cpu"), out.metadata().get("source"));
  }

  @Test
  void compareAcceptsTheGoldenDecodeRun() throws Exception {
    Run r = compare(goldenDecode, decodeOut);
    assertEquals(0, r.rc, r.output);
    for (String name : DECODE_CASES) {
      assertTrue(row(r.output, name).endsWith("PASS"), r.output);
    }
    assertTrue(r.output.contains("4 PASS, 0 FAIL, 0 SKIP"), r.output);
  }

  @Test
  void prefillAndMergeAreUnsupportedAndSkipped() throws Exception {
    Path mixed = tmp.resolve("mixed.safetensors");
    Map<String, Safetensors.TensorData> tensors = new TreeMap<>();
    Map<String, Object> cases = new LinkedHashMap<>();
    take(golden("decode"), "decode_mqa_bf16_d128_p16", tensors, cases);
    take(golden("prefill"), "prefill_paged_treemask_bf16_d128", tensors, cases);
    take(golden("prefill"), "prefill_ragged_causal_bf16_d128", tensors, cases);
    take(golden("merge"), "merge_state_bf16", tensors, cases);
    Safetensors.write(mixed, tensors, Map.of("cases", JsonWriter.write(cases), "source", "CompatRunTest"));
    Path out = tmp.resolve("mixed-out.safetensors");
    Run run = compat("run", mixed.toString(), out.toString(), "--device", "cpu");
    assertEquals(0, run.rc, "unsupported cases are not failures\n" + run.output);
    Safetensors o = Safetensors.open(out);
    Map<String, Map<String, Object>> status = cases(o);
    assertEquals("ok", status.get("decode_mqa_bf16_d128_p16").get("status"));
    for (String name : new String[] {"prefill_paged_treemask_bf16_d128", "prefill_ragged_causal_bf16_d128",
        "merge_state_bf16"}) {
      String s = (String) status.get(name).get("status");
      assertTrue(s.startsWith("unsupported: ") && s.contains("not implemented in flashinfer4j yet"), name + ": " + s);
      assertFalse(o.contains(name + ".o") || o.contains(name + ".v"), name + " has no outputs");
    }
    Run r = compare(mixed, out);
    assertEquals(0, r.rc, r.output);
    assertTrue(row(r.output, "decode_mqa_bf16_d128_p16").endsWith("PASS"), r.output);
    assertTrue(row(r.output, "prefill_paged_treemask_bf16_d128").endsWith("SKIP"), r.output);
    assertTrue(row(r.output, "prefill_ragged_causal_bf16_d128").endsWith("SKIP"), r.output);
    assertTrue(row(r.output, "merge_state_bf16").endsWith("SKIP"), r.output);
    assertTrue(r.output.contains("1 PASS, 0 FAIL, 3 SKIP"), r.output);
  }

  @Test
  void compareFailsOnACorruptedOutput() throws Exception {
    Safetensors good = Safetensors.open(decodeOut);
    Map<String, Safetensors.TensorData> tensors = new TreeMap<>();
    for (String n : good.names()) {
      tensors.put(n, good.get(n));
    }
    // one output element off by 0.25 (far beyond bf16's 1e-2), and one LSE turned into NaN
    tensors.put("decode_gqa_bf16_d128_p16.o", addToFirst(good.get("decode_gqa_bf16_d128_p16.o"), 0.25f));
    tensors.put("decode_mha_fp16_d64_p1_hnd.lse", nanFirst(good.get("decode_mha_fp16_d64_p1_hnd.lse")));
    Path bad = tmp.resolve("corrupted.safetensors");
    Safetensors.write(bad, tensors, good.metadata());
    Run r = compare(goldenDecode, bad);
    assertEquals(1, r.rc, r.output);
    assertTrue(row(r.output, "decode_gqa_bf16_d128_p16").endsWith("FAIL"), r.output);
    assertTrue(row(r.output, "decode_mha_fp16_d64_p1_hnd").endsWith("FAIL"), r.output);
    assertTrue(row(r.output, "decode_mqa_bf16_d128_p16").endsWith("PASS"), r.output);
    assertTrue(r.output.contains("2 PASS, 2 FAIL, 0 SKIP"), r.output);
  }

  @Test
  void aBrokenCaseIsAnErrorAndFailsCompare() throws Exception {
    Path broken = tmp.resolve("broken.safetensors");
    Map<String, Safetensors.TensorData> tensors = new TreeMap<>();
    Map<String, Object> cases = new LinkedHashMap<>();
    take(golden("decode"), "decode_mqa_bf16_d128_p16", tensors, cases);
    tensors.remove("decode_mqa_bf16_d128_p16.q");
    Safetensors.write(broken, tensors, Map.of("cases", JsonWriter.write(cases)));
    Path out = tmp.resolve("broken-out.safetensors");
    Run run = compat("run", broken.toString(), out.toString(), "--device", "cpu");
    assertEquals(1, run.rc, run.output);
    String s = (String) cases(Safetensors.open(out)).get("decode_mqa_bf16_d128_p16").get("status");
    assertTrue(s.startsWith("error: ") && s.contains("decode_mqa_bf16_d128_p16.q"), s);
    Run r = compare(broken, out);
    assertEquals(1, r.rc, r.output);
    assertTrue(row(r.output, "decode_mqa_bf16_d128_p16").endsWith("FAIL"), r.output);
  }

  @Test
  void usageErrors() {
    assertEquals(2, compat().rc);
    assertEquals(2, compat("run", "only-one-file").rc);
    assertEquals(2, compat("run", "a", "b", "--bogus").rc);
    assertEquals(2, compat("run", "a", "b", "--device", "tpu").rc);
    Run missing = compat("run", tmp.resolve("nope.safetensors").toString(), tmp.resolve("x").toString(),
        "--device", "cpu");
    assertEquals(1, missing.rc);
    assertTrue(missing.output.contains("cannot read"), missing.output);
    Run unknownCase = compat("run", goldenDecode.toString(), tmp.resolve("y").toString(), "--device", "cpu",
        "--case", "no_such_case");
    assertEquals(2, unknownCase.rc, unknownCase.output);
  }

  @Test
  void caseFilterRunsOnlyTheNamedCases() throws IOException {
    Path out = tmp.resolve("one.safetensors");
    Run r = compat("run", goldenDecode.toString(), out.toString(), "--device=cpu", "--case",
        "decode_mha_fp16_d64_p1_hnd");
    assertEquals(0, r.rc, r.output);
    Safetensors o = Safetensors.open(out);
    assertEquals(List.of("decode_mha_fp16_d64_p1_hnd"), new ArrayList<>(cases(o).keySet()));
    assertEquals(2, o.names().size());
  }

  // ---- helpers ----

  private static final class Run {
    final int rc;
    final String output;

    Run(int rc, String output) {
      this.rc = rc;
      this.output = output;
    }
  }

  private static Path golden(String kind) {
    return GoldenCases.file(kind).orElseThrow(() -> new IllegalStateException("golden " + kind
        + " file not found: set -D" + GoldenCases.PROPERTY + " or check out next to ../shared"));
  }

  private static Run compat(String... args) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    try (PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
      int rc = CompatCommand.run(args, ps, ps);
      return new Run(rc, buf.toString(StandardCharsets.UTF_8));
    }
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Map<String, Object>> cases(Safetensors f) {
    Map<String, Map<String, Object>> out = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e : Json.parseObject(f.metadata().get("cases")).entrySet()) {
      out.put(e.getKey(), (Map<String, Object>) e.getValue());
    }
    return out;
  }

  /** Copies one case (its tensors and its metadata entry) from a golden file. */
  private static void take(Path file, String name, Map<String, Safetensors.TensorData> tensors,
      Map<String, Object> cases) throws IOException {
    Safetensors f = Safetensors.open(file);
    for (String n : f.names()) {
      if (n.startsWith(name + ".")) {
        tensors.put(n, f.get(n));
      }
    }
    cases.put(name, GoldenCases.cases(f).get(name));
  }

  /** The table row of a case in compare.py's output, trimmed. */
  private static String row(String output, String name) {
    for (String line : output.split("\n")) {
      if (line.startsWith(name + " ")) {
        return line.trim();
      }
    }
    fail("no row for " + name + " in:\n" + output);
    return null;
  }

  private static Safetensors.TensorData addToFirst(Safetensors.Entry e, float delta) {
    assertEquals("BF16", e.dtype());
    ByteBuffer b = copy(e);
    b.putShort(0, Safetensors.floatToBf16(Safetensors.bf16ToFloat(b.getShort(0)) + delta));
    return Safetensors.tensor(e.dtype(), b.array(), e.shape());
  }

  private static Safetensors.TensorData nanFirst(Safetensors.Entry e) {
    assertEquals("F32", e.dtype());
    ByteBuffer b = copy(e);
    b.putFloat(0, Float.NaN);
    return Safetensors.tensor(e.dtype(), b.array(), e.shape());
  }

  private static ByteBuffer copy(Safetensors.Entry e) {
    ByteBuffer src = e.bytes();
    ByteBuffer b = ByteBuffer.allocate(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    b.put(src);
    return b;
  }

  // ---- python ----

  /** Runs python-compat/compare.py with numpy alone; skips the calling test when python3 or numpy is missing. */
  private static Run compare(Path cases, Path out) throws Exception {
    String python = python();
    Path script = compareScript();
    return exec(python, "-B", script.toString(), cases.toString(), out.toString(), "--numpy-only");
  }

  private static String pythonChecked;

  private static synchronized String python() throws Exception {
    if (pythonChecked == null) {
      String python = System.getProperty("flashinfer4j.python", "python3");
      Run probe;
      try {
        probe = exec(python, "-B", "-c", "import numpy, sys; print('numpy', numpy.__version__, sys.version.split()[0])");
      } catch (IOException e) {
        Assumptions.abort("compare.py not run: " + python + " cannot be started (" + e.getMessage()
            + "); install python3 with numpy or set -Dflashinfer4j.python=/path/to/python3");
        return null;
      }
      Assumptions.assumeTrue(probe.rc == 0, () -> "compare.py not run: " + python + " cannot import numpy ("
          + probe.output.trim() + "); install it with: python3 -m pip install numpy");
      pythonChecked = python;
    }
    return pythonChecked;
  }

  private static Path compareScript() {
    for (Path d = Paths.get(System.getProperty("user.dir")).toAbsolutePath(); d != null; d = d.getParent()) {
      Path p = d.resolve("python-compat").resolve("compare.py");
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    throw new IllegalStateException("python-compat/compare.py not found above " + System.getProperty("user.dir"));
  }

  private static Run exec(String... cmd) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      fail(String.join(" ", cmd) + " did not finish in 120 s");
    }
    return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
  }
}
