package io.github.flashinfer4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsIndexTest {

  /** Writes a tiny model of three shards, as transformers' save_pretrained does, and returns its folder. */
  private static Path shardedModel(Path dir) throws IOException {
    Device cpu = Device.cpu();
    try (Tensor embed = Tensor.fromFloats(cpu, DType.BF16, new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        Tensor q = Tensor.fromFloats(cpu, DType.BF16, new float[] {7, 8, 9, 10}, 2, 2);
        Tensor norm = Tensor.fromFloats(cpu, DType.F32, new float[] {0.5f, 0.25f}, 2);
        Tensor head = Tensor.fromFloats(cpu, DType.BF16, new float[] {-1, -2, -3, -4, -5, -6}, 3, 2)) {
      SafetensorsWriter.write(dir.resolve("model-00001-of-00003.safetensors"),
          Map.of("model.embed_tokens.weight", embed), Map.of("format", "pt"));
      SafetensorsWriter.write(dir.resolve("model-00002-of-00003.safetensors"),
          Map.of("model.layers.0.self_attn.q_proj.weight", q, "model.norm.weight", norm), Map.of("format", "pt"));
      SafetensorsWriter.write(dir.resolve("model-00003-of-00003.safetensors"), Map.of("lm_head.weight", head),
          Map.of("format", "pt"));
    }
    Files.writeString(dir.resolve("model.safetensors.index.json"), "{\n  \"metadata\": {\"total_size\": 44},\n"
        + "  \"weight_map\": {\n"
        + "    \"lm_head.weight\": \"model-00003-of-00003.safetensors\",\n"
        + "    \"model.embed_tokens.weight\": \"model-00001-of-00003.safetensors\",\n"
        + "    \"model.layers.0.self_attn.q_proj.weight\": \"model-00002-of-00003.safetensors\",\n"
        + "    \"model.norm.weight\": \"model-00002-of-00003.safetensors\"\n  }\n}\n");
    return dir;
  }

  @Test
  void shardedFolderByItsIndex(@TempDir Path tmp) throws IOException {
    Path dir = shardedModel(tmp);
    for (Path open : List.of(dir, dir.resolve("model.safetensors.index.json"))) {
      try (SafetensorsIndex w = SafetensorsIndex.open(open)) {
        assertEquals(Set.of("lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
            "model.norm.weight"), w.names());
        assertEquals(3, w.files().size());
        assertEquals(dir.toAbsolutePath().normalize(), w.folder());
        assertEquals("model-00002-of-00003.safetensors", w.file("model.norm.weight").path().getFileName().toString());
        assertArrayEquals(new long[] {3, 2}, w.info("lm_head.weight").shape());
        try (Tensor head = w.load("lm_head.weight", Device.cpu());
            Tensor norm = w.loadCopy("model.norm.weight", Device.cpu());
            Tensor q = Tensor.empty(Device.cpu(), DType.BF16, 2, 2)) {
          assertArrayEquals(new float[] {-1, -2, -3, -4, -5, -6}, head.toFloatArray());
          assertArrayEquals(new float[] {0.5f, 0.25f}, norm.toFloatArray());
          w.copyInto("model.layers.0.self_attn.q_proj.weight", q);
          assertArrayEquals(new float[] {7, 8, 9, 10}, q.toFloatArray());
        }
        assertEquals(0.25f, w.bytes("model.norm.weight").getFloat(4));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> w.file("model.missing"));
        assertTrue(e.getMessage().contains("\"model.missing\""), e.getMessage());
        assertFalse(w.contains("model.missing"));
      }
    }
  }

  @Test
  void oneFileOrAFolderWithoutIndex(@TempDir Path tmp) throws IOException {
    try (Tensor a = Tensor.fromInts(Device.cpu(), new int[] {1, 2}, 2);
        Tensor b = Tensor.fromInts(Device.cpu(), new int[] {3}, 1)) {
      SafetensorsWriter.write(tmp.resolve("model.safetensors"), Map.of("a", a), null);
      try (SafetensorsIndex w = SafetensorsIndex.open(tmp)) {
        assertEquals(Set.of("a"), w.names());
      }
      try (SafetensorsIndex w = SafetensorsIndex.open(tmp.resolve("model.safetensors"))) {
        assertEquals(Set.of("a"), w.names());
      }
      SafetensorsWriter.write(tmp.resolve("extra.safetensors"), Map.of("b", b), null);
      try (SafetensorsIndex w = SafetensorsIndex.open(tmp)) {
        assertEquals(Set.of("a", "b"), w.names());
        assertEquals(2, w.files().size());
      }
      SafetensorsWriter.write(tmp.resolve("twice.safetensors"), Map.of("a", b), null);
      SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsIndex.open(tmp));
      assertTrue(e.getMessage().contains("is also in"), e.getMessage());
      assertEquals("a", e.tensor().orElseThrow());
    }
    Path empty = Files.createDirectory(tmp.resolve("empty"));
    assertTrue(assertThrows(SafetensorsException.class, () -> SafetensorsIndex.open(empty)).getMessage()
        .contains("no *.safetensors"));
  }

  @Test
  void badIndexesAreNamed(@TempDir Path tmp) throws IOException {
    Path dir = shardedModel(tmp);
    Path index = dir.resolve("model.safetensors.index.json");
    String[][] cases = {
        {"{\"weight_map\": ", null, "bad JSON"},
        {"{\"metadata\": {}}", null, "needs an object 'weight_map'"},
        {"{\"weight_map\": {\"x\": 1}}", "x", "must be a file name"},
        {"{\"weight_map\": {\"x\": \"../model-00001-of-00003.safetensors\"}}", "x",
            "not a file of the index's folder"},
        {"{\"weight_map\": {\"x\": \"model-00009-of-00009.safetensors\"}}", "x", "does not exist"},
        {"{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00003.safetensors\"}}", "lm_head.weight",
            "has no such tensor"},
    };
    for (String[] c : cases) {
      Files.writeString(index, c[0]);
      SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsIndex.open(dir), c[0]);
      assertEquals(index, e.file(), e.getMessage());
      assertEquals(java.util.Optional.ofNullable(c[1]), e.tensor(), e.getMessage());
      assertTrue(e.getMessage().contains(c[2]), e.getMessage());
    }
  }

  @Test
  void closedIndexRefusesUse(@TempDir Path tmp) throws IOException {
    SafetensorsIndex w = SafetensorsIndex.open(shardedModel(tmp));
    SafetensorsFile first = w.files().get(0);
    w.close();
    w.close();
    assertFalse(w.isOpen());
    assertFalse(first.isOpen());
    assertThrows(IllegalStateException.class, w::names);
    assertThrows(IllegalStateException.class, () -> w.load("lm_head.weight", Device.cpu()));
    assertThrows(IllegalStateException.class, () -> first.info("model.embed_tokens.weight"));
  }
}
