package io.github.flashinfer4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Fuzz;
import io.github.flashinfer4j.testing.Gpu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz cases of {@link SafetensorsFile} for {@link Fuzz}: a random valid file (a few tensors of random dtypes, shapes
 * and names with characters JSON must escape, maybe metadata) is damaged (bits flipped or bytes replaced in the
 * header, the header length pointing beyond the file or into the JSON, the header replaced by noise, the file cut
 * short). Opening and reading it must then throw a {@link SafetensorsException} naming the file, or, where the damage
 * may leave a valid file (a flipped bit inside a name), succeed with every tensor's bytes, size and shape consistent
 * with its header entry — never another exception. The control reads the undamaged file back: the same names and
 * bytes, loaded onto the device.
 */
class SafetensorsFuzzTest {
  private static final Class<SafetensorsException> STE = SafetensorsException.class;
  private static final String FILE = ".safetensors";

  @TempDir
  Path dir;

  private final Fuzz.Table<Env> table = new Fuzz.Table<>();

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** A valid file on disk, its bytes and the bytes of each tensor. */
  static final class Env extends Fuzz.Env {
    final Path file;
    final Map<String, byte[]> data = new LinkedHashMap<>();
    final byte[] good;
    final int headerEnd;  // 8 + header length

    Env(Device dev, Device other, Random rnd, Path dir) {
      super(dev, other, rnd);
      file = dir.resolve("case.safetensors");
      DType[] kinds = {DType.F16, DType.BF16, DType.F32, DType.I32, DType.U8};
      String[] odd = {"", ".weight", "\u00e9\"q", "\\\\n", "/\t", "\u4e2d"};
      SafetensorsWriter w = new SafetensorsWriter();
      int n = 1 + rnd.nextInt(4);
      for (int i = 0; i < n; i++) {
        DType dt = kinds[rnd.nextInt(kinds.length)];
        long[] shape = new long[1 + rnd.nextInt(3)];
        for (int d = 0; d < shape.length; d++) {
          shape[d] = 1 + rnd.nextInt(5);
        }
        Tensor t = own(Tensor.empty(Device.cpu(), dt, shape));
        byte[] bytes = new byte[(int) t.byteSize()];
        rnd.nextBytes(bytes);
        t.copyFrom(ByteBuffer.wrap(bytes));
        String name = "model.layers." + i + odd[rnd.nextInt(odd.length)];
        w.add(name, t);
        data.put(name, bytes);
      }
      if (rnd.nextBoolean()) {
        w.metadata("format", "pt");
      }
      try {
        w.write(file);
        good = Files.readAllBytes(file);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      headerEnd = 8 + (int) ByteBuffer.wrap(good, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    void write(byte[] bytes) throws IOException {
      Files.write(file, bytes);
    }
  }

  /** Opens the file and reads every tensor: sizes and shapes must agree with the header entries. */
  private static Map<String, byte[]> readAll(Env e) throws IOException {
    Map<String, byte[]> read = new LinkedHashMap<>();
    long length = Files.size(e.file);
    try (SafetensorsFile f = SafetensorsFile.open(e.file)) {
      for (TensorInfo info : f.tensors()) {
        ByteBuffer b = f.bytes(info.name());
        assertEquals(info.byteSize(), b.remaining(), info + ": bytes()");
        assertEquals(info.numel() * info.dtype().byteSize(), info.byteSize(), info + ": byte size");
        assertTrue(info.fileOffset() >= 8 && info.fileOffset() + info.byteSize() <= length, info + " inside the file");
        if (info.dtype().dtype().isPresent()) {
          try (Tensor t = f.load(info.name(), e.dev)) {
            assertArrayEquals(info.shape(), t.shape(), info + ": loaded shape");
            assertEquals(info.byteSize(), t.byteSize(), info + ": loaded size");
            byte[] loaded = Fuzz.bytes(t);
            byte[] direct = new byte[b.remaining()];
            b.duplicate().get(direct);
            assertArrayEquals(direct, loaded, info + ": load() and bytes() agree");
            read.put(info.name(), loaded);
          }
        }
      }
    }
    return read;
  }

  private void mutations() {
    table.addMaybe("header bit flips", STE, FILE, e -> {
      byte[] b = e.good.clone();
      int flips = 1 + e.rnd.nextInt(4);
      for (int i = 0; i < flips; i++) {
        int at = e.rnd.nextInt(e.headerEnd);
        b[at] ^= (byte) (1 << e.rnd.nextInt(8));
      }
      e.write(b);
      return () -> readAll(e);
    });
    table.addMaybe("header byte replaced", STE, FILE, e -> {
      byte[] b = e.good.clone();
      byte[] special = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '.', ' ', 0, (byte) 0xff,
        (byte) 0xc3, (byte) 0x80};
      int at = 8 + e.rnd.nextInt(e.headerEnd - 8);
      b[at] = e.rnd.nextBoolean() ? special[e.rnd.nextInt(special.length)] : (byte) e.rnd.nextInt(256);
      e.write(b);
      return () -> readAll(e);
    });
    table.addMaybe("header length into the JSON", STE, FILE, e -> {
      byte[] b = e.good.clone();
      ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(e.rnd.nextInt(e.headerEnd - 8));
      e.write(b);
      return () -> readAll(e);
    });
    table.add("header length beyond the file", STE, FILE, e -> {
      byte[] b = e.good.clone();
      long[] bad = {b.length - 7, b.length + e.rnd.nextInt(1 << 20), Long.MAX_VALUE, -1, Long.MIN_VALUE,
        1L << (32 + e.rnd.nextInt(30))};
      ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(bad[e.rnd.nextInt(bad.length)]);
      e.write(b);
      return () -> readAll(e);
    });
    table.add("header replaced by noise", STE, FILE, e -> {
      byte[] b = e.good.clone();
      for (int i = 8; i < e.headerEnd; i++) {
        b[i] = (byte) e.rnd.nextInt(256);
      }
      if (b[8] == '{') {
        b[8] = '[';
      }
      e.write(b);
      return () -> readAll(e);
    });
    table.add("file cut short", STE, FILE, e -> {
      byte[] b = java.util.Arrays.copyOf(e.good, e.rnd.nextInt(e.good.length));
      e.write(b);
      return () -> readAll(e);
    });
    table.valid("valid: read back", e -> () -> {
      Map<String, byte[]> read = readAll(e);
      assertEquals(e.data.keySet(), read.keySet(), "names");
      for (Map.Entry<String, byte[]> x : e.data.entrySet()) {
        assertArrayEquals(x.getValue(), read.get(x.getKey()), x.getKey());
      }
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void damagedFilesGiveTypedExceptions(Device device) {
    mutations();
    Path d = dir;
    Fuzz.run("safetensors", device, table, (dev, other, rnd) -> new Env(dev, other, rnd, d));
  }
}
