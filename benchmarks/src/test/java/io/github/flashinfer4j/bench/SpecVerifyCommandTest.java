package io.github.flashinfer4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@code spec-verify --cpu}: the example runs on the CPU reference, every node matches its path, the walk prints. */
class SpecVerifyCommandTest {
  @Test
  void runsOnTheCpuReference() {
    PrintStream saved = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    int rc;
    try (PrintStream capture = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
      System.setOut(capture);
      rc = SpecVerify.run(new String[] {"--cpu"});
    } finally {
      System.setOut(saved);
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, out);
    assertTrue(out.contains("every node's output equals attention over its own path"), out);
    assertTrue(out.contains("greedy walk from node 0: accepted nodes"), out);
    assertEquals(14, out.lines().filter(l -> l.endsWith("  ok")).count(), out);
  }
}
