package io.github.flashinfer4j.safetensors;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A <a href="https://github.com/huggingface/safetensors">safetensors</a> file opened for reading: the header is read
 * and validated by {@link #open}, the tensor data is memory-mapped when a tensor is used. Files and tensors larger
 * than 2 GiB work (each use maps the tensor's own region, in pieces of at most 1 GiB where it must).
 *
 * <p>Format: an 8-byte little-endian header length {@code N}, {@code N} bytes of UTF-8 JSON mapping each tensor name
 * to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data section that follows the
 * header) plus an optional {@code "__metadata__"} object of strings, then the data. {@link #open} checks all of it as
 * the reference implementation does: the header length within the file (and at most 100 MB), strict JSON without
 * duplicate keys, a known dtype, non-negative integer shapes, {@code end - begin == numel * dtype size}, offsets
 * inside the data section, and tensors that tile it exactly (no overlap, no gap, no trailing bytes). A violation is a
 * {@link SafetensorsException} naming the file, the tensor and the problem.
 *
 * <h2>Loading</h2>
 * <ul>
 *   <li>{@link #load(String, Device)} to a CUDA device allocates the tensor and copies the mapped bytes straight into
 *       it (cudaMemcpy from the mapping, pieces of at most 1 GiB; no copy on the Java heap).</li>
 *   <li>{@link #load(String, Device)} to the CPU returns, where it can, a tensor over the file's mapping itself, with
 *       no copy: the pages are read from the page cache when touched. The mapping is private (copy-on-write): writes
 *       into the tensor stay in this process's memory and never reach the file. The tensor keeps its mapping alive on
 *       its own, also after this reader is closed; closing the tensor only ends its use (the mapping is unmapped once
 *       the garbage collector finds it unreachable). It needs a private mapping, which Java only grants through a
 *       channel opened for writing: at the first such load the file is opened read-write (nothing is ever written).
 *       Where that is refused (a read-only file or file system), or the tensor is empty, larger than 2 GiB, or not
 *       aligned in the file to its element size, {@code load} copies into a new CPU tensor instead.</li>
 *   <li>{@link #loadCopy} always returns a newly allocated tensor; {@link #copyInto} fills one the caller has.</li>
 *   <li>{@link #bytes} gives the raw little-endian bytes of any tensor (every dtype, also those without a
 *       flashinfer4j {@link DType}) as a read-only mapped buffer.</li>
 * </ul>
 * Do not truncate or rewrite a file in place while it is mapped: reading a page that is no longer in the file ends
 * the process with SIGBUS, as with every memory-mapped reader ({@link SafetensorsWriter} replaces files by renaming a
 * new one over them, which leaves existing mappings intact).
 *
 * <h2>Threads and closing</h2>
 * Every method may be called from several threads at once. {@link #close()} is idempotent; afterwards every method
 * but {@link #path()}, {@link #isOpen()} and {@link #close()} throws {@link IllegalStateException}. Tensors already
 * loaded stay valid.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** The header size limit of the reference implementation. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  /** The key of the metadata object in the header. */
  public static final String METADATA_KEY = "__metadata__";

  /** The largest region one mapping covers (and so the largest tensor that can be zero-copy or {@link #bytes}). */
  static final long MAX_MAPPING = 1L << 30;

  private static final CoreAccess CORE = Access.core();

  private final Path path;
  private final FileChannel channel;
  private final Map<String, TensorInfo> tensors;  // sorted by name
  private final Map<String, String> metadata;
  private final long dataStart;
  private volatile boolean closed;
  private FileChannel privateChannel;  // guarded by this; opened at the first zero-copy load
  private boolean privateRefused;  // guarded by this

  private SafetensorsFile(Path path, FileChannel channel, Map<String, TensorInfo> tensors,
      Map<String, String> metadata, long dataStart) {
    this.path = path;
    this.channel = channel;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(metadata);
    this.dataStart = dataStart;
  }

  /**
   * Opens {@code path} and reads and validates its header; no tensor data is read. Throws
   * {@link SafetensorsException} when the file breaks the format, another {@link IOException} when it cannot be read.
   *
   * @param path the safetensors file
   * @return the open file; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public static SafetensorsFile open(Path path) throws IOException {
    if (path == null) {
      throw InvalidArgumentException.of("path", "non-null", "null");
    }
    FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
    try {
      long size = channel.size();
      if (size < 8) {
        throw new SafetensorsException(path, null, "the file is " + size
            + " bytes, shorter than the 8-byte header length");
      }
      ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(channel, lengthBytes, 0);
      long headerLength = lengthBytes.getLong(0);  // unsigned: a negative value is beyond any file
      if (headerLength < 0 || headerLength > size - 8) {
        throw new SafetensorsException(path, null, "the header length " + Long.toUnsignedString(headerLength)
            + " exceeds the " + (size - 8) + " bytes after the length field");
      }
      if (headerLength > MAX_HEADER_BYTES) {
        throw new SafetensorsException(path, null, "the header length " + headerLength
            + " exceeds the format's limit of " + MAX_HEADER_BYTES + " bytes");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLength);
      readFully(channel, header, 8);
      String text;
      try {
        text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT).decode(header.flip()).toString();
      } catch (CharacterCodingException e) {
        throw new SafetensorsException(path, null, "the header is not valid UTF-8", e);
      }
      long dataStart = 8 + headerLength;
      Map<String, String> metadata = new LinkedHashMap<>();
      Map<String, TensorInfo> tensors = parseHeader(path, text, size - dataStart, dataStart, metadata);
      return new SafetensorsFile(path, channel, tensors, metadata, dataStart);
    } catch (IOException | RuntimeException | Error e) {
      channel.close();
      throw e;
    }
  }

  private static void readFully(FileChannel channel, ByteBuffer into, long position) throws IOException {
    while (into.hasRemaining()) {
      int n = channel.read(into, position);
      if (n < 0) {
        throw new IOException("unexpected end of file at byte " + position);
      }
      position += n;
    }
  }

  static Map<String, TensorInfo> parseHeader(Path path, String text, long dataLength, long dataStart,
      Map<String, String> metadataOut) throws SafetensorsException {
    Map<String, Object> header;
    try {
      header = Json.parseObject(text);
    } catch (Json.ParseException e) {
      throw new SafetensorsException(path, null, "bad JSON header: " + e.getMessage(), e);
    }
    Map<String, TensorInfo> tensors = new TreeMap<>();
    for (Map.Entry<String, Object> kv : header.entrySet()) {
      String name = kv.getKey();
      Object value = kv.getValue();
      if (name.equals(METADATA_KEY)) {
        if (!(value instanceof Map)) {
          throw new SafetensorsException(path, null, METADATA_KEY + " must be an object, got "
              + Json.typeName(value));
        }
        for (Map.Entry<?, ?> m : ((Map<?, ?>) value).entrySet()) {
          if (!(m.getValue() instanceof String)) {
            throw new SafetensorsException(path, null, METADATA_KEY + " value of " + Json.quote((String) m.getKey())
                + " must be a string, got " + Json.typeName(m.getValue()));
          }
          metadataOut.put((String) m.getKey(), (String) m.getValue());
        }
        continue;
      }
      tensors.put(name, parseTensor(path, name, value, dataLength, dataStart));
    }
    checkTiling(path, tensors.values(), dataLength);
    return tensors;
  }

  private static TensorInfo parseTensor(Path path, String name, Object value, long dataLength, long dataStart)
      throws SafetensorsException {
    if (!(value instanceof Map)) {
      throw new SafetensorsException(path, name, "must be an object {dtype, shape, data_offsets}, got "
          + Json.typeName(value));
    }
    Map<?, ?> info = (Map<?, ?>) value;
    Object dtypeName = info.get("dtype");
    if (!(dtypeName instanceof String)) {
      throw new SafetensorsException(path, name, "needs a string 'dtype', got " + Json.typeName(dtypeName));
    }
    SafetensorsDType dtype = SafetensorsDType.parse((String) dtypeName).orElseThrow(() -> new SafetensorsException(
        path, name, "unknown dtype " + Json.quote((String) dtypeName) + " (known: "
        + Arrays.toString(SafetensorsDType.values()) + ")"));
    long[] shape = longs(path, name, "shape", info.get("shape"), -1);
    long[] offsets = longs(path, name, "data_offsets", info.get("data_offsets"), 2);
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end || end > dataLength) {
      throw new SafetensorsException(path, name, "data_offsets [" + begin + ", " + end + "] out of range of the "
          + dataLength + "-byte data section");
    }
    long expected;
    try {
      long n = 1;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      expected = Math.multiplyExact(n, (long) dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new SafetensorsException(path, name, "shape " + Arrays.toString(shape) + " overflows", e);
    }
    if (end - begin != expected) {
      throw new SafetensorsException(path, name, "data_offsets [" + begin + ", " + end + "] span " + (end - begin)
          + " bytes, but " + dtype + " " + Arrays.toString(shape) + " needs " + expected);
    }
    return new TensorInfo(name, dtype, shape, begin, end, dataStart);
  }

  private static long[] longs(Path path, String name, String field, Object value, int length)
      throws SafetensorsException {
    if (!(value instanceof List)) {
      throw new SafetensorsException(path, name, "needs an array '" + field + "', got " + Json.typeName(value));
    }
    List<?> list = (List<?>) value;
    if (length >= 0 && list.size() != length) {
      throw new SafetensorsException(path, name, "'" + field + "' must have " + length + " elements, got "
          + list.size());
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      Object x = list.get(i);
      if (!(x instanceof Long) || (Long) x < 0) {
        throw new SafetensorsException(path, name, "'" + field + "' must hold non-negative integers, got " + list);
      }
      out[i] = (Long) x;
    }
    return out;
  }

  /** The tensors must tile the data section exactly, as the reference reader requires. */
  private static void checkTiling(Path path, Collection<TensorInfo> infos, long dataLength)
      throws SafetensorsException {
    List<TensorInfo> sorted = new ArrayList<>(infos);
    sorted.sort((a, b) -> a.dataBegin() != b.dataBegin() ? Long.compare(a.dataBegin(), b.dataBegin())
        : Long.compare(a.dataEnd(), b.dataEnd()));
    long cursor = 0;
    TensorInfo previous = null;
    for (TensorInfo t : sorted) {
      if (t.dataBegin() < cursor) {
        throw new SafetensorsException(path, t.name(), "data_offsets [" + t.dataBegin() + ", " + t.dataEnd()
            + "] overlap those of tensor " + Json.quote(previous.name()) + " [" + previous.dataBegin() + ", "
            + previous.dataEnd() + "]");
      }
      if (t.dataBegin() > cursor) {
        throw new SafetensorsException(path, t.name(), "data_offsets [" + t.dataBegin() + ", " + t.dataEnd()
            + "] leave a gap: the bytes before them start at " + cursor);
      }
      cursor = t.dataEnd();
      previous = t;
    }
    if (cursor != dataLength) {
      throw new SafetensorsException(path, null, "the tensors cover " + cursor + " bytes, but the data section has "
          + dataLength);
    }
  }

  /**
   * The file this reader maps.
   *
   * @return the file this reader maps
   */
  public Path path() {
    return path;
  }

  /**
   * Whether the file is still open; safe to call from any thread.
   *
   * @return whether the file is still open
   */
  public boolean isOpen() {
    return !closed;
  }

  /**
   * The tensor names, sorted.
   *
   * @return the tensor names, sorted
   */
  public Set<String> names() {
    checkOpen();
    return tensors.keySet();
  }

  /**
   * Every tensor's header entry, sorted by name.
   *
   * @return every tensor's header entry, sorted by name
   */
  public Collection<TensorInfo> tensors() {
    checkOpen();
    return tensors.values();
  }

  /**
   * Whether the file has a tensor of that name.
   *
   * @param name the tensor's name in the file
   * @return whether the file has a tensor of that name
   */
  public boolean contains(String name) {
    checkOpen();
    return tensors.containsKey(name);
  }

  /**
   * The header entry of {@code name}; an {@link InvalidArgumentException} naming the file when there is none.
   *
   * @param name the tensor's name in the file
   * @return the header entry of {@code name}
   */
  public TensorInfo info(String name) {
    checkOpen();
    TensorInfo t = name == null ? null : tensors.get(name);
    if (t == null) {
      throw InvalidArgumentException.of("name", "a tensor of " + path,
          name == null ? "null" : Json.quote(name));
    }
    return t;
  }

  /**
   * The {@code __metadata__} strings (empty when the file has none).
   *
   * @return the {@code __metadata__} strings (empty when the file has none)
   */
  public Map<String, String> metadata() {
    checkOpen();
    return metadata;
  }

  /**
   * The raw little-endian bytes of {@code name}, any dtype, as a read-only buffer over the file's mapping (at most
   * 1 GiB; use {@link #load} or {@link #copyInto} for larger tensors). The buffer stays valid while it is reachable.
   *
   * @param name the tensor's name in the file
   * @return the raw little-endian bytes, a read-only buffer over the file's mapping
   * @throws IOException if the file cannot be read or written
   */
  public ByteBuffer bytes(String name) throws IOException {
    TensorInfo t = info(name);
    if (t.byteSize() > MAX_MAPPING) {
      throw InvalidArgumentException.of("name", "a tensor of at most " + MAX_MAPPING + " bytes for bytes() (load() "
          + "or copyInto() take any size)", Json.quote(name) + " of " + t.byteSize() + " bytes");
    }
    if (t.byteSize() == 0) {
      return ByteBuffer.allocate(0).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
    return map(FileChannel.MapMode.READ_ONLY, t.fileOffset(), t.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * The tensor {@code name} on {@code device}: copied straight from the mapping into a new tensor on a CUDA device;
   * on the CPU a tensor over the private mapping itself where it can, else a copy (see the class comment). Close it
   * when done. The file's dtype must have a flashinfer4j {@link DType} ({@link UnsupportedConfigurationException}
   * otherwise).
   *
   * @param name the tensor's name in the file
   * @param device the device of the new tensor
   * @return the tensor on device; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public Tensor load(String name, Device device) throws IOException {
    TensorInfo t = info(name);
    DType dtype = dtypeOf(t);
    if (device == null) {
      throw InvalidArgumentException.of("device", "non-null", "null");
    }
    if (device.isCpu() && t.byteSize() > 0 && t.byteSize() <= MAX_MAPPING
        && t.fileOffset() % dtype.byteSize() == 0) {
      FileChannel writable = privateChannel();
      if (writable != null) {
        MappedByteBuffer mapped;
        synchronized (this) {
          checkOpen();
          if (writable.size() < t.fileOffset() + t.byteSize()) {  // never let a private map grow the file
            throw new IOException(path + ": the file has shrunk since it was opened");
          }
          mapped = writable.map(FileChannel.MapMode.PRIVATE, t.fileOffset(), t.byteSize());
        }
        return CORE.wrapHost(mapped, dtype, t.shape());
      }
    }
    return loadCopy(name, device);
  }

  /**
   * The tensor {@code name} copied into a new tensor on {@code device}, whatever the device. Close it when done.
   *
   * @param name the tensor's name in the file
   * @param device the device of the new tensor
   * @return a new tensor on device holding a copy; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public Tensor loadCopy(String name, Device device) throws IOException {
    TensorInfo t = info(name);
    DType dtype = dtypeOf(t);
    Tensor out = Tensor.empty(device, dtype, t.shape());
    try {
      copy(t, out);
    } catch (IOException | RuntimeException | Error e) {
      out.close();
      throw e;
    }
    return out;
  }

  /**
   * Copies the tensor {@code name} into {@code target}, which must be open, contiguous, and of the same dtype and
   * shape (e.g. a view of a larger weight that several tensors fill). Any device.
   *
   * @param name the tensor's name in the file
   * @param target a tensor of the stored dtype and shape (a slice of a larger one is fine), open
   * @throws IOException if the file cannot be read or written
   */
  public void copyInto(String name, Tensor target) throws IOException {
    TensorInfo t = info(name);
    DType dtype = dtypeOf(t);
    if (target == null) {
      throw InvalidArgumentException.of("target", "non-null", "null");
    }
    CORE.checkOpen(target);
    if (target.dtype() != dtype) {
      throw InvalidArgumentException.of("target.dtype", dtype + " (the dtype of " + Json.quote(name) + ")",
          target.dtype());
    }
    if (!Arrays.equals(target.shape(), t.shape())) {
      throw InvalidArgumentException.of("target.shape", Arrays.toString(t.shape()) + " (the shape of "
          + Json.quote(name) + ")", Arrays.toString(target.shape()));
    }
    if (!target.isContiguous()) {
      throw InvalidArgumentException.of("target", "contiguous", "strides " + Arrays.toString(target.strides()));
    }
    copy(t, target);
  }

  private void copy(TensorInfo t, Tensor target) throws IOException {
    for (long done = 0; done < t.byteSize(); ) {
      long n = Math.min(MAX_MAPPING, t.byteSize() - done);
      MappedByteBuffer piece = map(FileChannel.MapMode.READ_ONLY, t.fileOffset() + done, n);
      CORE.copyFromHost(target, done, piece);
      done += n;
    }
  }

  private DType dtypeOf(TensorInfo t) {
    return t.dtype().dtype().orElseThrow(() -> new UnsupportedConfigurationException("tensor " + Json.quote(t.name())
        + " of " + path + " is " + t.dtype() + ", which no flashinfer4j DType holds; read its bytes() instead"));
  }

  private MappedByteBuffer map(FileChannel.MapMode mode, long position, long size) throws IOException {
    checkOpen();
    try {
      return channel.map(mode, position, size);
    } catch (ClosedChannelException e) {  // closed by another thread since the check
      throw new IllegalStateException("safetensors file is closed: " + path, e);
    }
  }

  /** The channel for private mappings, opened read-write at the first use; null where that is refused. */
  private synchronized FileChannel privateChannel() {
    checkOpen();
    if (privateChannel == null && !privateRefused) {
      try {
        privateChannel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
      } catch (IOException | SecurityException | UnsupportedOperationException e) {
        privateRefused = true;  // a read-only file or file system: load() copies instead
      }
    }
    return privateChannel;
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("safetensors file is closed: " + path);
    }
  }

  /** Closes the file; idempotent. Tensors loaded from it (also those over its mapping) stay valid. */
  @Override
  public void close() throws IOException {
    FileChannel extra;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      extra = privateChannel;
      privateChannel = null;
    }
    try {
      channel.close();
    } finally {
      if (extra != null) {
        extra.close();
      }
    }
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors" + (closed ? ", closed" : "") + "]";
  }
}
