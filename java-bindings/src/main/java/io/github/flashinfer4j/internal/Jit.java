package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.Flashinfer4jException;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.lowlevel.Fi4j;

/**
 * Kernel routing and preparation over the C API (fi4j_kernel_supported / fi4j_kernel_prepare), and the log line of
 * each run-time compile (INFO, with key and duration) and disk-cache hit (DEBUG) on the System.Logger
 * {@value #LOGGER_NAME}.
 */
public final class Jit {
  public static final String LOGGER_NAME = "io.github.flashinfer4j.jit";
  private static final System.Logger LOG = System.getLogger(LOGGER_NAME);

  private Jit() {}

  /** Which kernel serves a configuration. */
  public enum Route {
    CPU,
    AHEAD_OF_TIME,
    RUN_TIME_COMPILED;

    static Route of(int code) {
      switch (code) {
        case Fi4j.FI4J_ROUTE_CPU:
          return CPU;
        case Fi4j.FI4J_ROUTE_AOT:
          return AHEAD_OF_TIME;
        case Fi4j.FI4J_ROUTE_JIT:
          return RUN_TIME_COMPILED;
        default:
          throw new Flashinfer4jException("internal error: unknown kernel route " + code);
      }
    }
  }

  static Fi4j.fi4j_kernel_config toNative(KernelConfig c) {
    CoreAccess core = Access.core();
    AttentionAccess attention = Access.attention();
    Fi4j.fi4j_kernel_config n = new Fi4j.fi4j_kernel_config();
    n.op(core.code(c.op()))
        .dtype(core.code(c.dtype()))
        .head_dim(c.headDim())
        .soft_cap(c.softCap() ? 1 : 0)
        .pos_encoding(attention.code(c.posEncoding()))
        .path(attention.code(c.path()));
    return n;
  }

  /** The route, or throws UnsupportedConfigurationException (whose message says why and what to install). */
  public static Route route(KernelConfig c) {
    Native.ensureLoaded();
    try (Fi4j.fi4j_kernel_config n = toNative(c)) {
      int[] route = new int[1];
      Native.check(Fi4j.fi4j_kernel_supported(Access.core().code(c.device()), n, route));
      return Route.of(route[0]);
    }
  }

  /** The head dims with ahead-of-time attention kernels, as the native kernel set lists them (read once). */
  private static final class AotSet {
    static final int[] HEAD_DIMS = read();

    private static int[] read() {
      Native.ensureLoaded();
      int[] dims = new int[Fi4j.fi4j_attention_aot_head_dims((int[]) null, 0)];
      Fi4j.fi4j_attention_aot_head_dims(dims, dims.length);
      return dims;
    }
  }

  /**
   * Whether a call needs no run-time compiled kernel whatever its other settings: the CPU backend, or a head dim of
   * the ahead-of-time set (fi4j_attention_aot_head_dims: the native kernel set, the one list). Lets the per-call
   * paths (SingleDecode.run, SinglePrefill.run) skip the native routing query; every other head dim asks it.
   */
  public static boolean aheadOfTime(Device device, int headDim) {
    if (device.isCpu()) {
      return true;
    }
    for (int d : AotSet.HEAD_DIMS) {
      if (d == headDim) {
        return true;
      }
    }
    return false;
  }

  /** Makes the kernel of c ready on its device (compiling it when needed) and logs what that took. */
  public static Flashinfer4j.WarmUpResult prepare(KernelConfig c) {
    Native.ensureLoaded();
    try (Fi4j.fi4j_kernel_config n = toNative(c);
        Fi4j.fi4j_kernel_prepare_info info = new Fi4j.fi4j_kernel_prepare_info()) {
      Native.check(Fi4j.fi4j_kernel_prepare(Access.core().code(c.device()), n, info));
      return prepared(info, c);
    }
  }

  /**
   * What resolving a kernel found (fi4j_kernel_prepare_info, from fi4j_kernel_prepare or a plan), with the log line
   * of a compile (INFO) or a disk-cache load (DEBUG); {@code what} describes the configuration in the line and the
   * result.
   */
  public static Flashinfer4j.WarmUpResult prepared(Fi4j.fi4j_kernel_prepare_info info, KernelConfig what) {
    Route route = Route.of(info.route());
    String key = route == Route.RUN_TIME_COMPILED ? info.key().getString() : "";
    Flashinfer4j.WarmUpResult.Source source;
    switch (info.origin()) {
      case Fi4j.FI4J_JIT_COMPILED:
        source = Flashinfer4j.WarmUpResult.Source.COMPILED;
        LOG.log(System.Logger.Level.INFO, "compiled kernel {0} in {1} ms ({2})",
            key, Math.round(info.compile_ms()), what);
        break;
      case Fi4j.FI4J_JIT_DISK:
        source = Flashinfer4j.WarmUpResult.Source.DISK_CACHE;
        LOG.log(System.Logger.Level.DEBUG, "loaded kernel {0} from the disk cache in {1} ms ({2})",
            key, Math.round(info.total_ms()), what);
        break;
      case Fi4j.FI4J_JIT_MEMORY:
        source = Flashinfer4j.WarmUpResult.Source.MEMORY;
        break;
      default:
        source = Flashinfer4j.WarmUpResult.Source.AHEAD_OF_TIME;
        break;
    }
    return new Flashinfer4j.WarmUpResult(what, source, key, info.compile_ms(), info.total_ms());
  }
}
