package io.github.flashinfer4j.safetensors;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A safetensors file (or a model folder's index) that breaks the format: the message names the file, the tensor
 * when one is at fault, and what is wrong, e.g.
 * {@code model.safetensors: tensor "lm_head.weight": data_offsets [0, 96] span 96 bytes, but BF16 [4, 16] needs 128}.
 */
public class SafetensorsException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  /** The tensor at fault, or null when the problem is the file's. */
  private final String tensor;

  /**
   * An exception naming the file, the tensor (or null for the file as a whole), the problem and its cause.
   *
   * @param file the file at fault
   * @param tensor the tensor at fault, or null when the problem is the file's
   * @param problem what is wrong
   * @param cause the underlying exception, or null
   */
  public SafetensorsException(Path file, String tensor, String problem, Throwable cause) {
    super(file + ": " + (tensor == null ? "" : "tensor " + quote(tensor) + ": ") + problem, cause);
    this.file = file;
    this.tensor = tensor;
  }

  /**
   * An exception naming the file, the tensor (or null for the file as a whole) and the problem.
   *
   * @param file the file at fault
   * @param tensor the tensor at fault, or null when the problem is the file's
   * @param problem what is wrong
   */
  public SafetensorsException(Path file, String tensor, String problem) {
    this(file, tensor, problem, null);
  }

  /**
   * The file at fault.
   *
   * @return the file at fault
   */
  public Path file() {
    return file;
  }

  /**
   * The tensor at fault, or empty when the problem is the file's (its length, its header's JSON, the index).
   *
   * @return the tensor at fault, or empty when the problem is the file's (its length, its header's JSON, the index)
   */
  public Optional<String> tensor() {
    return Optional.ofNullable(tensor);
  }

  static String quote(String s) {
    return io.github.flashinfer4j.internal.Json.quote(s);
  }
}
