package io.github.flashinfer4j;

import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/** The one door to the generated JNI layer: loading, status conversion and raw pointers. */
final class Native {
  static final int CPU = -1;

  private Native() {}

  private static final class Holder {
    static final Throwable LOAD_FAILURE = load();

    private static Throwable load() {
      try {
        Loader.load(Fi4j.class);
        return null;
      } catch (Throwable t) {
        return t;
      }
    }
  }

  /** Loads the natives once; a missing classifier jar becomes an exception that says what to add. */
  static void ensureLoaded() {
    Throwable failure = Holder.LOAD_FAILURE;
    if (failure != null) {
      throw new Flashinfer4jException(
          "flashinfer4j natives could not be loaded: add the dependency io.github.flashinfer4j:flashinfer4j-presets "
              + "with the classifier of your GPU (linux-x86_64-sm80, -sm89, -sm90 or -sm100) on linux-x86_64 ("
              + failure + ")",
          failure);
    }
  }

  /** Throws the typed exception for a non-zero status, with the library's message for this thread. */
  static void check(int status) {
    if (status == Fi4j.FI4J_OK) {
      return;
    }
    String message = Fi4j.fi4j_last_error().getString();
    switch (status) {
      case Fi4j.FI4J_ERR_INVALID_ARGUMENT:
        throw new InvalidArgumentException(message);
      case Fi4j.FI4J_ERR_UNSUPPORTED:
        throw new UnsupportedConfigurationException(message);
      case Fi4j.FI4J_ERR_NO_DEVICE:
        throw new NoCudaDeviceException(message);
      case Fi4j.FI4J_ERR_CUDA:
      case Fi4j.FI4J_ERR_OUT_OF_MEMORY:
        throw new CudaException(message);
      default:
        throw new Flashinfer4jException("internal error (status " + status + "): " + message);
    }
  }

  /** A non-owning JavaCPP pointer at a raw address (0 gives null). */
  static Pointer pointer(long address) {
    return address == 0 ? null : new RawPointer(address);
  }

  private static final class RawPointer extends Pointer {
    RawPointer(long address) {
      this.address = address;
    }
  }
}
