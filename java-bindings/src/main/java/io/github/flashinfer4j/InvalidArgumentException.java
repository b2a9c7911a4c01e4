package io.github.flashinfer4j;

/**
 * An argument was rejected before anything reached a kernel. The message names the argument, the expected and
 * the actual value.
 */
public class InvalidArgumentException extends Flashinfer4jException {
  private static final long serialVersionUID = 1L;

  public InvalidArgumentException(String message) {
    super(message);
  }

  /** "{@code name} must be {@code expected}, got {@code actual}". */
  public static InvalidArgumentException of(String name, String expected, Object actual) {
    return new InvalidArgumentException(name + " must be " + expected + ", got " + actual);
  }
}
