package io.github.flashinfer4j;

/** The combination asked for (dtype, head dim, backend, ...) is not one this build can run; the message names it. */
public class UnsupportedConfigurationException extends Flashinfer4jException {
  private static final long serialVersionUID = 1L;

  /**
   * An exception that says which configuration cannot run, and why.
   *
   * @param message the message
   */
  public UnsupportedConfigurationException(String message) {
    super(message);
  }
}
