package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.nio.file.Path;
import org.bytedeco.javacpp.BytePointer;

/**
 * The run-time compilation (JIT) cache of this process: kernels for configurations outside the ahead-of-time set
 * (decode and prefill at head dims other than 64, 128 and 256) are compiled with NVRTC for
 * the GPU's architecture and kept as {@code .cubin} files, one per kernel, named by a key made of the library
 * version, the architecture (such as {@code sm_90}) and the configuration. A file is written to a temporary name
 * and renamed, so that two threads or processes asking for one kernel at once never see a partial file; within a
 * process each kernel is compiled once.
 *
 * <p>Where: the directory set by {@link #setDirectory(Path)}, else the environment variable
 * {@code FLASHINFER4J_CACHE_DIR}, else {@code $XDG_CACHE_HOME/flashinfer4j}, else {@code ~/.cache/flashinfer4j};
 * created when first written. NVRTC ({@code libnvrtc.so.13} or {@code .12}) is looked up at run time, once per
 * process: the file named by the system property {@code flashinfer4j.nvrtc} (read when the natives load) or the
 * environment variable {@code FLASHINFER4J_NVRTC} if set (the only candidate then), else the dynamic loader's search
 * path (which also finds a copy another library has already loaded into the process), {@code $CUDA_HOME/lib64} and
 * {@code /usr/local/cuda/lib64}. Without it the ahead-of-time kernels still work.
 *
 * <p>Kernels land here when a configuration first needs them (plan, {@link Flashinfer4j#warmUp(KernelConfig...)}
 * or the first call); a later process finds them without compiling. Run-time compiled today: decode and prefill
 * at head dims other than 64, 128 and 256 (multiples of 16 from 16 to 256). All methods are thread-safe; the
 * directory setting is process-wide.
 */
public final class JitCache {
  private JitCache() {}

  /** Number and total size of the cached kernel files. */
  public record Stats(long files, long bytes) {
    /**
     * Checks that the counts are not negative.
     *
     * @param files the number of cached kernel files
     * @param bytes their total size in bytes
     */
    public Stats {
      if (files < 0 || bytes < 0) {
        throw InvalidArgumentException.of("files and bytes", ">= 0", files + ", " + bytes);
      }
    }
  }

  /**
   * Whether NVRTC was found, so that kernels outside the ahead-of-time set can be compiled on this machine.
   *
   * @return whether NVRTC was found, so that kernels outside the ahead-of-time set can be compiled on this machine
   */
  public static boolean isCompilerAvailable() {
    Native.ensureLoaded();
    int[] available = new int[1];
    Native.check(Fi4j.fi4j_jit_available(available));
    return available[0] != 0;
  }

  /**
   * Why NVRTC is unavailable (what to install), or "" when {@link #isCompilerAvailable()}.
   *
   * @return why NVRTC is unavailable (what to install), or "" when {@link #isCompilerAvailable()}
   */
  public static String compilerUnavailableReason() {
    Native.ensureLoaded();
    int[] available = new int[1];
    Native.check(Fi4j.fi4j_jit_available(available));
    return Fi4j.fi4j_jit_unavailable_reason().getString();
  }

  /**
   * The cache directory in force now (it may not exist yet).
   *
   * @return the cache directory in force now (it may not exist yet)
   */
  public static Path directory() {
    Native.ensureLoaded();
    BytePointer dir = Fi4j.fi4j_jit_cache_dir();
    if (dir == null || dir.isNull()) {
      throw new Flashinfer4jException(Fi4j.fi4j_last_error().getString());
    }
    return Path.of(dir.getString());
  }

  /**
   * Uses {@code dir} as the cache directory of this process (made absolute; created when first written).
   *
   * @param dir the cache folder, created when needed
   */
  public static void setDirectory(Path dir) {
    Checks.notNull(dir, "dir");
    Native.ensureLoaded();
    Native.check(Fi4j.fi4j_jit_set_cache_dir(dir.toAbsolutePath().toString()));
  }

  /** Returns to the default directory (environment, XDG cache or home), undoing {@link #setDirectory(Path)}. */
  public static void useDefaultDirectory() {
    Native.ensureLoaded();
    Native.check(Fi4j.fi4j_jit_set_cache_dir((String) null));
  }

  /**
   * Number and total bytes of the cached kernel files in {@link #directory()} (zero when it does not exist).
   *
   * @return number and total bytes of the cached kernel files in {@link #directory()} (zero when it does not exist)
   */
  public static Stats stats() {
    Native.ensureLoaded();
    long[] files = new long[1];
    long[] bytes = new long[1];
    Native.check(Fi4j.fi4j_jit_cache_stats(files, bytes));
    return new Stats(files[0], bytes[0]);
  }

  /** Removes the cached kernel files ({@code *.cubin}) of {@link #directory()}; other files stay. */
  public static void clear() {
    Native.ensureLoaded();
    Native.check(Fi4j.fi4j_jit_cache_clear());
  }
}
