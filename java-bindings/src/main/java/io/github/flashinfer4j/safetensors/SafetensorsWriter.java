package io.github.flashinfer4j.safetensors;

import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a safetensors file: tensors of any device (copied out in pieces, never whole on the Java heap), raw bytes of
 * any {@link SafetensorsDType}, and {@code __metadata__} strings. The header lists the tensors sorted by name, their
 * data follows contiguously in that order, and the header is padded with spaces to a multiple of 8 bytes, so that the
 * data section starts 8-byte aligned, as the format recommends. {@link #write} writes a temporary file beside the
 * target, forces it to disk and renames it over the target: readers see the old file or the new one, never a part.
 *
 * <pre>{@code
 * new SafetensorsWriter().add("out", outTensor).add("lse", lseTensor).metadata("source", "my run")
 *     .write(Path.of("outputs.safetensors"));
 * }</pre>
 *
 * The tensors are read when {@link #write} runs: keep them open and unchanged until it returns. Not thread-safe.
 */
public final class SafetensorsWriter {
  private static final CoreAccess CORE = Access.core();
  private static final int STAGING_BYTES = 64 << 20;

  private final Map<String, Object> tensors = new TreeMap<>();  // Tensor or Raw
  private final Map<String, String> metadata = new TreeMap<>();

  private static final class Raw {
    final SafetensorsDType dtype;
    final long[] shape;
    final ByteBuffer bytes;

    Raw(SafetensorsDType dtype, long[] shape, ByteBuffer bytes) {
      this.dtype = dtype;
      this.shape = shape;
      this.bytes = bytes;
    }
  }

  /**
   * Writes {@code tensors} and {@code metadata} (null or empty: none) to {@code path}; see {@link #write}.
   *
   * @param path the file to write (replaced if it exists)
   * @param tensors the tensors by name, written in the map's order
   * @param metadata the string-to-string metadata of the header (may be empty)
   * @throws IOException if the file cannot be read or written
   */
  public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter();
    if (tensors != null) {
      tensors.forEach(w::add);
    }
    if (metadata != null) {
      metadata.forEach(w::metadata);
    }
    w.write(path);
  }

  /**
   * Adds {@code tensor} (any device and dtype, contiguous) under {@code name}.
   *
   * @param name the tensor's name in the file, unique in it
   * @param tensor the tensor, on any device; its elements are copied when the file is written
   * @return this writer
   */
  public SafetensorsWriter add(String name, Tensor tensor) {
    checkName(name);
    if (tensor == null) {
      throw InvalidArgumentException.of("tensor", "non-null", "null");
    }
    CORE.checkOpen(tensor);
    if (!tensor.isContiguous()) {
      throw InvalidArgumentException.of("tensor " + Json.quote(name), "contiguous",
          "strides " + Arrays.toString(tensor.strides()));
    }
    tensors.put(name, tensor);
    return this;
  }

  /**
   * Adds raw little-endian element bytes (the remaining bytes of {@code bytes}, exactly
   * {@code numel(shape) * dtype.byteSize()} of them; copied now) under {@code name}: for the dtypes that no
   * flashinfer4j tensor holds, or data that is on the host already.
   *
   * @param name the tensor's name in the file, unique in it
   * @param dtype the safetensors dtype the bytes hold
   * @param shape the shape the bytes hold
   * @param bytes the raw little-endian elements, row-major
   * @return this writer
   */
  public SafetensorsWriter add(String name, SafetensorsDType dtype, long[] shape, ByteBuffer bytes) {
    checkName(name);
    if (dtype == null || shape == null || bytes == null) {
      throw InvalidArgumentException.of(dtype == null ? "dtype" : shape == null ? "shape" : "bytes", "non-null",
          "null");
    }
    long n = 1;
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw InvalidArgumentException.of("shape[" + i + "]", ">= 0", shape[i]);
      }
      n = multiply(n, shape[i], shape);
    }
    long expected = multiply(n, dtype.byteSize(), shape);
    if (bytes.remaining() != expected) {
      throw InvalidArgumentException.of("bytes.remaining()", expected + " (" + dtype + " " + Arrays.toString(shape)
          + ")", bytes.remaining());
    }
    ByteBuffer copy = ByteBuffer.allocate((int) expected);
    copy.put(bytes.duplicate()).flip();
    tensors.put(name, new Raw(dtype, shape.clone(), copy.asReadOnlyBuffer()));
    return this;
  }

  private static long multiply(long a, long b, long[] shape) {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException e) {
      throw InvalidArgumentException.of("shape", "of fewer than 2^63 bytes", Arrays.toString(shape));
    }
  }

  /**
   * Adds one {@code __metadata__} entry (a later value for the same key replaces the earlier).
   *
   * @param key the metadata key
   * @param value the metadata value
   * @return this writer
   */
  public SafetensorsWriter metadata(String key, String value) {
    if (key == null || value == null) {
      throw InvalidArgumentException.of(key == null ? "metadata key" : "metadata value of " + Json.quote(key),
          "non-null", "null");
    }
    metadata.put(key, value);
    return this;
  }

  private void checkName(String name) {
    if (name == null) {
      throw InvalidArgumentException.of("name", "non-null", "null");
    }
    if (name.equals(SafetensorsFile.METADATA_KEY)) {
      throw InvalidArgumentException.of("name", "not " + SafetensorsFile.METADATA_KEY + " (the metadata's key)",
          name);
    }
    if (tensors.containsKey(name)) {
      throw InvalidArgumentException.of("name", "not added before", Json.quote(name));
    }
  }

  /** The header that {@link #write} writes, padded to a multiple of 8 bytes (without the 8-byte length before it). */
  byte[] header() {
    StringBuilder h = new StringBuilder("{");
    if (!metadata.isEmpty()) {
      h.append(Json.quote(SafetensorsFile.METADATA_KEY)).append(":{");
      String sep = "";
      for (Map.Entry<String, String> m : metadata.entrySet()) {
        h.append(sep).append(Json.quote(m.getKey())).append(':').append(Json.quote(m.getValue()));
        sep = ",";
      }
      h.append('}');
    }
    long offset = 0;
    for (Map.Entry<String, Object> t : tensors.entrySet()) {
      long bytes = byteSize(t.getValue());
      h.append(h.length() > 1 ? "," : "").append(Json.quote(t.getKey())).append(":{\"dtype\":\"")
          .append(dtype(t.getValue())).append("\",\"shape\":[");
      long[] shape = shape(t.getValue());
      for (int i = 0; i < shape.length; i++) {
        h.append(i == 0 ? "" : ",").append(shape[i]);
      }
      h.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
      offset += bytes;
    }
    h.append('}');
    byte[] text = h.toString().getBytes(StandardCharsets.UTF_8);
    byte[] padded = Arrays.copyOf(text, (text.length + 7) & ~7);
    Arrays.fill(padded, text.length, padded.length, (byte) ' ');
    return padded;
  }

  /**
   * Writes the file: a temporary file in {@code path}'s folder, forced to disk, then renamed over {@code path}
   * (atomically where the file system can). On failure the temporary file is deleted and {@code path} is untouched.
   *
   * @param path the file to write (replaced if it exists)
   * @throws IOException if the file cannot be read or written
   */
  public void write(Path path) throws IOException {
    if (path == null) {
      throw InvalidArgumentException.of("path", "non-null", "null");
    }
    Path target = path.toAbsolutePath();
    byte[] header = header();
    Path tmp = target.resolveSibling("." + target.getFileName() + "."
        + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
    boolean done = false;
    try {
      try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
        writeFully(out, length);
        writeFully(out, ByteBuffer.wrap(header));
        long largest = 0;
        for (Object t : tensors.values()) {
          if (t instanceof Tensor) {
            largest = Math.max(largest, byteSize(t));
          }
        }
        ByteBuffer staging = largest == 0 ? null : ByteBuffer.allocateDirect((int) Math.min(largest, STAGING_BYTES));
        for (Object t : tensors.values()) {
          if (t instanceof Raw) {
            writeFully(out, ((Raw) t).bytes.duplicate());
            continue;
          }
          Tensor tensor = (Tensor) t;
          long size = tensor.byteSize();
          for (long done0 = 0; done0 < size; ) {
            int n = (int) Math.min(staging.capacity(), size - done0);
            staging.clear().limit(n);
            CORE.copyToHost(tensor, done0, staging);
            writeFully(out, staging);
            done0 += n;
          }
        }
        out.force(true);
      }
      try {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
      }
      done = true;
    } finally {
      if (!done) {
        Files.deleteIfExists(tmp);
      }
    }
  }

  private static void writeFully(FileChannel out, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      out.write(b);
    }
  }

  private static long byteSize(Object t) {
    return t instanceof Tensor ? ((Tensor) t).byteSize() : ((Raw) t).bytes.remaining();
  }

  private static SafetensorsDType dtype(Object t) {
    return t instanceof Tensor ? SafetensorsDType.of(((Tensor) t).dtype()) : ((Raw) t).dtype;
  }

  private static long[] shape(Object t) {
    return t instanceof Tensor ? ((Tensor) t).shape() : ((Raw) t).shape;
  }
}
