package io.github.flashinfer4j.testing;

import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.JitCache;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * GPU availability for tests: GPU tests are skipped without a device, and fail instead when
 * {@code -Dflashinfer4j.requireGpu=true} (the GPU machine's bundle sets it, so a broken driver cannot pass
 * silently).
 */
public final class Gpu {
  /** Whether the tests run under compute-sanitizer (ci's SANITIZER=memcheck|racecheck...): loops shrink. */
  public static final boolean UNDER_SANITIZER =
      System.getenv("SANITIZER") != null && !System.getenv("SANITIZER").isEmpty();

  private Gpu() {}

  public static boolean available() {
    int count = Device.cudaDeviceCount();
    if (count == 0 && Boolean.getBoolean("flashinfer4j.requireGpu")) {
      throw new IllegalStateException("flashinfer4j.requireGpu=true but " + Device.noCudaDeviceReason());
    }
    return count > 0;
  }

  /**
   * For tests of run-time compiled kernels: aborts (skips) the test class without NVRTC, or fails under
   * {@code -Dflashinfer4j.requireGpu=true}, where a GPU machine without NVRTC is a broken setup.
   */
  public static void requireCompiler() {
    if (!JitCache.isCompilerAvailable()) {
      if (Boolean.getBoolean("flashinfer4j.requireGpu")) {
        throw new IllegalStateException("GPU run without NVRTC: " + JitCache.compilerUnavailableReason());
      }
      Assumptions.abort("NVRTC unavailable: " + JitCache.compilerUnavailableReason());
    }
  }

  /** The CPU backend, plus CUDA device 0 when present. */
  public static List<Device> devices() {
    List<Device> d = new ArrayList<>();
    d.add(Device.cpu());
    if (available()) {
      d.add(Device.cuda(0));
    }
    return d;
  }
}
