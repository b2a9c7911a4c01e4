package io.github.flashinfer4j.testing;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Json;
import io.github.flashinfer4j.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Assumptions;

/**
 * Locates and reads the FlashInfer 0.2.5 golden files
 * ({@code flashinfer-0.2.5-golden-{decode,prefill,merge}.safetensors}).
 *
 * <p>Lookup order:
 * <ol>
 *   <li>system property {@value #PROPERTY} (the GPU bundle sets it); if set, it must name an
 *       existing folder, otherwise {@link #dir()} throws, so a misconfigured run fails instead of
 *       skipping;</li>
 *   <li>otherwise, starting at the working directory and walking up to the file-system root, the
 *       first {@code <dir>/golden/flashinfer-0.2.5} that exists: the copy in the repository
 *       ({@code golden/flashinfer-0.2.5} at its top, found from any module's folder), so a clone
 *       anywhere has them;</li>
 *   <li>otherwise, walking up the same way, the first {@code <dir>/shared/golden/flashinfer-0.2.5}
 *       (the development machines' {@code ../shared} beside a checkout; only reached when the
 *       repository's copy is missing, e.g. for a working directory outside the repository).</li>
 * </ol>
 *
 * <p>Each file's {@code __metadata__} holds {@code "cases"}: a JSON object mapping a case name to
 * its parameters; tensors are named {@code <case>.<field>} (e.g. {@code decode_gqa_bf16_d128_p16.q}).
 */
public final class GoldenCases {

  /** System property naming the golden folder explicitly. */
  public static final String PROPERTY = "flashinfer4j.golden";

  /** Folder name of this golden set (also the FlashInfer version it came from). */
  public static final String FOLDER = "flashinfer-0.2.5";

  /** The repository's copy, searched from the working directory and each of its ancestors. */
  static final Path IN_REPO = Paths.get("golden", FOLDER);

  /** The development machines' shared copy, searched the same way when the repository's is missing. */
  static final Path SHARED = Paths.get("shared", "golden", FOLDER);

  private GoldenCases() {
  }

  /** The golden folder, or empty if it cannot be found. */
  public static Optional<Path> dir() {
    String prop = System.getProperty(PROPERTY);
    if (prop != null && !prop.isBlank()) {
      Path p = Paths.get(prop).toAbsolutePath().normalize();
      if (!Files.isDirectory(p)) {
        throw new IllegalStateException("-D" + PROPERTY + "=" + prop + " is not a directory");
      }
      return Optional.of(p);
    }
    Optional<Path> inRepo = walkUp(IN_REPO);
    return inRepo.isPresent() ? inRepo : walkUp(SHARED);
  }

  /** The first {@code <dir>/relative} folder from the working directory up to the root. */
  private static Optional<Path> walkUp(Path relative) {
    for (Path d = Paths.get(System.getProperty("user.dir")).toAbsolutePath().normalize();
        d != null; d = d.getParent()) {
      Path candidate = d.resolve(relative);
      if (Files.isDirectory(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  /**
   * The golden file of one kind ({@code "decode"}, {@code "prefill"}, {@code "merge"}), or empty
   * if the folder or the file is missing.
   */
  public static Optional<Path> file(String kind) {
    return dir().map(d -> d.resolve(FOLDER + "-golden-" + kind + ".safetensors")).filter(Files::isRegularFile);
  }

  /**
   * Opens the golden file of one kind, or aborts the calling test (JUnit assumption: reported as
   * skipped) when it cannot be found.
   */
  public static SafetensorsFile openOrSkip(String kind) throws IOException {
    Optional<Path> f = file(kind);
    Assumptions.assumeTrue(f.isPresent(), () -> "golden file '" + kind + "' not found (set -D" + PROPERTY
        + " or run from inside the repository, which has golden/" + FOLDER + ")");
    return SafetensorsFile.open(f.get());
  }

  /** Opens the golden file of one kind; a missing file is an error (the golden tests fail, not skip). */
  public static SafetensorsFile open(String kind) throws IOException {
    Path f = file(kind).orElseThrow(() -> new IllegalStateException("golden " + kind + " file not found: set -D"
        + PROPERTY + " or run from inside the repository, which has golden/" + FOLDER));
    return SafetensorsFile.open(f);
  }

  /**
   * Parses the {@code cases} metadata: case name to parameters (JSON values: String, Long,
   * Double, Boolean, null, List, Map), in file order. Unmodifiable.
   */
  public static Map<String, Map<String, Object>> cases(SafetensorsFile f) {
    String json = f.metadata().get("cases");
    if (json == null) {
      throw new IllegalArgumentException("no 'cases' metadata in " + f.path());
    }
    Map<String, Object> parsed;
    try {
      parsed = Json.parseObject(json);
    } catch (Json.ParseException e) {
      throw new IllegalArgumentException("bad 'cases' metadata in " + f.path() + ": " + e.getMessage(), e);
    }
    Map<String, Map<String, Object>> out = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e : parsed.entrySet()) {
      if (!(e.getValue() instanceof Map)) {
        throw new IllegalArgumentException("case " + e.getKey() + " in " + f.path()
            + " is not an object but " + Json.typeName(e.getValue()));
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> params = (Map<String, Object>) e.getValue();
      out.put(e.getKey(), Collections.unmodifiableMap(params));
    }
    return Collections.unmodifiableMap(out);
  }

  /** The tensor {@code <caseName>.<field>} on {@code device}, which must be of {@code dtype}. Close it. */
  public static Tensor load(SafetensorsFile f, String caseName, String field, Device device, DType dtype)
      throws IOException {
    String name = caseName + "." + field;
    DType actual = f.info(name).dtype().dtype().orElse(null);
    if (actual != dtype) {
      throw new IllegalArgumentException("golden tensor " + name + " is " + f.info(name).dtype() + ", expected "
          + dtype);
    }
    return f.load(name, device);
  }

  /** The F16, BF16 or F32 tensor {@code <caseName>.<field>} as floats. */
  public static float[] floats(SafetensorsFile f, String caseName, String field) throws IOException {
    try (Tensor t = f.load(caseName + "." + field, Device.cpu())) {
      return t.toFloatArray();
    }
  }

  /** The I32 tensor {@code <caseName>.<field>}. */
  public static int[] ints(SafetensorsFile f, String caseName, String field) throws IOException {
    try (Tensor t = f.load(caseName + "." + field, Device.cpu())) {
      return t.toIntArray();
    }
  }

  /** The raw bytes of the tensor {@code <caseName>.<field>}. */
  public static byte[] bytes(SafetensorsFile f, String caseName, String field) throws IOException {
    ByteBuffer b = f.bytes(caseName + "." + field);
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }
}
