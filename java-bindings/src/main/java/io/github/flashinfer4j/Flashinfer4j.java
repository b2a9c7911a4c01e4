package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Jit;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Entry points about kernels as a whole: whether a configuration runs on this machine, and compiling the kernels a
 * deployment needs before it serves.
 *
 * <p>Kernels outside the ahead-of-time set (on CUDA: decode and prefill head dims other than 64, 128 and 256) are
 * compiled at run time with NVRTC the first time they are needed (plan, warm-up, or the first call), stored in the
 * {@link JitCache} directory, and found there by later processes without compiling. Each compile is logged at
 * INFO on the System.Logger {@code io.github.flashinfer4j.jit} with its cache key and duration, each disk-cache
 * hit at DEBUG. All methods are thread-safe.
 */
public final class Flashinfer4j {
  private Flashinfer4j() {}

  /** What {@link #warmUp(KernelConfig...)} did for one configuration. */
  public record WarmUpResult(KernelConfig config, Source source, String key, double compileMillis,
      double totalMillis) {
    /** Where the kernel came from. */
    public enum Source {
      /** Compiled ahead of time into the natives (or the CPU reference): nothing to do. */
      AHEAD_OF_TIME,
      /** Already compiled and loaded by this process. */
      MEMORY,
      /** Found in the disk cache (compiled by an earlier process) and loaded. */
      DISK_CACHE,
      /** Compiled now with NVRTC, stored in the disk cache and loaded. */
      COMPILED
    }

    /**
     * Checks that no component is null.
     *
     * @param config the configuration
     * @param source where its kernel came from
     * @param key the kernel's cache key (empty for ahead-of-time and CPU kernels)
     * @param compileMillis milliseconds spent compiling (0 when nothing was compiled)
     * @param totalMillis milliseconds the warm-up of this configuration took in all
     */
    public WarmUpResult {
      Checks.notNull(config, "config");
      Checks.notNull(source, "source");
      Checks.notNull(key, "key");
    }

    /**
     * Whether this call ran the compiler.
     *
     * @return whether this call ran the compiler
     */
    public boolean compiled() {
      return source == Source.COMPILED;
    }
  }

  /**
   * The native library's version as major*10000 + minor*100 + patch (100 for 0.1.0); loads the natives on first
   * use. After that it is one JNI call that does no work: the reference cost of a call into the library.
   *
   * @return the native library's version as major*10000 + minor*100 + patch (100 for 0.1.0)
   */
  public static int nativeVersion() {
    Native.ensureLoaded();
    return Fi4j.fi4j_version();
  }

  /**
   * Whether the configuration runs on its device with this build and machine: ahead of time, or compiled at run
   * time when NVRTC is available. Compiles nothing. See {@link #unsupportedReason(KernelConfig)} for why not.
   *
   * @param config the kernel configuration
   * @return whether the configuration runs on its device with this build and machine
   */
  public static boolean isSupported(KernelConfig config) {
    return unsupportedReason(config).isEmpty();
  }

  /**
   * Why the configuration cannot run (the head dim or dtype, and what to install when it needs run-time
   * compilation but NVRTC is missing), or empty when it can.
   *
   * @param config the kernel configuration
   * @return why the configuration cannot run (the head dim or dtype, and what to install when it needs run-time
   *     compilation but NVRTC is missing), or empty when it can
   */
  public static Optional<String> unsupportedReason(KernelConfig config) {
    Checks.notNull(config, "config");
    try {
      Jit.route(config);
      return Optional.empty();
    } catch (UnsupportedConfigurationException e) {
      return Optional.of(e.getMessage());
    }
  }

  /**
   * Whether the configuration runs on a kernel compiled at run time (false for ahead-of-time and CPU).
   *
   * @param config the kernel configuration
   * @return whether the configuration runs on a kernel compiled at run time (false for ahead-of-time and CPU)
   */
  public static boolean isCompiledAtRunTime(KernelConfig config) {
    Checks.notNull(config, "config");
    return Jit.route(config) == Jit.Route.RUN_TIME_COMPILED;
  }

  /**
   * Makes the kernels of these configurations ready on their devices: compiles (or loads from the disk cache)
   * every run-time compiled one now, so that serving pays no compile. Ahead-of-time configurations cost nothing.
   *
   * @param configs the configurations to compile (or find in the disk cache) now
   * @return one result per configuration, in the order given: where its kernel came from
   * @throws UnsupportedConfigurationException for a configuration that cannot run (see
   *     {@link #unsupportedReason(KernelConfig)}); the configurations before it are ready
   */
  public static List<WarmUpResult> warmUp(KernelConfig... configs) {
    Checks.notNull(configs, "configs");
    List<WarmUpResult> results = new ArrayList<>(configs.length);
    for (KernelConfig c : configs) {
      if (c == null) {
        throw InvalidArgumentException.of("configs[" + results.size() + "]", "non-null", "null");
      }
      results.add(Jit.prepare(c));
    }
    return List.copyOf(results);
  }
}
