package io.github.flashinfer4j;

/**
 * An argument was rejected before anything reached a kernel. The message names the argument, the expected and
 * the actual value.
 */
public class InvalidArgumentException extends Flashinfer4jException {
  private static final long serialVersionUID = 1L;

  /**
   * An exception with a message that names the argument, the expected and the actual value.
   *
   * @param message the message
   */
  public InvalidArgumentException(String message) {
    super(message);
  }

  /**
   * "{@code name} must be {@code expected}, got {@code actual}".
   *
   * @param name the argument's name, as the caller wrote it
   * @param expected what the argument must be
   * @param actual what it was
   * @return the exception, with the message "name must be expected, got actual"
   */
  public static InvalidArgumentException of(String name, String expected, Object actual) {
    return new InvalidArgumentException(name + " must be " + expected + ", got " + actual);
  }
}
