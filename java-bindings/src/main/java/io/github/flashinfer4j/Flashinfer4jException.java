package io.github.flashinfer4j;

/** Base of every exception flashinfer4j throws; unchecked, so nothing checked leaks from the native layer. */
public class Flashinfer4jException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /**
   * An exception with a message.
   *
   * @param message the message
   */
  public Flashinfer4jException(String message) {
    super(message);
  }

  /**
   * An exception with a message and a cause.
   *
   * @param message the message
   * @param cause the cause
   */
  public Flashinfer4jException(String message, Throwable cause) {
    super(message, cause);
  }
}
