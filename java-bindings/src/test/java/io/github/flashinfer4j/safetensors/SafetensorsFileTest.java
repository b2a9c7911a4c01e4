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
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.testing.Gpu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
  private static final long[][] SHAPES = {{}, {0}, {3}, {2, 3}, {2, 0, 4}, {1, 1, 1, 5}, {7, 1}};

  private static byte[] randomBytes(Random rnd, int n) {
    byte[] b = new byte[n];
    rnd.nextBytes(b);
    return b;
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  private static byte[] bytesOf(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  private static byte[] bytesOf(Tensor t) {
    ByteBuffer b = ByteBuffer.allocate((int) t.byteSize());
    t.copyTo(b);
    return b.array();
  }

  private static String name(SafetensorsDType t, long[] shape) {
    return t + "_" + Arrays.toString(shape).replaceAll("[^0-9,]", "").replace(',', 'x');
  }

  // ---- round trips

  @Test
  void everyDtypeAndShapeRoundTripsAsRawBytes(@TempDir Path tmp) throws IOException {
    Random rnd = new Random(1);
    Map<String, byte[]> expected = new java.util.TreeMap<>();
    SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").metadata("note", "\u00e9\"\n");
    for (SafetensorsDType t : SafetensorsDType.values()) {
      for (long[] shape : SHAPES) {
        byte[] data = randomBytes(rnd, (int) numel(shape) * t.byteSize());
        w.add(name(t, shape), t, shape, ByteBuffer.wrap(data));
        expected.put(name(t, shape), data);
      }
    }
    Path p = tmp.resolve("all.safetensors");
    w.write(p);
    byte[] file = Files.readAllBytes(p);
    long headerLength = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, headerLength % 8, "header padded to 8 bytes");
    assertEquals(' ', file[(int) (8 + headerLength - 1)], "padding is spaces");

    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(expected.keySet(), f.names());
      assertEquals(Map.of("format", "pt", "note", "\u00e9\"\n"), f.metadata());
      for (SafetensorsDType t : SafetensorsDType.values()) {
        for (long[] shape : SHAPES) {
          String n = name(t, shape);
          TensorInfo info = f.info(n);
          assertEquals(t, info.dtype(), n);
          assertArrayEquals(shape, info.shape(), n);
          assertEquals(numel(shape), info.numel(), n);
          assertEquals(numel(shape) * t.byteSize(), info.byteSize(), n);
          assertEquals(8 + headerLength + info.dataBegin(), info.fileOffset(), n);
          ByteBuffer b = f.bytes(n);
          assertTrue(b.isReadOnly());
          assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
          assertArrayEquals(expected.get(n), bytesOf(b), n);
          if (t.dtype().isEmpty()) {
            UnsupportedConfigurationException e = assertThrows(UnsupportedConfigurationException.class,
                () -> f.load(n, Device.cpu()));
            assertTrue(e.getMessage().contains(n) && e.getMessage().contains(t.name()), e.getMessage());
            continue;
          }
          for (Device d : Gpu.devices()) {
            try (Tensor a = f.load(n, d); Tensor c = f.loadCopy(n, d)) {
              assertEquals(t.dtype().get(), a.dtype());
              assertArrayEquals(shape, a.shape());
              assertArrayEquals(expected.get(n), bytesOf(a), n + " load on " + d);
              assertArrayEquals(expected.get(n), bytesOf(c), n + " loadCopy on " + d);
            }
          }
        }
      }
    }
  }

  @Test
  void tensorsOfEveryDeviceRoundTrip(@TempDir Path tmp) throws IOException {
    for (Device d : Gpu.devices()) {
      Random rnd = new Random(2);
      Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
      Map<String, byte[]> bytes = new java.util.HashMap<>();
      try {
        for (DType dt : DType.values()) {
          for (long[] shape : SHAPES) {
            Tensor t = Tensor.empty(d, dt, shape);
            tensors.put(dt + Arrays.toString(shape), t);
            byte[] data = randomBytes(rnd, (int) t.byteSize());
            t.copyFrom(ByteBuffer.wrap(data));
            bytes.put(dt + Arrays.toString(shape), data);
          }
        }
        Path p = tmp.resolve("from-" + d.name().replace(':', '-') + ".safetensors");
        SafetensorsWriter.write(p, tensors, Map.of("device", d.toString()));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
          assertEquals(tensors.keySet(), f.names());
          for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            assertEquals(SafetensorsDType.of(e.getValue().dtype()), f.info(e.getKey()).dtype());
            assertArrayEquals(e.getValue().shape(), f.info(e.getKey()).shape());
            assertArrayEquals(bytes.get(e.getKey()), bytesOf(f.bytes(e.getKey())), e.getKey());
            try (Tensor back = f.load(e.getKey(), d)) {
              assertArrayEquals(bytes.get(e.getKey()), bytesOf(back), e.getKey() + " on " + d);
            }
          }
        }
      } finally {
        tensors.values().forEach(Tensor::close);
      }
    }
  }

  @Test
  void floatsSurviveTheTripAndViewsOfLargerTensorsWrite(@TempDir Path tmp) throws IOException {
    float[] v = {1f, -2.5f, 0.1f, Float.NaN, Float.NEGATIVE_INFINITY, 65504f};
    Path p = tmp.resolve("f.safetensors");
    try (Tensor bf = Tensor.fromFloats(Device.cpu(), DType.BF16, v, 2, 3);
        Tensor f32 = Tensor.fromFloats(Device.cpu(), DType.F32, new float[12], 4, 3);
        Tensor row = f32.narrow(0, 1, 2)) {
      row.copyFrom(v);
      new SafetensorsWriter().add("bf", bf).add("rows", row).write(p);
      try (SafetensorsFile f = SafetensorsFile.open(p); Tensor a = f.load("bf", Device.cpu());
          Tensor b = f.load("rows", Device.cpu())) {
        assertArrayEquals(bf.toFloatArray(), a.toFloatArray());
        assertArrayEquals(v, b.toFloatArray());
      }
      Tensor strided = f32.reshape(3, 4).narrow(1, 0, 2);
      InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
          () -> new SafetensorsWriter().add("s", strided));
      assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
    }
  }

  // ---- zero copy

  @Test
  void cpuLoadIsAPrivateViewOfTheMapping(@TempDir Path tmp) throws IOException {
    Path p = tmp.resolve("z.safetensors");
    float[] v = {1, 2, 3, 4, 5, 6};
    try (Tensor t = Tensor.fromFloats(Device.cpu(), DType.F32, v, 2, 3)) {
      SafetensorsWriter.write(p, Map.of("w", t), null);
    }
    byte[] before = Files.readAllBytes(p);
    Tensor view;
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      view = f.load("w", Device.cpu());
      long offset = f.info("w").fileOffset();
      // the tensor lies in the mapping of the file: a second load of the same tensor reads the same page bytes
      try (Tensor copy = f.loadCopy("w", Device.cpu())) {
        assertArrayEquals(v, copy.toFloatArray());
      }
      assertEquals(0, offset % 4);
    }
    // no copy: the tensor reads the file's pages, so a change made to the file in place shows through (Linux maps
    // privately from the page cache until a page is first written)
    try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
      raf.seek(before.length - 24);
      raf.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(42f).array());
    }
    assertEquals(42f, view.toFloatArray()[0]);
    try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
      raf.seek(before.length - 24);
      raf.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).array());
    }
    // still valid after the reader is closed; writes stay private (copy-on-write) and never reach the file
    assertArrayEquals(v, view.toFloatArray());
    view.copyFrom(new float[] {9, 9, 9, 9, 9, 9});
    view.fillBytes(0);
    assertArrayEquals(new float[6], view.toFloatArray());
    assertArrayEquals(before, Files.readAllBytes(p));
    try (Tensor row = view.select(0, 1)) {
      row.copyFrom(new float[] {7, 8, 9});
    }
    assertArrayEquals(new float[] {0, 0, 0, 7, 8, 9}, view.toFloatArray());
    view.close();
    assertThrows(IllegalStateException.class, view::toFloatArray);
    assertArrayEquals(before, Files.readAllBytes(p));
  }

  @Test
  void readOnlyFilesAndUnalignedTensorsAreCopied(@TempDir Path tmp) throws IOException {
    // U8 x 3 first, then F32: the F32 data starts 3 bytes into an 8-aligned data section, unaligned for a view
    Path p = tmp.resolve("u.safetensors");
    ByteBuffer f32 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-3f).flip();
    new SafetensorsWriter().add("a", SafetensorsDType.U8, new long[] {3}, ByteBuffer.wrap(new byte[] {1, 2, 3}))
        .add("b", SafetensorsDType.F32, new long[] {2}, f32).write(p);
    try (SafetensorsFile f = SafetensorsFile.open(p); Tensor b = f.load("b", Device.cpu())) {
      assertEquals(3, f.info("b").dataBegin());
      assertArrayEquals(new float[] {1.5f, -3f}, b.toFloatArray());
      b.fillBytes(0);  // an owned copy
      try (Tensor again = f.loadCopy("b", Device.cpu())) {
        assertArrayEquals(new float[] {1.5f, -3f}, again.toFloatArray());
      }
    }
    Assumptions.assumeTrue(p.toFile().setReadOnly());
    try (SafetensorsFile f = SafetensorsFile.open(p); Tensor a = f.load("a", Device.cpu())) {
      assertArrayEquals(new byte[] {1, 2, 3}, bytesOf(a));
      a.fillBytes(0);  // root may still open the file read-write: either way the file keeps its bytes
    }
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertArrayEquals(new byte[] {1, 2, 3}, bytesOf(f.bytes("a")));
    }
  }

  @Test
  void copyIntoChecksTheTarget(@TempDir Path tmp) throws IOException {
    Path p = tmp.resolve("c.safetensors");
    try (Tensor t = Tensor.fromFloats(Device.cpu(), DType.BF16, new float[] {1, 2, 3, 4}, 2, 2)) {
      SafetensorsWriter.write(p, Map.of("w", t), Map.of());
    }
    for (Device d : Gpu.devices()) {
      try (SafetensorsFile f = SafetensorsFile.open(p); Tensor big = Tensor.zeros(d, DType.BF16, 4, 2);
          Tensor half = big.narrow(0, 2, 2); Tensor f32 = Tensor.empty(d, DType.F32, 2, 2);
          Tensor flat = Tensor.empty(d, DType.BF16, 4); Tensor wide = Tensor.zeros(d, DType.BF16, 2, 4);
          Tensor strided = wide.narrow(1, 0, 2)) {
        f.copyInto("w", half);
        assertArrayEquals(new float[] {0, 0, 0, 0, 1, 2, 3, 4}, big.toFloatArray());
        assertTrue(assertThrows(InvalidArgumentException.class, () -> f.copyInto("w", f32)).getMessage()
            .contains("target.dtype"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> f.copyInto("w", flat)).getMessage()
            .contains("target.shape"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> f.copyInto("w", strided)).getMessage()
            .contains("contiguous"));
      }
    }
  }

  // ---- files larger than 2 GiB

  @Test
  void tensorsBeyondTwoGibibytesOfASparseFile(@TempDir Path tmp) throws IOException {
    long filler = (5L << 29) + 4;  // 2.5 GiB + 4 of zeros (a hole), then a small tensor at the end
    String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + filler + "],\"data_offsets\":[0," + filler + "]},"
        + "\"tail\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[" + filler + "," + (filler + 16) + "]}}";
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    byte[] padded = Arrays.copyOf(h, (h.length + 7) & ~7);
    Arrays.fill(padded, h.length, padded.length, (byte) ' ');
    Path p = tmp.resolve("sparse.safetensors");
    long size = 8 + padded.length + filler + 16;
    try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
      raf.setLength(size);
      ByteBuffer b = ByteBuffer.allocate(8 + padded.length).order(ByteOrder.LITTLE_ENDIAN);
      b.putLong(padded.length).put(padded);
      raf.write(b.array());
      raf.seek(size - 16);
      ByteBuffer tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      tail.putFloat(1).putFloat(2).putFloat(3).putFloat(4);
      raf.write(tail.array());
    } catch (IOException e) {
      Assumptions.abort("cannot create a " + size + "-byte sparse file here: " + e);
    }
    Assumptions.assumeTrue(Files.size(p) == size);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(Set.of("big", "tail"), f.names());
      assertTrue(f.info("tail").fileOffset() > Integer.MAX_VALUE);
      for (Device d : Gpu.devices()) {
        try (Tensor t = f.load("tail", d)) {
          assertArrayEquals(new float[] {1, 2, 3, 4}, t.toFloatArray(), "tail on " + d);
        }
      }
      assertEquals(ByteOrder.LITTLE_ENDIAN, f.bytes("tail").order());
      assertEquals(3f, f.bytes("tail").getFloat(8));
      InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> f.bytes("big"));
      assertTrue(e.getMessage().contains("load()"), e.getMessage());
      if (Gpu.available()) {  // a 2.5 GiB tensor in three mapped pieces, straight to the device
        try (Tensor big = f.load("big", Device.cuda(0)); Tensor last = big.narrow(0, filler - 4, 4)) {
          assertEquals(filler, big.numel());
          assertArrayEquals(new byte[4], bytesOf(last));
        }
      }
    }
  }

  // ---- malformed files

  private static Path file(Path dir, String header, int dataBytes) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    Path p = Files.createTempFile(dir, "bad", ".safetensors");
    Files.write(p, b.array());
    return p;
  }

  private static SafetensorsException malformed(Path p, String tensor, String... fragments) {
    SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p).close());
    assertTrue(e.getMessage().startsWith(p + ": "), e.getMessage());
    assertEquals(p, e.file());
    assertEquals(java.util.Optional.ofNullable(tensor), e.tensor(), e.getMessage());
    if (tensor != null) {
      assertTrue(e.getMessage().contains("tensor \"" + tensor + "\": "), e.getMessage());
    }
    for (String s : fragments) {
      assertTrue(e.getMessage().contains(s), "'" + s + "' in: " + e.getMessage());
    }
    return e;
  }

  private static String t(String name, String dtype, String shape, String offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  }

  @Test
  void rejectsMalformedFilesNamingTheProblem(@TempDir Path tmp) throws IOException {
    // a sane baseline, and an empty file of no tensors
    try (SafetensorsFile f = SafetensorsFile.open(file(tmp, "{" + t("a", "F32", "[2]", "[0,8]") + "}", 8))) {
      assertEquals(Set.of("a"), f.names());
    }
    try (SafetensorsFile f = SafetensorsFile.open(file(tmp, "{}", 0))) {
      assertTrue(f.names().isEmpty() && f.metadata().isEmpty());
    }
    // truncated: shorter than the length field
    for (int n : new int[] {0, 3, 7}) {
      Path p = Files.createTempFile(tmp, "short", ".safetensors");
      Files.write(p, new byte[n]);
      malformed(p, null, "the file is " + n + " bytes, shorter than the 8-byte header length");
    }
    // header length larger than the file (also as a huge unsigned value)
    Path beyond = file(tmp, "{}", 0);
    byte[] b = Files.readAllBytes(beyond);
    b[0] = 3;
    Files.write(beyond, b);
    malformed(beyond, null, "header length 3 exceeds the 2 bytes after the length field");
    Arrays.fill(b, 0, 8, (byte) 0xff);
    Files.write(beyond, b);
    malformed(beyond, null, "18446744073709551615");
    // truncated data: offsets beyond the data section
    malformed(file(tmp, "{" + t("a", "F32", "[2]", "[0,8]") + "}", 4), "a", "out of range", "4-byte data section");
    malformed(file(tmp, "{" + t("a", "U8", "[0]", "[4,2]") + "}", 4), "a", "data_offsets [4, 2] out of range");
    malformed(file(tmp, "{" + t("a", "U8", "[1]", "[-1,0]") + "}", 4), "a", "non-negative integers");
    // bad JSON, with where it broke
    malformed(file(tmp, "{\"a\":", 0), null, "bad JSON header", "offset 5");
    malformed(file(tmp, "", 0), null, "bad JSON header");
    malformed(file(tmp, "[]", 0), null, "bad JSON header", "object");
    malformed(file(tmp, "{\"a\":1,\"a\":2}", 0), null, "duplicate object key");
    malformed(file(tmp, "{} x", 0), null, "trailing");
    Path notUtf8 = file(tmp, "{\"\u00e9\":1}", 0);
    byte[] u = Files.readAllBytes(notUtf8);
    u[10] = (byte) 0xff;
    Files.write(notUtf8, u);
    malformed(notUtf8, null, "not valid UTF-8");
    // sizes that do not match the shape
    malformed(file(tmp, "{" + t("a", "F32", "[3]", "[0,8]") + "}", 8), "a", "span 8 bytes, but F32 [3] needs 12");
    malformed(file(tmp, "{" + t("a", "BF16", "[]", "[0,4]") + "}", 4), "a", "needs 2");
    malformed(file(tmp, "{" + t("a", "F64", "[4294967296,4294967296,4294967296]", "[0,0]") + "}", 0), "a",
        "overflows");
    // overlapping, a gap, trailing bytes
    malformed(file(tmp, "{" + t("a", "U8", "[2]", "[0,2]") + "," + t("b", "U8", "[2]", "[1,3]") + "}", 3), "b",
        "overlap those of tensor \"a\" [0, 2]");
    malformed(file(tmp, "{" + t("a", "U8", "[2]", "[0,2]") + "," + t("b", "U8", "[2]", "[0,2]") + "}", 2), "b",
        "overlap");
    malformed(file(tmp, "{" + t("a", "U8", "[2]", "[2,4]") + "}", 4), "a", "gap");
    malformed(file(tmp, "{" + t("a", "U8", "[2]", "[0,2]") + "}", 3), null, "cover 2 bytes", "data section has 3");
    // unknown dtype and other structural errors
    malformed(file(tmp, "{" + t("a", "Q4", "[2]", "[0,2]") + "}", 2), "a", "unknown dtype \"Q4\"", "BF16");
    malformed(file(tmp, "{" + t("a", "bf16", "[2]", "[0,4]") + "}", 4), "a", "unknown dtype");
    malformed(file(tmp, "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "a", "'dtype'");
    malformed(file(tmp, "{" + t("a", "U8", "[2.0]", "[0,2]") + "}", 2), "a", "'shape'");
    malformed(file(tmp, "{" + t("a", "U8", "[2]", "[0]") + "}", 2), "a", "'data_offsets' must have 2 elements");
    malformed(file(tmp, "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,2]}}", 2), "a", "'shape'");
    malformed(file(tmp, "{\"a\":[1]}", 0), "a", "must be an object");
    malformed(file(tmp, "{\"__metadata__\":{\"k\":1}}", 0), null, "__metadata__ value of \"k\" must be a string");
    malformed(file(tmp, "{\"__metadata__\":[]}", 0), null, "__metadata__ must be an object");
    // a missing file is the JDK's own exception
    assertThrows(java.nio.file.NoSuchFileException.class, () -> SafetensorsFile.open(tmp.resolve("missing")));
  }

  // ---- closing, names, nulls

  @Test
  void closedFileRefusesUseAndMissingNamesAreNamed(@TempDir Path tmp) throws IOException {
    Path p = tmp.resolve("one.safetensors");
    try (Tensor t = Tensor.fromInts(Device.cpu(), new int[] {5}, 1)) {
      SafetensorsWriter.write(p, Map.of("x", t), null);
    }
    SafetensorsFile f = SafetensorsFile.open(p);
    InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> f.info("nope"));
    assertTrue(e.getMessage().contains("\"nope\"") && e.getMessage().contains(p.toString()), e.getMessage());
    assertThrows(InvalidArgumentException.class, () -> f.load("nope", Device.cpu()));
    assertThrows(InvalidArgumentException.class, () -> f.load("x", null));
    assertFalse(f.contains("nope"));
    assertTrue(f.toString().contains("1 tensors"));
    f.close();
    f.close();  // idempotent
    assertFalse(f.isOpen());
    List<org.junit.jupiter.api.function.Executable> uses = new ArrayList<>();
    uses.add(f::names);
    uses.add(f::tensors);
    uses.add(f::metadata);
    uses.add(() -> f.info("x"));
    uses.add(() -> f.contains("x"));
    uses.add(() -> f.bytes("x"));
    uses.add(() -> f.load("x", Device.cpu()));
    uses.add(() -> f.loadCopy("x", Device.cpu()));
    for (org.junit.jupiter.api.function.Executable use : uses) {
      IllegalStateException c = assertThrows(IllegalStateException.class, use);
      assertTrue(c.getMessage().contains("closed"), c.getMessage());
    }
    assertEquals(p, f.path());
  }

  @Test
  void writerRefusesBadInputAndLeavesNoTemporaryFile(@TempDir Path tmp) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter();
    assertThrows(InvalidArgumentException.class,
        () -> w.add("__metadata__", SafetensorsDType.U8, new long[] {1}, ByteBuffer.allocate(1)));
    assertThrows(InvalidArgumentException.class,
        () -> w.add("a", SafetensorsDType.F32, new long[] {3}, ByteBuffer.allocate(8)));
    assertThrows(InvalidArgumentException.class,
        () -> w.add("a", SafetensorsDType.F32, new long[] {-1}, ByteBuffer.allocate(0)));
    assertThrows(InvalidArgumentException.class, () -> w.add("a", (Tensor) null));
    assertThrows(InvalidArgumentException.class, () -> w.metadata("k", null));
    w.add("a", SafetensorsDType.U8, new long[] {1}, ByteBuffer.allocate(1));
    InvalidArgumentException dup = assertThrows(InvalidArgumentException.class,
        () -> w.add("a", SafetensorsDType.U8, new long[] {1}, ByteBuffer.allocate(1)));
    assertTrue(dup.getMessage().contains("\"a\""), dup.getMessage());
    Tensor closed = Tensor.empty(Device.cpu(), DType.F32, 2);
    closed.close();
    assertThrows(IllegalStateException.class, () -> w.add("c", closed));

    // a tensor closed between add and write: the write fails, the old file stays, no temporary file is left
    Path p = tmp.resolve("out.safetensors");
    Files.write(p, new byte[] {42});
    Tensor t = Tensor.empty(Device.cpu(), DType.F32, 2);
    SafetensorsWriter late = new SafetensorsWriter().add("t", t);
    t.close();
    assertThrows(IllegalStateException.class, () -> late.write(p));
    assertArrayEquals(new byte[] {42}, Files.readAllBytes(p));
    try (java.util.stream.Stream<Path> s = Files.list(tmp)) {
      assertEquals(List.of(p), s.collect(java.util.stream.Collectors.toList()));
    }
    // replacing a file that a reader has mapped leaves the reader's view intact
    w.write(p);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      ByteBuffer before = f.bytes("a");
      new SafetensorsWriter().add("a", SafetensorsDType.U8, new long[] {1}, ByteBuffer.wrap(new byte[] {9}))
          .write(p);
      assertEquals(0, before.get(0));
    }
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertEquals(9, f.bytes("a").get(0));
    }
  }

  @Test
  void dtypeMapping() {
    for (DType d : DType.values()) {
      assertEquals(d, SafetensorsDType.of(d).dtype().orElseThrow());
      assertEquals(d.byteSize(), SafetensorsDType.of(d).byteSize());
    }
    assertEquals(SafetensorsDType.F8_E4M3, SafetensorsDType.of(DType.FP8_E4M3));
    assertTrue(SafetensorsDType.parse("F64").isPresent());
    assertTrue(SafetensorsDType.parse("f64").isEmpty());
    assertTrue(SafetensorsDType.BOOL.dtype().isEmpty());
  }
}
