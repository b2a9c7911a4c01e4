package io.github.flashinfer4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.flashinfer4j.testing.GoldenCases;
import io.github.flashinfer4j.testing.Safetensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The golden files read by the test jar's old reader and by the main-code reader: the same tensors, bytes, metadata. */
class OldReaderCrossCheckTest {
  @Test
  void goldenFilesReadIdentically() throws IOException {
    for (String kind : List.of("decode", "prefill", "merge")) {
      Path p = GoldenCases.file(kind).orElseThrow();
      Safetensors old = Safetensors.open(p);
      try (SafetensorsFile f = SafetensorsFile.open(p)) {
        assertEquals(old.names(), f.names(), kind);
        assertEquals(old.metadata(), f.metadata(), kind);
        for (String name : old.names()) {
          Safetensors.Entry e = old.get(name);
          TensorInfo t = f.info(name);
          assertEquals(e.dtype(), t.dtype().name(), name);
          assertArrayEquals(e.shape(), t.shape(), name);
          assertEquals(e.bytes(), f.bytes(name), name);
          if (e.dtype().equals("BF16") || e.dtype().equals("F16") || e.dtype().equals("F32")) {
            try (io.github.flashinfer4j.Tensor x = f.load(name, io.github.flashinfer4j.Device.cpu())) {
              assertArrayEquals(e.toFloats(), x.toFloatArray(), name);
            }
          }
        }
      }
    }
  }
}
