package io.github.flashinfer4j;

/** A CUDA runtime call failed (out of memory, launch failure, no device, ...); the message names the call. */
public class CudaException extends Flashinfer4jException {
  private static final long serialVersionUID = 1L;

  /**
   * An exception with the CUDA error's message.
   *
   * @param message the message
   */
  public CudaException(String message) {
    super(message);
  }
}
