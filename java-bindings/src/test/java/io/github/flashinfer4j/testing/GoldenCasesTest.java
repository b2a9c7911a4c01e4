package io.github.flashinfer4j.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.safetensors.SafetensorsFile;
import io.github.flashinfer4j.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GoldenCasesTest {

  private static Map<String, Map<String, Object>> cases(Path p) throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      return GoldenCases.cases(f);
    }
  }

  // -------------------------------------------------------------------------------------
  // golden folder lookup

  @Test
  void goldenDirProperty(@TempDir Path tmp) {
    String old = System.getProperty(GoldenCases.PROPERTY);
    try {
      System.setProperty(GoldenCases.PROPERTY, tmp.toString());
      assertEquals(Optional.of(tmp.toAbsolutePath().normalize()), GoldenCases.dir());
      assertEquals(Optional.empty(), GoldenCases.file("decode"));
      System.setProperty(GoldenCases.PROPERTY, tmp.resolve("nowhere").toString());
      IllegalStateException e = assertThrows(IllegalStateException.class, GoldenCases::dir);
      assertTrue(e.getMessage().contains("nowhere"));
    } finally {
      if (old == null) {
        System.clearProperty(GoldenCases.PROPERTY);
      } else {
        System.setProperty(GoldenCases.PROPERTY, old);
      }
    }
  }

  @Test
  void casesMetadataErrors(@TempDir Path tmp) throws IOException {
    Path p = tmp.resolve("c.safetensors");
    SafetensorsWriter.write(p, Map.of(), Map.of("cases", "{\"a\": 1}"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> cases(p));
    assertTrue(e.getMessage().contains("case a"), e.getMessage());
    SafetensorsWriter.write(p, Map.of(), Map.of("cases", "{\"a\": "));
    e = assertThrows(IllegalArgumentException.class, () -> cases(p));
    assertTrue(e.getMessage().contains("offset"), e.getMessage());
    SafetensorsWriter.write(p, Map.of(), Map.of());
    e = assertThrows(IllegalArgumentException.class, () -> cases(p));
    assertTrue(e.getMessage().contains("no 'cases'"), e.getMessage());
  }
}
