package io.github.flashinfer4j.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

  // -------------------------------------------------------------------------------------
  // half / bfloat16 conversions

  @Nested
  class HalfConversion {

    private float h(int bits) {
      return Safetensors.halfToFloat((short) bits);
    }

    @Test
    void knownBitPatterns() {
      assertEquals(Float.floatToRawIntBits(0.0f), Float.floatToRawIntBits(h(0x0000)));
      assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(h(0x8000)));
      assertEquals(1.0f, h(0x3c00));
      assertEquals(-2.0f, h(0xc000));
      assertEquals(0.5f, h(0x3800));
      assertEquals(65504.0f, h(0x7bff)); // largest finite
      assertEquals(-65504.0f, h(0xfbff));
      assertEquals(0x1p-14f, h(0x0400)); // smallest normal
      assertEquals(0x1p-24f, h(0x0001)); // smallest subnormal
      assertEquals(-0x1p-24f, h(0x8001));
      assertEquals(1023 * 0x1p-24f, h(0x03ff)); // largest subnormal
      assertEquals(512 * 0x1p-24f, h(0x0200));
      assertEquals(0.333251953125f, h(0x3555));
      assertEquals(0.99951171875f, h(0x3bff));
      assertEquals(1.0009765625f, h(0x3c01));
      assertEquals(Float.POSITIVE_INFINITY, h(0x7c00));
      assertEquals(Float.NEGATIVE_INFINITY, h(0xfc00));
      assertTrue(Float.isNaN(h(0x7e00)));
      assertTrue(Float.isNaN(h(0x7c01))); // signalling NaN pattern
      assertTrue(Float.isNaN(h(0xffff)));
      // values numpy decoded from the golden decode file
      assertEquals(0xbf33e000, Float.floatToRawIntBits(h(0xb99f)));
      assertEquals(0x3fb06000, Float.floatToRawIntBits(h(0x3d83)));
    }

    @Test
    void allPatternsMatchReferenceFormula() {
      for (int bits = 0; bits < 0x10000; bits++) {
        int sign = bits >>> 15;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        float got = h(bits);
        if (exp == 0x1f) {
          if (mant == 0) {
            assertEquals(sign == 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY, got);
          } else {
            assertTrue(Float.isNaN(got), "NaN for 0x" + Integer.toHexString(bits));
          }
          continue;
        }
        double mag = exp == 0 ? Math.scalb((double) mant, -24) : Math.scalb(1.0 + mant / 1024.0, exp - 15);
        double expected = sign == 0 ? mag : -mag;
        assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(got),
            "half 0x" + Integer.toHexString(bits));
      }
    }

    @Test
    void floatToHalfRoundTripsEveryNonNaNHalf() {
      for (int bits = 0; bits < 0x10000; bits++) {
        float f = h(bits);
        short back = Safetensors.floatToHalf(f);
        if (Float.isNaN(f)) {
          assertTrue(Float.isNaN(Safetensors.halfToFloat(back)));
        } else {
          assertEquals(bits, back & 0xffff, "half 0x" + Integer.toHexString(bits));
        }
      }
    }

    @Test
    void floatToHalfRoundsToNearestEven() {
      assertEquals(0x3c00, Safetensors.floatToHalf(1.0f + 0x1p-11f) & 0xffff); // tie -> even (down)
      assertEquals(0x3c02, Safetensors.floatToHalf(1.0f + 3 * 0x1p-11f) & 0xffff); // tie -> even (up)
      assertEquals(0x3c01, Safetensors.floatToHalf(1.0f + 0x1p-11f + 0x1p-20f) & 0xffff);
      assertEquals(0x7bff, Safetensors.floatToHalf(65519.0f) & 0xffff);
      assertEquals(0x7c00, Safetensors.floatToHalf(65520.0f) & 0xffff); // tie with 2^16 -> inf
      assertEquals(0x7c00, Safetensors.floatToHalf(1e10f) & 0xffff);
      assertEquals(0xfc00, Safetensors.floatToHalf(Float.NEGATIVE_INFINITY) & 0xffff);
      assertEquals(0x0000, Safetensors.floatToHalf(0x1p-25f) & 0xffff); // tie with 0 -> 0
      assertEquals(0x0001, Safetensors.floatToHalf(Math.nextUp(0x1p-25f)) & 0xffff);
      assertEquals(0x0002, Safetensors.floatToHalf(3 * 0x1p-25f) & 0xffff); // tie -> even (up)
      assertEquals(0x0400, Safetensors.floatToHalf(0x1p-14f - 0x1p-26f) & 0xffff); // rounds up to min normal
      assertEquals(0x8000, Safetensors.floatToHalf(-1e-30f) & 0xffff);
      assertEquals(0x0000, Safetensors.floatToHalf(Float.MIN_VALUE) & 0xffff);
      assertTrue(Float.isNaN(Safetensors.halfToFloat(Safetensors.floatToHalf(Float.NaN))));
    }

    @Test
    void floatToHalfPicksNearestForRandomFloats() {
      Random r = new Random(42);
      for (int i = 0; i < 200_000; i++) {
        float f = Float.intBitsToFloat(r.nextInt());
        if (Float.isNaN(f) || Math.abs(f) >= 65504f) {
          continue;
        }
        int h = Safetensors.floatToHalf(f) & 0x7fff;
        double x = Math.abs((double) f);
        double err = Math.abs(x - h(h));
        if (h > 0) {
          assertTrue(err <= Math.abs(x - h(h - 1)), "not nearest for " + f);
        }
        if (h < 0x7bff) {
          double errUp = Math.abs(x - h(h + 1));
          assertTrue(err <= errUp, "not nearest for " + f);
          if (h > 0 && (err == errUp || err == Math.abs(x - h(h - 1)))) {
            assertEquals(0, h & 1, "tie not to even for " + f);
          }
        }
      }
    }

    @Test
    void bf16() {
      assertEquals(1.0f, Safetensors.bf16ToFloat((short) 0x3f80));
      assertEquals(-2.0f, Safetensors.bf16ToFloat((short) 0xc000));
      assertEquals(0.064453125f, Safetensors.bf16ToFloat((short) 0x3d84));
      assertEquals(Float.POSITIVE_INFINITY, Safetensors.bf16ToFloat((short) 0x7f80));
      assertTrue(Float.isNaN(Safetensors.bf16ToFloat((short) 0x7fc0)));
      assertEquals(0x3f80, Safetensors.floatToBf16(1.0f) & 0xffff);
      assertEquals(0x3f80, Safetensors.floatToBf16(Float.intBitsToFloat(0x3f808000)) & 0xffff); // tie -> even
      assertEquals(0x3f82, Safetensors.floatToBf16(Float.intBitsToFloat(0x3f818000)) & 0xffff); // tie -> even
      assertEquals(0x3f81, Safetensors.floatToBf16(Float.intBitsToFloat(0x3f808001)) & 0xffff);
      assertEquals(0x7f80, Safetensors.floatToBf16(Float.MAX_VALUE) & 0xffff); // rounds to inf
      assertTrue(Float.isNaN(Safetensors.bf16ToFloat(Safetensors.floatToBf16(Float.intBitsToFloat(0x7f800001)))));
    }
  }

  // -------------------------------------------------------------------------------------
  // JSON

  @Nested
  class JsonParser {

    @Test
    void parsesValues() {
      Object v = Json.parse(" {\"a\": [1, -2, 3.5, 1e3, -0, 0.25E-2, true, false, null, {}, []],"
          + " \"b\": {\"c\": \"d\"}, \"big\": 12345678901234567890} ");
      assertTrue(v instanceof LinkedHashMap);
      Map<?, ?> m = (Map<?, ?>) v;
      assertEquals(List.of("a", "b", "big"), List.copyOf(m.keySet()));
      List<?> a = (List<?>) m.get("a");
      assertEquals(1L, a.get(0));
      assertEquals(-2L, a.get(1));
      assertEquals(3.5, a.get(2));
      assertEquals(1000.0, a.get(3));
      assertEquals(0L, a.get(4));
      assertEquals(0.0025, a.get(5));
      assertEquals(Boolean.TRUE, a.get(6));
      assertEquals(Boolean.FALSE, a.get(7));
      assertNull(a.get(8));
      assertEquals(Map.of(), a.get(9));
      assertEquals(List.of(), a.get(10));
      assertEquals(Map.of("c", "d"), m.get("b"));
      assertEquals(1.2345678901234567e19, m.get("big"));
      assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
      assertEquals(0.08838834764831843, Json.parse("0.08838834764831843"));
    }

    @Test
    void parsesStringEscapes() {
      assertEquals("q\"b\\s/\b\f\n\r\t", Json.parse("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\""));
      assertEquals("\u00e9A\u20ac", Json.parse("\"\\u00e9\\u0041\\u20AC\""));
      String emoji = (String) Json.parse("\"\\ud83d\\ude00\"");
      assertEquals(1, emoji.codePointCount(0, emoji.length()));
      assertEquals(0x1F600, emoji.codePointAt(0));
      assertEquals("\uD83D\uDE00", Json.parse("\"\uD83D\uDE00\"")); // raw, unescaped
      assertEquals("caf\u00e9 \u4e2d", Json.parse("\"caf\u00e9 \u4e2d\""));
      assertEquals("", Json.parse("\"\""));
    }

    @Test
    void quoteRoundTrips() {
      String s = "a\"b\\c\n\u0001\u001f\u00e9\uD83D\uDE00/";
      assertEquals(s, Json.parse(Json.quote(s)));
    }

    @Test
    void rejectsMalformedInputWithOffset() {
      assertOffset("{\"a\":1,}", 7);
      assertOffset("[1 2]", 3);
      assertOffset("\"abc", 4);
      assertOffset("01", 1);
      assertOffset("-", 1);
      assertOffset("1.", 2);
      assertOffset("1e", 2);
      assertOffset(".5", 0);
      assertOffset("+1", 0);
      assertOffset("{} x", 3);
      assertOffset("", 0);
      assertOffset("   ", 3);
      assertOffset("tru", 0);
      assertOffset("nul", 0);
      assertOffset("{\"a\" 1}", 5);
      assertOffset("{a:1}", 1);
      assertOffset("{\"a\":1,\"a\":2}", 7);
      assertOffset("\"a\u0001\"", 2);
      assertOffset("\"\\x\"", 2);
      assertOffset("\"\\u12g4\"", 5);
      assertOffset("\"\\u12\"", 3);
      assertOffset("[1,]", 3);
      assertOffset("'a'", 0);
      assertOffset("NaN", 0);
      assertOffset("[" .repeat(Json.MAX_DEPTH + 1), Json.MAX_DEPTH);
      Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse("[1,,2]"));
      assertTrue(e.getMessage().contains("offset 3"), e.getMessage());
      assertThrows(Json.ParseException.class, () -> Json.parseObject("[1]"));
    }

    private void assertOffset(String text, int offset) {
      Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse(text),
          () -> "should reject " + text);
      assertEquals(offset, e.offset(), () -> text + " -> " + e.getMessage());
    }
  }

  // -------------------------------------------------------------------------------------
  // writer / reader round trip

  @Test
  void roundTripEveryDtype(@TempDir Path tmp) throws IOException {
    float[] floats = {0f, -0f, 1f, -2.5f, 3.14159f, 1e-6f, 65504f, Float.POSITIVE_INFINITY, 1e-7f, -7.25e-5f,
        1.0f + 0x1p-11f, 123.456f};
    int[] ints = {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 42};
    byte[] u8 = {0, 1, (byte) 127, (byte) 128, (byte) 255};
    ByteBuffer i64 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MIN_VALUE).putLong(7);
    ByteBuffer f64 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(Math.PI);

    Map<String, Safetensors.TensorData> in = new LinkedHashMap<>();
    in.put("z.f32", Safetensors.f32(floats, 3, 4));
    in.put("b.bf16", Safetensors.bf16(floats, 12));
    in.put("c.f16", Safetensors.f16(floats, 2, 2, 3));
    in.put("i32", Safetensors.i32(ints, 2, 3));
    in.put("u8", Safetensors.u8(u8, 5));
    in.put("bool", Safetensors.tensor("BOOL", new byte[] {1, 0, 1}, 3));
    in.put("i64", Safetensors.tensor("I64", i64.array(), 2));
    in.put("f64", Safetensors.tensor("F64", f64.array(), 1, 1));
    in.put("scalar", Safetensors.f32(new float[] {9.5f}));
    in.put("empty", Safetensors.i32(new int[0], 0, 3));
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("source", "unit \"test\"\n\u00e9");
    meta.put("cases", "{\"x\": {\"n\": 1}}");

    Path p = tmp.resolve("t.safetensors");
    Safetensors.write(p, in, meta);
    Safetensors f = Safetensors.open(p);

    assertEquals(Set.copyOf(in.keySet()), f.names());
    assertEquals(List.of("b.bf16", "bool", "c.f16", "empty", "f64", "i32", "i64", "scalar", "u8", "z.f32"),
        List.copyOf(f.names()));
    assertEquals(meta, f.metadata());

    assertEquals("F32", f.get("z.f32").dtype());
    assertArrayEquals(new long[] {3, 4}, f.get("z.f32").shape());
    assertArrayEquals(floats, f.get("z.f32").toFloats());

    float[] bf = f.get("b.bf16").toFloats();
    float[] hf = f.get("c.f16").toFloats();
    for (int i = 0; i < floats.length; i++) {
      assertEquals(Safetensors.bf16ToFloat(Safetensors.floatToBf16(floats[i])), bf[i]);
      assertEquals(Safetensors.halfToFloat(Safetensors.floatToHalf(floats[i])), hf[i]);
    }
    assertEquals(1.0f, hf[2]);
    assertEquals(65504f, hf[6]);
    assertEquals(1.0f, hf[10]); // tie rounded to even
    assertEquals(Float.POSITIVE_INFINITY, bf[7]);
    assertEquals(3.140625f, bf[4]);
    assertEquals("F16", f.get("c.f16").dtype());
    assertArrayEquals(new long[] {2, 2, 3}, f.get("c.f16").shape());

    assertArrayEquals(ints, f.get("i32").toInts());
    assertEquals(6, f.get("i32").numel());
    assertArrayEquals(u8, f.get("u8").toBytes());
    assertArrayEquals(new byte[] {1, 0, 1}, f.get("bool").toBytes());
    assertEquals("BOOL", f.get("bool").dtype());
    assertEquals(Long.MIN_VALUE, f.get("i64").bytes().getLong(0));
    assertEquals(7L, f.get("i64").bytes().getLong(8));
    assertEquals(Math.PI, f.get("f64").bytes().getDouble(0));
    assertArrayEquals(new long[0], f.get("scalar").shape());
    assertEquals(1, f.get("scalar").numel());
    assertArrayEquals(new float[] {9.5f}, f.get("scalar").toFloats());
    assertEquals(0, f.get("empty").numel());
    assertEquals(0, f.get("empty").toInts().length);

    // byte views are read-only, little-endian, independent
    ByteBuffer b = f.get("i32").bytes();
    assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
    assertTrue(b.isReadOnly());
    assertEquals(24, b.remaining());
    assertThrows(ReadOnlyBufferException.class, () -> b.put(0, (byte) 1));
    b.position(8);
    assertEquals(0, f.get("i32").bytes().position());

    // rewriting from read entries gives the identical file
    Path p2 = tmp.resolve("t2.safetensors");
    Map<String, Safetensors.TensorData> copy = new LinkedHashMap<>();
    for (String n : f.names()) {
      copy.put(n, f.get(n));
    }
    Safetensors.write(p2, copy, f.metadata());
    assertArrayEquals(Files.readAllBytes(p), Files.readAllBytes(p2));
  }

  @Test
  void writerLayout() {
    Map<String, Safetensors.TensorData> in = new LinkedHashMap<>();
    in.put("b", Safetensors.u8(new byte[] {1, 2, 3}, 3));
    in.put("a", Safetensors.f32(new float[] {1f, 2f}, 2));
    byte[] file = Safetensors.toBytes(in, Map.of("k", "v"));
    long n = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, n % 8);
    String header = new String(file, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(header.startsWith("{\"__metadata__\":{\"k\":\"v\"},\"a\":"), header);
    String trailer = header.substring(header.lastIndexOf('}') + 1);
    assertTrue(trailer.length() < 8 && trailer.isBlank() && trailer.chars().allMatch(c -> c == ' '), header);
    Map<String, Object> h = Json.parseObject(header);
    assertEquals(List.of("__metadata__", "a", "b"), List.copyOf(h.keySet()));
    assertEquals(List.of(0L, 8L), ((Map<?, ?>) h.get("a")).get("data_offsets"));
    assertEquals(List.of(8L, 11L), ((Map<?, ?>) h.get("b")).get("data_offsets"));
    assertEquals(8 + n + 11, file.length);
    // no metadata -> no __metadata__ key
    String bare = new String(Safetensors.toBytes(in, null), 8, 8, StandardCharsets.UTF_8);
    assertEquals("{\"a\":{\"d", bare);
    // size mismatch and bad names are rejected
    assertThrows(IllegalArgumentException.class, () -> Safetensors.f32(new float[3], 2, 2));
    assertThrows(IllegalArgumentException.class, () -> Safetensors.tensor("Q8", new byte[1], 1));
    assertThrows(IllegalArgumentException.class,
        () -> Safetensors.toBytes(Map.of("__metadata__", Safetensors.u8(new byte[1], 1)), null));
  }

  @Test
  void missingTensorNamesTensorAndFile(@TempDir Path tmp) throws IOException {
    Path p = tmp.resolve("one.safetensors");
    Safetensors.write(p, Map.of("x", Safetensors.i32(new int[] {5}, 1)), Map.of());
    Safetensors f = Safetensors.open(p);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.get("nope"));
    assertTrue(e.getMessage().contains("nope") && e.getMessage().contains(p.toString()), e.getMessage());
    assertTrue(f.metadata().isEmpty());
    assertFalse(f.contains("nope"));
    IllegalStateException w = assertThrows(IllegalStateException.class, () -> f.get("x").toFloats());
    assertTrue(w.getMessage().contains("I32"), w.getMessage());
    assertThrows(IllegalStateException.class, () -> f.get("x").toBytes());
  }

  // -------------------------------------------------------------------------------------
  // malformed files

  private static byte[] file(String header, int dataBytes) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    return b.array();
  }

  private static String malformed(byte[] bytes) {
    Safetensors.FormatException e = assertThrows(Safetensors.FormatException.class,
        () -> Safetensors.parse(bytes, "mem.safetensors"));
    assertTrue(e.getMessage().startsWith("mem.safetensors: "), e.getMessage());
    return e.getMessage();
  }

  @Test
  void rejectsMalformedFiles(@TempDir Path tmp) throws IOException {
    // sane baseline
    assertEquals(Set.of("a"), Safetensors.parse(
        file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "ok").names());
    assertTrue(Safetensors.parse(file("{}", 0), "empty").names().isEmpty());

    // short header
    assertTrue(malformed(new byte[0]).contains("shorter"));
    assertTrue(malformed(new byte[7]).contains("shorter"));
    // header length beyond the file
    byte[] beyond = file("{}", 0);
    beyond[0] = 3;
    assertTrue(malformed(beyond).contains("exceeds"));
    byte[] huge = file("{}", 0);
    Arrays.fill(huge, 0, 8, (byte) 0xff); // 2^64-1 as unsigned
    assertTrue(malformed(huge).contains("18446744073709551615"), malformed(huge));
    // bad JSON (with its offset)
    String bad = malformed(file("{\"a\":", 0));
    assertTrue(bad.contains("bad JSON") && bad.contains("offset 5"), bad);
    assertTrue(malformed(file("", 0)).contains("bad JSON"));
    assertTrue(malformed(file("[]", 0)).contains("bad JSON"));
    byte[] notUtf8 = file("{\"\u00e9\":1}", 0);
    notUtf8[10] = (byte) 0xff;
    assertTrue(malformed(notUtf8).contains("UTF-8"));
    // offsets out of range
    String oor = malformed(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4));
    assertTrue(oor.contains("out of range") && oor.contains("\"a\""), oor);
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 4))
        .contains("out of range"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 4))
        .contains("non-negative"));
    // size inconsistent with shape
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8))
        .contains("needs 12 bytes"));
    // gap, overlap, trailing bytes
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4))
        .contains("gap"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        + "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", 3)).contains("overlapping"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 3))
        .contains("cover 2 bytes"));
    // structural errors
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2))
        .contains("unknown dtype"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2.0],\"data_offsets\":[0,2]}}", 2))
        .contains("shape"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0]}}", 2))
        .contains("data_offsets"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,2]}}", 2)).contains("shape"));
    assertTrue(malformed(file("{\"a\":[1]}", 0)).contains("object"));
    assertTrue(malformed(file("{\"__metadata__\":{\"k\":1}}", 0)).contains("must be a string"));
    assertTrue(malformed(file("{\"__metadata__\":[]}", 0)).contains("must be an object"));
    assertTrue(malformed(file("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4294967296],"
        + "\"data_offsets\":[0,0]}}", 0)).contains("overflows"));

    // through open(): the message names the path
    Path p = tmp.resolve("short.safetensors");
    Files.write(p, new byte[] {1, 2, 3});
    IOException e = assertThrows(IOException.class, () -> Safetensors.open(p));
    assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    assertThrows(IOException.class, () -> Safetensors.open(tmp.resolve("missing.safetensors")));
  }

  // -------------------------------------------------------------------------------------
  // golden files (values cross-checked with numpy)

  @Nested
  class GoldenFiles {

    private Safetensors open(String kind) throws IOException {
      Optional<Path> dir = GoldenCases.dir();
      Assumptions.assumeTrue(dir.isPresent(), "golden folder not found");
      return GoldenCases.openOrSkip(kind);
    }

    @Test
    void decode() throws IOException {
      Safetensors f = open("decode");
      Map<String, Map<String, Object>> cases = GoldenCases.cases(f);
      assertEquals(List.of("decode_gqa_bf16_d128_p16", "decode_mqa_bf16_d128_p16",
          "decode_softcap_window_bf16_d128", "decode_mha_fp16_d64_p1_hnd"), List.copyOf(cases.keySet()));
      Map<String, Object> gqa = cases.get("decode_gqa_bf16_d128_p16");
      assertEquals("batch_decode_paged", gqa.get("op"));
      assertEquals(32L, gqa.get("num_qo_heads"));
      assertEquals(8L, gqa.get("num_kv_heads"));
      assertEquals(128L, gqa.get("head_dim"));
      assertEquals("NHD", gqa.get("layout"));
      assertEquals("torch.bfloat16", gqa.get("dtype"));
      assertTrue(gqa.containsKey("logits_soft_cap"));
      assertNull(gqa.get("logits_soft_cap"));
      assertEquals(-1L, gqa.get("window_left"));
      assertEquals(0.08838834764831843, gqa.get("sm_scale"));
      assertEquals(30.0, cases.get("decode_softcap_window_bf16_d128").get("logits_soft_cap"));
      assertEquals(100L, cases.get("decode_softcap_window_bf16_d128").get("window_left"));
      assertEquals(0.125, cases.get("decode_mha_fp16_d64_p1_hnd").get("sm_scale"));
      assertEquals("HND", cases.get("decode_mha_fp16_d64_p1_hnd").get("layout"));
      assertTrue(f.metadata().get("source").startsWith("FlashInfer 0.2.5"));
      assertEquals(32, f.names().size());

      Safetensors.Entry q = GoldenCases.tensor(f, "decode_gqa_bf16_d128_p16", "q");
      assertEquals("BF16", q.dtype());
      assertArrayEquals(new long[] {7, 32, 128}, q.shape());
      assertEquals(28672, q.numel());
      float[] qv = q.toFloats();
      assertEquals(0.064453125f, qv[0]);
      assertEquals(-0.90234375f, qv[1]);
      assertEquals(-0.83984375f, qv[qv.length - 1]);
      assertEquals(174.73481273651123, sequentialSum(qv), 0.0); // same order as numpy loop
      assertEquals(0x3d84, q.bytes().getShort(0) & 0xffff);

      Safetensors.Entry indptr = f.get("decode_gqa_bf16_d128_p16.kv_indptr");
      assertEquals("I32", indptr.dtype());
      assertArrayEquals(new long[] {8}, indptr.shape());
      assertArrayEquals(new int[] {0, 1, 3, 22, 54, 58, 121, 124}, indptr.toInts());
      assertArrayEquals(new int[] {1, 1, 12, 15, 16, 8, 1},
          f.get("decode_gqa_bf16_d128_p16.kv_last_page_len").toInts());
      assertArrayEquals(new int[] {15, 94, 101, 58, 71, 106, 0, 87, 18, 90},
          Arrays.copyOf(f.get("decode_gqa_bf16_d128_p16.kv_indices").toInts(), 10));
      assertArrayEquals(new long[] {127, 16, 8, 128}, f.get("decode_gqa_bf16_d128_p16.k_cache").shape());

      Safetensors.Entry lse = f.get("decode_gqa_bf16_d128_p16.lse");
      assertEquals("F32", lse.dtype());
      assertArrayEquals(new long[] {7, 32}, lse.shape());
      float[] lv = lse.toFloats();
      assertEquals(0x3eea9078, Float.floatToRawIntBits(lv[0]));
      assertEquals(0x40bb220e, Float.floatToRawIntBits(lv[lv.length - 1]));

      Safetensors.Entry hq = f.get("decode_mha_fp16_d64_p1_hnd.q");
      assertEquals("F16", hq.dtype());
      assertArrayEquals(new long[] {5, 8, 64}, hq.shape());
      float[] hv = hq.toFloats();
      assertEquals(0xbf33e000, Float.floatToRawIntBits(hv[0])); // -0.7026367
      assertEquals(0x3fb06000, Float.floatToRawIntBits(hv[hv.length - 1])); // 1.3779297
      assertEquals(-7.656803131103516, sequentialSum(hv), 0.0);

      // every F16 element of the caches (including 15 + 13 subnormals) matches numpy's float32 bits
      assertEquals(529016715919360L, bitSum(f.get("decode_mha_fp16_d64_p1_hnd.k_cache").toFloats(), false));
      assertEquals(-8184667665344626688L,
          bitSum(f.get("decode_mha_fp16_d64_p1_hnd.k_cache").toFloats(), true));
      assertEquals(527932403269632L, bitSum(f.get("decode_mha_fp16_d64_p1_hnd.v_cache").toFloats(), false));
      assertEquals(-8385450767041388544L,
          bitSum(f.get("decode_mha_fp16_d64_p1_hnd.v_cache").toFloats(), true));
    }

    @Test
    void prefill() throws IOException {
      Safetensors f = open("prefill");
      Map<String, Map<String, Object>> cases = GoldenCases.cases(f);
      assertEquals(List.of("prefill_paged_causal_bf16_d128", "prefill_paged_noncausal_bf16_d128_hnd",
          "prefill_paged_treemask_bf16_d128", "prefill_ragged_causal_bf16_d128"),
          List.copyOf(cases.keySet()));
      assertEquals(Boolean.TRUE, cases.get("prefill_paged_causal_bf16_d128").get("causal"));
      assertEquals(Boolean.TRUE, cases.get("prefill_paged_treemask_bf16_d128").get("custom_mask"));
      assertEquals("batch_prefill_ragged", cases.get("prefill_ragged_causal_bf16_d128").get("op"));
      assertEquals(4L, cases.get("prefill_paged_noncausal_bf16_d128_hnd").get("page_size"));

      Safetensors.Entry mask = f.get("prefill_paged_treemask_bf16_d128.custom_mask");
      assertEquals("U8", mask.dtype());
      assertArrayEquals(new long[] {1470}, mask.shape());
      byte[] m = mask.toBytes();
      long ones = 0;
      long weighted = 0;
      for (int i = 0; i < m.length; i++) {
        ones += m[i];
        weighted += (long) m[i] * i;
      }
      assertEquals(1399, ones);
      assertEquals(1027011, weighted);
      assertArrayEquals(new int[] {0, 1, 38, 102, 107},
          f.get("prefill_paged_causal_bf16_d128.qo_indptr").toInts());
      assertArrayEquals(new long[] {107, 32, 128}, f.get("prefill_paged_causal_bf16_d128.o").shape());
      assertArrayEquals(new long[] {182, 16, 128}, f.get("prefill_ragged_causal_bf16_d128.k").shape());
    }

    @Test
    void merge() throws IOException {
      Safetensors f = open("merge");
      assertEquals(Map.of("merge_state_bf16", Map.of("op", "merge_state")), GoldenCases.cases(f));
      float[] s = f.get("merge_state_bf16.s").toFloats();
      assertEquals(72, s.length);
      assertEquals(0x40fd7fda, Float.floatToRawIntBits(s[0]));
      assertEquals(0x3e316aa6, Float.floatToRawIntBits(s[71]));
      Safetensors.Entry v = f.get("merge_state_bf16.v");
      assertArrayEquals(new long[] {9, 8, 128}, v.shape());
      float[] vv = v.toFloats();
      assertEquals(-1.4375f, vv[0]);
      assertEquals(-0.70703125f, vv[vv.length - 1]);
      assertEquals(6, f.names().size());
    }

    private double sequentialSum(float[] v) {
      double s = 0;
      for (float x : v) {
        s += x;
      }
      return s;
    }

    /** Sum of the float32 bit patterns (optionally weighted by 1-based index), wrapping like numpy int64. */
    private long bitSum(float[] v, boolean weighted) {
      long s = 0;
      for (int i = 0; i < v.length; i++) {
        long bits = Float.floatToRawIntBits(v[i]) & 0xffffffffL;
        s += weighted ? bits * (i + 1) : bits;
      }
      return s;
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
    Safetensors.write(p, Map.of(), Map.of("cases", "{\"a\": 1}"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GoldenCases.cases(Safetensors.open(p)));
    assertTrue(e.getMessage().contains("case a"), e.getMessage());
    Safetensors.write(p, Map.of(), Map.of("cases", "{\"a\": "));
    e = assertThrows(IllegalArgumentException.class, () -> GoldenCases.cases(Safetensors.open(p)));
    assertTrue(e.getMessage().contains("offset"), e.getMessage());
    Safetensors.write(p, Map.of(), Map.of());
    e = assertThrows(IllegalArgumentException.class, () -> GoldenCases.cases(Safetensors.open(p)));
    assertTrue(e.getMessage().contains("no 'cases'"), e.getMessage());
  }
}
