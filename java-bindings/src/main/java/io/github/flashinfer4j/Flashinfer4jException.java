package io.github.flashinfer4j;

/** Base of every exception flashinfer4j throws; unchecked, so nothing checked leaks from the native layer. */
public class Flashinfer4jException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public Flashinfer4jException(String message) {
    super(message);
  }

  public Flashinfer4jException(String message, Throwable cause) {
    super(message, cause);
  }
}
