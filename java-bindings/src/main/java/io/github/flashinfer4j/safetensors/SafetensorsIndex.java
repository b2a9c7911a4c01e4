package io.github.flashinfer4j.safetensors;

import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The weights of one model, as Hugging Face saves them: a folder with {@code model.safetensors}, or with shards
 * ({@code model-00001-of-00003.safetensors}, ...) and the index {@code model.safetensors.index.json} whose
 * {@code weight_map} names the shard of each tensor. Each tensor is reached by name, whichever file holds it, and
 * loaded by its {@link SafetensorsFile} (memory-mapped; see there for what {@code load} copies and what it maps).
 *
 * <pre>{@code
 * try (SafetensorsIndex weights = SafetensorsIndex.open(Path.of("/models/Llama-3.2-1B"));
 *      Tensor embed = weights.load("model.embed_tokens.weight", Device.best())) {
 *   ...
 * }
 * }</pre>
 *
 * {@link #open} checks, besides each file's header: the index's JSON ({@code weight_map}: an object of file names,
 * each a file of the folder itself), that every tensor of the {@code weight_map} is in the file it names, and, for a
 * folder without an index, that no tensor name is in two files. Tensors of a shard that the index does not name are
 * left out, as transformers leaves them out. Closing the index closes every file; safe to use from several threads.
 */
public final class SafetensorsIndex implements AutoCloseable {
  /** The file name that ends a Hugging Face index: {@code model.safetensors.index.json}. */
  public static final String INDEX_SUFFIX = ".safetensors.index.json";

  /** The index name that transformers writes. */
  public static final String DEFAULT_INDEX = "model" + INDEX_SUFFIX;

  private final Path folder;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> owners;  // sorted by tensor name
  private volatile boolean closed;

  private SafetensorsIndex(Path folder, List<SafetensorsFile> files, Map<String, SafetensorsFile> owners) {
    this.folder = folder;
    this.files = Collections.unmodifiableList(files);
    this.owners = Collections.unmodifiableMap(owners);
  }

  /**
   * Opens a model's weights: {@code path} is a folder (its {@code *.safetensors.index.json} if it has one, else
   * every {@code *.safetensors} file in it), an index file, or one {@code .safetensors} file.
   *
   * @param path the model folder (model.safetensors, or shards and model.safetensors.index.json), or one of those files
   * @return the open index; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public static SafetensorsIndex open(Path path) throws IOException {
    if (path == null) {
      throw InvalidArgumentException.of("path", "non-null", "null");
    }
    Path p = path.toAbsolutePath().normalize();
    if (Files.isDirectory(p)) {
      Path index = findIndex(p);
      return index != null ? fromIndex(index) : fromFiles(p, safetensorsFiles(p));
    }
    String name = p.getFileName() == null ? "" : p.getFileName().toString();
    if (name.endsWith(INDEX_SUFFIX)) {
      return fromIndex(p);
    }
    if (!Files.isRegularFile(p)) {
      throw new java.nio.file.NoSuchFileException(p.toString());
    }
    return fromFiles(p.getParent(), List.of(p));
  }

  private static Path findIndex(Path dir) throws IOException {
    if (Files.isRegularFile(dir.resolve(DEFAULT_INDEX))) {
      return dir.resolve(DEFAULT_INDEX);
    }
    List<Path> found = new ArrayList<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*" + INDEX_SUFFIX)) {
      s.forEach(found::add);
    }
    if (found.size() > 1) {
      Collections.sort(found);
      throw new SafetensorsException(dir, null, "holds " + found.size() + " index files and no " + DEFAULT_INDEX
          + ": " + found + "; open one of them");
    }
    return found.isEmpty() ? null : found.get(0);
  }

  private static List<Path> safetensorsFiles(Path dir) throws IOException {
    List<Path> found = new ArrayList<>();
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*.safetensors")) {
      for (Path f : s) {
        if (Files.isRegularFile(f)) {
          found.add(f);
        }
      }
    }
    if (found.isEmpty()) {
      throw new SafetensorsException(dir, null, "holds no *.safetensors file and no " + DEFAULT_INDEX);
    }
    Collections.sort(found);
    return found;
  }

  private static SafetensorsIndex fromFiles(Path folder, List<Path> paths) throws IOException {
    List<SafetensorsFile> files = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> owners = new TreeMap<>();
      for (Path p : paths) {
        SafetensorsFile f = SafetensorsFile.open(p);
        files.add(f);
        for (String name : f.names()) {
          SafetensorsFile other = owners.putIfAbsent(name, f);
          if (other != null) {
            throw new SafetensorsException(p, name, "is also in " + other.path()
                + " (a folder without an index must not name a tensor twice)");
          }
        }
      }
      return new SafetensorsIndex(folder, files, owners);
    } catch (IOException | RuntimeException | Error e) {
      closeAll(files, e);
      throw e;
    }
  }

  private static SafetensorsIndex fromIndex(Path index) throws IOException {
    Path folder = index.getParent();
    Map<String, Object> json;
    try {
      json = Json.parseObject(Files.readString(index));
    } catch (Json.ParseException e) {
      throw new SafetensorsException(index, null, "bad JSON: " + e.getMessage(), e);
    } catch (java.nio.charset.MalformedInputException e) {
      throw new SafetensorsException(index, null, "not valid UTF-8", e);
    }
    Object weightMap = json.get("weight_map");
    if (!(weightMap instanceof Map)) {
      throw new SafetensorsException(index, null, "needs an object 'weight_map', got " + Json.typeName(weightMap));
    }
    Map<String, Path> wanted = new TreeMap<>();
    for (Map.Entry<?, ?> e : ((Map<?, ?>) weightMap).entrySet()) {
      String name = (String) e.getKey();
      if (!(e.getValue() instanceof String)) {
        throw new SafetensorsException(index, name, "weight_map value must be a file name, got "
            + Json.typeName(e.getValue()));
      }
      Path file = folder.resolve((String) e.getValue()).normalize();
      if (!folder.equals(file.getParent())) {
        throw new SafetensorsException(index, name, "weight_map names " + Json.quote((String) e.getValue())
            + ", which is not a file of the index's folder");
      }
      wanted.put(name, file);
    }
    List<SafetensorsFile> files = new ArrayList<>();
    try {
      Map<Path, SafetensorsFile> opened = new TreeMap<>();
      Map<String, SafetensorsFile> owners = new TreeMap<>();
      for (Map.Entry<String, Path> e : wanted.entrySet()) {
        SafetensorsFile f = opened.get(e.getValue());
        if (f == null) {
          if (!Files.isRegularFile(e.getValue())) {
            throw new SafetensorsException(index, e.getKey(), "weight_map names " + e.getValue().getFileName()
                + ", which does not exist");
          }
          f = SafetensorsFile.open(e.getValue());
          files.add(f);
          opened.put(e.getValue(), f);
        }
        if (!f.contains(e.getKey())) {
          throw new SafetensorsException(index, e.getKey(), "weight_map names " + e.getValue().getFileName()
              + ", which has no such tensor");
        }
        owners.put(e.getKey(), f);
      }
      files.sort((a, b) -> a.path().compareTo(b.path()));
      return new SafetensorsIndex(folder, files, owners);
    } catch (IOException | RuntimeException | Error e) {
      closeAll(files, e);
      throw e;
    }
  }

  private static void closeAll(List<SafetensorsFile> files, Throwable primary) {
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (IOException | RuntimeException e) {
        primary.addSuppressed(e);
      }
    }
  }

  /**
   * The folder of the weights.
   *
   * @return the folder of the weights
   */
  public Path folder() {
    return folder;
  }

  /**
   * The files, sorted by path.
   *
   * @return the files, sorted by path
   */
  public List<SafetensorsFile> files() {
    checkOpen();
    return files;
  }

  /**
   * Every tensor name, sorted.
   *
   * @return every tensor name, sorted
   */
  public Set<String> names() {
    checkOpen();
    return owners.keySet();
  }

  /**
   * Whether a file of the folder has a tensor of that name.
   *
   * @param name the tensor's name in the model folder
   * @return whether a file of the folder has a tensor of that name
   */
  public boolean contains(String name) {
    checkOpen();
    return owners.containsKey(name);
  }

  /**
   * The file that holds {@code name}; an {@link InvalidArgumentException} naming the folder when none does.
   *
   * @param name the tensor's name in the model folder
   * @return the file that holds {@code name}
   */
  public SafetensorsFile file(String name) {
    checkOpen();
    SafetensorsFile f = name == null ? null : owners.get(name);
    if (f == null) {
      throw InvalidArgumentException.of("name", "a tensor of the weights in " + folder,
          name == null ? "null" : Json.quote(name));
    }
    return f;
  }

  /**
   * The header entry of {@code name}.
   *
   * @param name the tensor's name in the model folder
   * @return the header entry of {@code name}
   */
  public TensorInfo info(String name) {
    return file(name).info(name);
  }

  /**
   * {@link SafetensorsFile#bytes} of the file that holds {@code name}.
   *
   * @param name the tensor's name in the model folder
   * @return the raw little-endian bytes, a read-only buffer over the file's mapping
   * @throws IOException if the file cannot be read or written
   */
  public ByteBuffer bytes(String name) throws IOException {
    return file(name).bytes(name);
  }

  /**
   * {@link SafetensorsFile#load} of the file that holds {@code name}.
   *
   * @param name the tensor's name in the model folder
   * @param device the device of the new tensor
   * @return the tensor on device, as SafetensorsFile.load gives it; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public Tensor load(String name, Device device) throws IOException {
    return file(name).load(name, device);
  }

  /**
   * {@link SafetensorsFile#loadCopy} of the file that holds {@code name}.
   *
   * @param name the tensor's name in the model folder
   * @param device the device of the new tensor
   * @return a new tensor on device holding a copy; close it when done
   * @throws IOException if the file cannot be read or written
   */
  public Tensor loadCopy(String name, Device device) throws IOException {
    return file(name).loadCopy(name, device);
  }

  /**
   * {@link SafetensorsFile#copyInto} of the file that holds {@code name}.
   *
   * @param name the tensor's name in the model folder
   * @param target a tensor of the stored dtype and shape (a slice of a larger one is fine), open
   * @throws IOException if the file cannot be read or written
   */
  public void copyInto(String name, Tensor target) throws IOException {
    file(name).copyInto(name, target);
  }

  /**
   * Whether the index (and its files) is still open; safe to call from any thread.
   *
   * @return whether the index (and its files) is still open
   */
  public boolean isOpen() {
    return !closed;
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("safetensors index is closed: " + folder);
    }
  }

  /** Closes every file; idempotent. Tensors loaded stay valid. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    IOException first = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "SafetensorsIndex[" + folder + ", " + files.size() + " files, " + owners.size() + " tensors"
        + (closed ? ", closed" : "") + "]";
  }
}
