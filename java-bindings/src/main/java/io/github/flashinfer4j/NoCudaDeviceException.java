package io.github.flashinfer4j;

/** A CUDA device was asked for on a machine where none is usable (no driver, no device, driver too old). */
public class NoCudaDeviceException extends CudaException {
  private static final long serialVersionUID = 1L;

  /**
   * An exception that says why no CUDA device is usable.
   *
   * @param message the message
   */
  public NoCudaDeviceException(String message) {
    super(message);
  }
}
