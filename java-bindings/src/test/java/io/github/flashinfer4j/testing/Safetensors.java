package io.github.flashinfer4j.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Reader (and small writer) for the <a href="https://github.com/huggingface/safetensors">safetensors</a>
 * format, for tests.
 *
 * <p>Layout: 8-byte little-endian unsigned header length {@code N}; {@code N} bytes of UTF-8 JSON
 * mapping tensor names to {@code {"dtype","shape","data_offsets":[begin,end]}} plus an optional
 * {@code "__metadata__"} object of string values; then the data section. Offsets are relative to
 * the data section, and tensors must tile it exactly (contiguous, no gaps, no overlap), as the
 * reference implementation requires.
 *
 * <p>The whole file is read into memory (golden files are at most a few tens of MB).
 */
public final class Safetensors {

  /** Key of the metadata object in the header. */
  public static final String METADATA_KEY = "__metadata__";

  /** Upper bound on the header size, as in the reference implementation (100 MB). */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final Map<String, Integer> DTYPE_SIZES;

  static {
    Map<String, Integer> m = new LinkedHashMap<>();
    m.put("BOOL", 1);
    m.put("U8", 1);
    m.put("I8", 1);
    m.put("F8_E5M2", 1);
    m.put("F8_E4M3", 1);
    m.put("I16", 2);
    m.put("U16", 2);
    m.put("F16", 2);
    m.put("BF16", 2);
    m.put("I32", 4);
    m.put("U32", 4);
    m.put("F32", 4);
    m.put("F64", 8);
    m.put("I64", 8);
    m.put("U64", 8);
    DTYPE_SIZES = Collections.unmodifiableMap(m);
  }

  /** A malformed safetensors file. The message names the file. */
  public static final class FormatException extends IOException {
    private static final long serialVersionUID = 1L;

    FormatException(String source, String message, Throwable cause) {
      super(source + ": malformed safetensors file: " + message, cause);
    }
  }

  /** Anything that can be written: a dtype, a shape and little-endian raw bytes. */
  public interface TensorData {
    String dtype();

    long[] shape();

    /** The raw little-endian element bytes; implementations return a fresh view each call. */
    ByteBuffer bytes();
  }

  /** A tensor to be written, built by the factories below ({@link #f32}, {@link #bf16}, ...). */
  public static final class Input implements TensorData {
    private final String dtype;
    private final long[] shape;
    private final byte[] data;

    private Input(String dtype, long[] shape, byte[] data) {
      this.dtype = dtype;
      this.shape = shape.clone();
      this.data = data;
      for (long dim : this.shape) {
        if (dim < 0) {
          throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
        }
      }
      long expected = Math.multiplyExact(numel(this.shape), elementSize(dtype));
      if (expected != data.length) {
        throw new IllegalArgumentException("tensor of dtype " + dtype + " and shape "
            + Arrays.toString(shape) + " needs " + expected + " bytes, got " + data.length);
      }
    }

    @Override
    public String dtype() {
      return dtype;
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    @Override
    public ByteBuffer bytes() {
      return ByteBuffer.wrap(data).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  /** One tensor of an opened file. */
  public static final class Entry implements TensorData {
    private final String source;
    private final String name;
    private final String dtype;
    private final long[] shape;
    private final ByteBuffer data; // read-only, little-endian, exactly this tensor's bytes

    private Entry(String source, String name, String dtype, long[] shape, ByteBuffer data) {
      this.source = source;
      this.name = name;
      this.dtype = dtype;
      this.shape = shape;
      this.data = data;
    }

    public String name() {
      return name;
    }

    /** Safetensors dtype string, e.g. {@code "BF16"}, {@code "F32"}, {@code "I32"}, {@code "U8"}. */
    @Override
    public String dtype() {
      return dtype;
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    /** Number of elements (1 for a scalar of shape {@code []}). */
    public long numel() {
      return Safetensors.numel(shape);
    }

    /** A read-only little-endian view of this tensor's bytes, positioned at 0. */
    @Override
    public ByteBuffer bytes() {
      return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Decodes BF16, F16 or F32 exactly to floats. */
    public float[] toFloats() {
      int n = intNumel();
      float[] out = new float[n];
      ByteBuffer b = bytes();
      switch (dtype) {
        case "F32":
          b.asFloatBuffer().get(out);
          break;
        case "BF16":
          for (int i = 0; i < n; i++) {
            out[i] = bf16ToFloat(b.getShort(2 * i));
          }
          break;
        case "F16":
          for (int i = 0; i < n; i++) {
            out[i] = halfToFloat(b.getShort(2 * i));
          }
          break;
        default:
          throw wrongDtype("toFloats()", "BF16, F16 or F32");
      }
      return out;
    }

    /** Decodes I32. */
    public int[] toInts() {
      if (!dtype.equals("I32")) {
        throw wrongDtype("toInts()", "I32");
      }
      int[] out = new int[intNumel()];
      bytes().asIntBuffer().get(out);
      return out;
    }

    /** Raw bytes of a U8 or BOOL tensor. */
    public byte[] toBytes() {
      if (!dtype.equals("U8") && !dtype.equals("BOOL")) {
        throw wrongDtype("toBytes()", "U8 or BOOL");
      }
      byte[] out = new byte[intNumel()];
      bytes().get(out);
      return out;
    }

    private int intNumel() {
      long n = numel();
      if (n > Integer.MAX_VALUE - 8) {
        throw new IllegalStateException("tensor " + name + " in " + source + " has " + n
            + " elements, too many for a Java array");
      }
      return (int) n;
    }

    private IllegalStateException wrongDtype(String method, String allowed) {
      return new IllegalStateException(method + " needs " + allowed + ", but tensor " + name
          + " in " + source + " is " + dtype);
    }

    @Override
    public String toString() {
      return name + " " + dtype + Arrays.toString(shape);
    }
  }

  private final String source;
  private final Map<String, Entry> entries; // sorted by name
  private final Map<String, String> metadata;

  private Safetensors(String source, Map<String, Entry> entries, Map<String, String> metadata) {
    this.source = source;
    this.entries = Collections.unmodifiableMap(entries);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /** Reads and validates a whole file. */
  public static Safetensors open(Path path) throws IOException {
    return parse(Files.readAllBytes(path), path.toString());
  }

  /** Parses a complete file image; {@code source} is used in messages. */
  public static Safetensors parse(byte[] file, String source) throws FormatException {
    if (file.length < 8) {
      throw new FormatException(source, "file is " + file.length
          + " bytes, shorter than the 8-byte header length", null);
    }
    ByteBuffer all = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    long headerLen = all.getLong(0); // unsigned; a negative value is necessarily too large
    if (headerLen < 0 || headerLen > file.length - 8L) {
      throw new FormatException(source, "header length " + Long.toUnsignedString(headerLen)
          + " exceeds the " + (file.length - 8L) + " bytes after the length field", null);
    }
    if (headerLen > MAX_HEADER_BYTES) {
      throw new FormatException(source, "header length " + headerLen + " exceeds "
          + MAX_HEADER_BYTES, null);
    }
    String headerText;
    try {
      headerText = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(file, 8, (int) headerLen)).toString();
    } catch (CharacterCodingException e) {
      throw new FormatException(source, "header is not valid UTF-8", e);
    }
    Map<String, Object> header;
    try {
      header = Json.parseObject(headerText);
    } catch (Json.ParseException e) {
      throw new FormatException(source, "bad JSON header: " + e.getMessage(), e);
    }

    int dataStart = 8 + (int) headerLen;
    long dataLen = file.length - (long) dataStart;
    ByteBuffer data = ByteBuffer.wrap(file, dataStart, (int) dataLen).slice().asReadOnlyBuffer();

    Map<String, String> metadata = new LinkedHashMap<>();
    Map<String, Entry> entries = new TreeMap<>();
    List<long[]> ranges = new ArrayList<>(); // {begin, end, index into names}
    List<String> rangeNames = new ArrayList<>();
    for (Map.Entry<String, Object> kv : header.entrySet()) {
      String name = kv.getKey();
      Object v = kv.getValue();
      if (name.equals(METADATA_KEY)) {
        if (!(v instanceof Map)) {
          throw new FormatException(source, METADATA_KEY + " must be an object, got "
              + Json.typeName(v), null);
        }
        for (Map.Entry<?, ?> m : ((Map<?, ?>) v).entrySet()) {
          if (!(m.getValue() instanceof String)) {
            throw new FormatException(source, METADATA_KEY + " value of "
                + Json.quote((String) m.getKey()) + " must be a string, got "
                + Json.typeName(m.getValue()), null);
          }
          metadata.put((String) m.getKey(), (String) m.getValue());
        }
        continue;
      }
      if (!(v instanceof Map)) {
        throw new FormatException(source, "tensor " + Json.quote(name)
            + " must be described by an object, got " + Json.typeName(v), null);
      }
      Map<?, ?> info = (Map<?, ?>) v;
      Object dtypeObj = info.get("dtype");
      if (!(dtypeObj instanceof String) || !DTYPE_SIZES.containsKey(dtypeObj)) {
        throw new FormatException(source, "tensor " + Json.quote(name) + " has unknown dtype "
            + dtypeObj, null);
      }
      String dtype = (String) dtypeObj;
      long[] shape = longArray(source, name, "shape", info.get("shape"), -1);
      long[] offsets = longArray(source, name, "data_offsets", info.get("data_offsets"), 2);
      long begin = offsets[0];
      long end = offsets[1];
      if (begin > end || end > dataLen) {
        throw new FormatException(source, "tensor " + Json.quote(name) + " data_offsets ["
            + begin + ", " + end + "] out of range of the " + dataLen + "-byte data section",
            null);
      }
      long expected;
      try {
        expected = Math.multiplyExact(numel(shape), DTYPE_SIZES.get(dtype));
      } catch (ArithmeticException e) {
        throw new FormatException(source, "tensor " + Json.quote(name) + " shape "
            + Arrays.toString(shape) + " overflows", e);
      }
      if (end - begin != expected) {
        throw new FormatException(source, "tensor " + Json.quote(name) + " of dtype " + dtype
            + " and shape " + Arrays.toString(shape) + " needs " + expected
            + " bytes, but data_offsets [" + begin + ", " + end + "] span " + (end - begin),
            null);
      }
      ByteBuffer slice = data.duplicate().position((int) begin).limit((int) end).slice()
          .asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
      entries.put(name, new Entry(source, name, dtype, shape, slice));
      ranges.add(new long[] {begin, end, rangeNames.size()});
      rangeNames.add(name);
    }

    // The data section must be tiled exactly by the tensors (as the reference reader checks).
    ranges.sort((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
    long cursor = 0;
    for (long[] r : ranges) {
      if (r[0] != cursor) {
        throw new FormatException(source, "tensor " + Json.quote(rangeNames.get((int) r[2]))
            + " starts at data offset " + r[0] + (r[0] < cursor ? ", overlapping" : ", leaving a gap")
            + " (expected " + cursor + ")", null);
      }
      cursor = r[1];
    }
    if (cursor != dataLen) {
      throw new FormatException(source, "tensors cover " + cursor + " bytes but the data section has "
          + dataLen, null);
    }
    return new Safetensors(source, entries, metadata);
  }

  private static long[] longArray(String source, String name, String field, Object v, int requiredLen)
      throws FormatException {
    if (!(v instanceof List)) {
      throw new FormatException(source, "tensor " + Json.quote(name) + " needs an array '" + field
          + "', got " + Json.typeName(v), null);
    }
    List<?> list = (List<?>) v;
    if (requiredLen >= 0 && list.size() != requiredLen) {
      throw new FormatException(source, "tensor " + Json.quote(name) + " '" + field + "' must have "
          + requiredLen + " elements, got " + list.size(), null);
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      Object x = list.get(i);
      if (!(x instanceof Long) || (Long) x < 0) {
        throw new FormatException(source, "tensor " + Json.quote(name) + " '" + field
            + "' must hold non-negative integers, got " + list, null);
      }
      out[i] = (Long) x;
    }
    return out;
  }

  /** Where this file came from (its path, for messages). */
  public String source() {
    return source;
  }

  /** Tensor names, sorted. */
  public Set<String> names() {
    return entries.keySet();
  }

  public boolean contains(String name) {
    return entries.containsKey(name);
  }

  /** The named tensor; throws {@link IllegalArgumentException} naming the tensor and file if absent. */
  public Entry get(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IllegalArgumentException("no tensor " + Json.quote(name) + " in " + source);
    }
    return e;
  }

  /** The {@code __metadata__} object (empty if the file has none). */
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public String toString() {
    return "Safetensors[" + source + ", " + entries.size() + " tensors]";
  }

  // ---------------------------------------------------------------------------------------
  // Writer

  /**
   * Writes a safetensors file: tensors sorted by name, data contiguous in that order, header
   * padded with spaces to a multiple of 8 bytes. {@code metadata} may be null or empty (then no
   * {@code __metadata__} is written).
   */
  public static void write(Path path, Map<String, ? extends TensorData> tensors, Map<String, String> metadata)
      throws IOException {
    Files.write(path, toBytes(tensors, metadata));
  }

  /** The file image that {@link #write} would write. */
  public static byte[] toBytes(Map<String, ? extends TensorData> tensors, Map<String, String> metadata) {
    Map<String, TensorData> sorted = new TreeMap<>(tensors);
    StringBuilder h = new StringBuilder("{");
    if (metadata != null && !metadata.isEmpty()) {
      h.append(Json.quote(METADATA_KEY)).append(":{");
      boolean first = true;
      for (Map.Entry<String, String> m : new TreeMap<>(metadata).entrySet()) {
        if (!first) {
          h.append(',');
        }
        first = false;
        h.append(Json.quote(m.getKey())).append(':')
            .append(Json.quote(Objects.requireNonNull(m.getValue(), m.getKey())));
      }
      h.append('}');
    }
    List<ByteBuffer> payloads = new ArrayList<>();
    long offset = 0;
    for (Map.Entry<String, TensorData> t : sorted.entrySet()) {
      String name = t.getKey();
      if (name.equals(METADATA_KEY)) {
        throw new IllegalArgumentException("a tensor may not be named " + METADATA_KEY);
      }
      TensorData d = t.getValue();
      String dtype = d.dtype();
      long[] shape = d.shape();
      ByteBuffer bytes = d.bytes().duplicate();
      for (long dim : shape) {
        if (dim < 0) {
          throw new IllegalArgumentException("tensor " + name + " has negative dimension in "
              + Arrays.toString(shape));
        }
      }
      long expected = Math.multiplyExact(numel(shape), elementSize(dtype));
      if (bytes.remaining() != expected) {
        throw new IllegalArgumentException("tensor " + name + " of dtype " + dtype + " and shape "
            + Arrays.toString(shape) + " needs " + expected + " bytes, got " + bytes.remaining());
      }
      if (h.length() > 1) {
        h.append(',');
      }
      h.append(Json.quote(name)).append(":{\"dtype\":").append(Json.quote(dtype)).append(",\"shape\":[");
      for (int i = 0; i < shape.length; i++) {
        h.append(i == 0 ? "" : ",").append(shape[i]);
      }
      h.append("],\"data_offsets\":[").append(offset).append(',').append(offset + expected).append("]}");
      offset += expected;
      payloads.add(bytes);
    }
    h.append('}');
    byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
    int padded = (header.length + 7) & ~7;
    if (8L + padded + offset > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("file too large to build in memory: " + (8L + padded + offset));
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream((int) (8 + padded + offset));
    byte[] len = new byte[8];
    ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
    out.writeBytes(len);
    out.writeBytes(header);
    for (int i = header.length; i < padded; i++) {
      out.write(' ');
    }
    for (ByteBuffer b : payloads) {
      byte[] chunk = new byte[b.remaining()];
      b.get(chunk);
      out.writeBytes(chunk);
    }
    return out.toByteArray();
  }

  /** Raw little-endian bytes of any supported dtype. */
  public static Input tensor(String dtype, byte[] littleEndianBytes, long... shape) {
    elementSize(dtype);
    return new Input(dtype, shape, littleEndianBytes.clone());
  }

  public static Input f32(float[] values, long... shape) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return new Input("F32", shape, b.array());
  }

  /** BF16, rounding each float to nearest even (NaN stays NaN). */
  public static Input bf16(float[] values, long... shape) {
    ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) {
      b.putShort(2 * i, floatToBf16(values[i]));
    }
    return new Input("BF16", shape, b.array());
  }

  /** F16, rounding each float to nearest even (overflow to infinity, NaN stays NaN). */
  public static Input f16(float[] values, long... shape) {
    ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) {
      b.putShort(2 * i, floatToHalf(values[i]));
    }
    return new Input("F16", shape, b.array());
  }

  public static Input i32(int[] values, long... shape) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(values);
    return new Input("I32", shape, b.array());
  }

  public static Input u8(byte[] values, long... shape) {
    return new Input("U8", shape, values.clone());
  }

  // ---------------------------------------------------------------------------------------
  // Element helpers

  /** Bytes per element of a safetensors dtype; throws for unknown dtypes. */
  public static int elementSize(String dtype) {
    Integer size = DTYPE_SIZES.get(dtype);
    if (size == null) {
      throw new IllegalArgumentException("unknown safetensors dtype " + dtype
          + "; known: " + DTYPE_SIZES.keySet());
    }
    return size;
  }

  /** Product of the dimensions (1 for a scalar); throws ArithmeticException on overflow. */
  public static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** Float to bfloat16 bits, round to nearest even; NaN maps to a quiet NaN. */
  public static short floatToBf16(float f) {
    int x = Float.floatToRawIntBits(f);
    if ((x & 0x7fffffff) > 0x7f800000) {
      return (short) ((x >>> 16) | 0x0040);
    }
    x += 0x7fff + ((x >>> 16) & 1);
    return (short) (x >>> 16);
  }

  /** IEEE 754 binary16 bits to float (exact; handles subnormals, infinities and NaN payloads). */
  public static float halfToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    if (exp == 0) {
      // zero or subnormal: mant * 2^-24, exact in float
      float mag = mant * 0x1p-24f;
      return sign != 0 ? -mag : mag;
    }
    return Float.intBitsToFloat(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
  }

  /** Float to IEEE 754 binary16 bits, round to nearest even; overflow gives infinity. */
  public static short floatToHalf(float f) {
    int x = Float.floatToRawIntBits(f);
    int sign = (x >>> 16) & 0x8000;
    int exp = (x >>> 23) & 0xff;
    int mant = x & 0x7fffff;
    if (exp == 0xff) {
      if (mant == 0) {
        return (short) (sign | 0x7c00);
      }
      int m = mant >>> 13;
      return (short) (sign | 0x7c00 | 0x200 | m); // quiet NaN, keeping the top payload bits
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // below half of the smallest subnormal: rounds to zero
      }
      int m = mant | 0x800000;
      int shift = 14 - e; // 14..24
      int r = m >>> shift;
      int rem = m & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rem > halfway || (rem == halfway && (r & 1) != 0)) {
        r++; // may carry into the smallest normal, which is the right encoding
      }
      return (short) (sign | r);
    }
    int r = (e << 10) | (mant >>> 13);
    int rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1) != 0)) {
      r++; // may carry into the exponent, up to infinity: correct
    }
    return (short) (sign | r);
  }
}
