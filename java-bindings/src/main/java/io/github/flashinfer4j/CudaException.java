package io.github.flashinfer4j;

/** A CUDA runtime call failed (out of memory, launch failure, no device, ...); the message names the call. */
public class CudaException extends Flashinfer4jException {
  private static final long serialVersionUID = 1L;

  public CudaException(String message) {
    super(message);
  }
}
