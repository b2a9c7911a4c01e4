package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.CudaException;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4jException;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.NoCudaDeviceException;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.lang.ref.Cleaner;
import java.net.URL;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * The one door to the generated JNI layer: loading, status conversion, raw pointers, and the life cycle of native
 * resources ({@link Resource}: close, pins that keep a resource alive during a native call, and the Cleaner that
 * releases what a program forgot to close).
 */
public final class Native {
  public static final int CPU = -1;

  /** Where leaks are reported (System.Logger; java.util.logging by default). */
  public static final System.Logger LOG = System.getLogger("io.github.flashinfer4j");

  private static final Cleaner CLEANER = Cleaner.create(r -> {
    Thread t = new Thread(r, "flashinfer4j-cleaner");
    t.setDaemon(true);
    return t;
  });
  private static final AtomicLong CLEANER_RELEASES = new AtomicLong();

  private Native() {}

  /**
   * The one-time load: which natives jar (see {@link NativeArch}), then JavaCPP. When several classifier jars are
   * on the class path, JavaCPP 1.5.14 would take the first it finds among the preset's extensions in reverse order
   * (-sm100, -sm90, -sm89, -sm80), whatever the GPU, unless org.bytedeco.javacpp.platform.extension names one
   * (read once per JVM, for every JavaCPP library). Passing Loader.load(Fi4j.class, properties, ...) an extension
   * would not do: it initialises Fi4j first, whose static initializer loads with the JVM-wide properties. So the
   * chosen jar's two libraries are loaded by name first, and JavaCPP, which keeps loaded libraries by name, then
   * uses them.
   */
  private static final class Holder {
    static final Loaded LOADED = load();

    private static Loaded load() {
      try {
        String platform = Loader.getPlatform();
        List<String> present = new ArrayList<>();
        for (String arch : NativeArch.ARCHS) {
          if (resource(platform, arch, JNI_LIBRARY) != null) {
            present.add(arch);
          }
        }
        NativeArch.Choice choice = NativeArch.choose(System.getProperty(NativeArch.PROPERTY),
            System.getenv(NativeArch.ENV), Loader.loadProperties().getProperty("platform.extension"), present,
            NativeArch::detectComputeCapability);
        if (choice.error() != null) {
          return new Loaded(new Flashinfer4jException("flashinfer4j natives: " + choice.error()), null);
        }
        if (choice.arch() != null) {
          for (String library : new String[] {CORE_LIBRARY, JNI_LIBRARY}) {
            Loader.loadLibrary(Fi4j.class, new URL[] {resource(platform, choice.arch(), library)}, library);
          }
        }
        Loader.load(Fi4j.class);
        // -Dflashinfer4j.nvrtc=/path/to/libnvrtc.so.13 (e.g. one a Maven-packaged CUDA redistributable extracted):
        // given to the native lookup before anything can trigger it.
        String nvrtc = System.getProperty(NVRTC_PROPERTY, "");
        if (!nvrtc.isEmpty() && Fi4j.fi4j_jit_set_nvrtc_path(nvrtc) != Fi4j.FI4J_OK) {
          return new Loaded(new Flashinfer4jException("-D" + NVRTC_PROPERTY + ": "
              + Fi4j.fi4j_last_error().getString()), null);
        }
        String classifier = loadedClassifier(platform, choice.arch());
        LOG.log(System.Logger.Level.DEBUG, () -> "flashinfer4j: loaded natives " + classifier + " ("
            + (choice.arch() != null ? "" : "JavaCPP's pick: ") + choice.reason()
            + "; natives jars on the class path: " + present + ")");
        return new Loaded(null, classifier);
      } catch (Throwable t) {
        return new Loaded(t, null);
      }
    }
  }

  private static final String CORE_LIBRARY = "flashinfer4j";
  /** System property naming the NVRTC library file to use for run-time compilation (see JitCache). */
  public static final String NVRTC_PROPERTY = "flashinfer4j.nvrtc";
  private static final String JNI_LIBRARY = "jniFi4j";

  /** Outcome of the one-time load: the failure, or the classifier of the natives that were loaded. */
  private record Loaded(Throwable failure, String classifier) {}

  /** The library in the natives jar of {@code arch} (as the presets module lays it out), or null. */
  private static URL resource(String platform, String arch, String library) {
    return Fi4j.class.getClassLoader().getResource(
        "io/github/flashinfer4j/" + platform + "-" + arch + "/" + System.mapLibraryName(library));
  }

  /** The classifier folder the JNI library was loaded from (JavaCPP's cache keeps the jar layout). */
  private static String loadedClassifier(String platform, String chosen) {
    String path = Loader.getLoadedLibraries().get(JNI_LIBRARY);
    if (path != null) {
      Path dir = Paths.get(path).getParent();
      if (dir != null && dir.getFileName() != null && dir.getFileName().toString().startsWith(platform)) {
        return dir.getFileName().toString();
      }
    }
    return chosen != null ? platform + "-" + chosen : platform;
  }

  /** Loads the natives once; a missing classifier jar becomes an exception that says what to add. */
  public static void ensureLoaded() {
    Throwable failure = Holder.LOADED.failure();
    if (failure instanceof Flashinfer4jException) {
      throw new Flashinfer4jException(failure.getMessage(), failure);
    }
    if (failure != null) {
      throw new Flashinfer4jException(
          "flashinfer4j natives could not be loaded: add the dependency io.github.flashinfer4j:flashinfer4j-presets "
              + "with the classifier of your GPU (linux-x86_64-sm80, -sm89, -sm90 or -sm100) on linux-x86_64 ("
              + failure + ")",
          failure);
    }
  }

  /** The classifier of the natives jar that was loaded, e.g. "linux-x86_64-sm90". */
  public static String loadedClassifier() {
    ensureLoaded();
    return Holder.LOADED.classifier();
  }

  /** Throws the typed exception for a non-zero status, with the library's message for this thread. */
  public static void check(int status) {
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
  public static Pointer pointer(long address) {
    return address == 0 ? null : new RawPointer(address);
  }

  private static final class RawPointer extends Pointer {
    RawPointer(long address) {
      this.address = address;
    }
  }

  /**
   * Live allocations, their bytes and live streams that the native library handed out on {@code device} (the C
   * registry behind fi4j_malloc/fi4j_free): {@code [allocations, bytes, streams]}.
   */
  public static long[] memoryStats(Device device) {
    ensureLoaded();
    long[] count = new long[1];
    long[] bytes = new long[1];
    long[] streams = new long[1];
    check(Fi4j.fi4j_memory_stats(Access.core().code(device), count, bytes, streams));
    return new long[] {count[0], bytes[0], streams[0]};
  }

  /** How many resources the Cleaner has released because their owners were never closed (for tests). */
  public static long cleanerReleases() {
    return CLEANER_RELEASES.get();
  }

  /**
   * Runs {@code action} on the Cleaner thread once {@code owner} is unreachable (or when the returned Cleanable is
   * cleaned), without a leak warning. The action must not reference {@code owner}.
   */
  public static Cleaner.Cleanable whenUnreachable(Object owner, Runnable action) {
    return CLEANER.register(owner, action);
  }

  /** Frees the native side of a resource; must not reference the Java object that owns it. */
  public interface Release {
    void release();
  }

  /** fi4j_free of one allocation. */
  public static Release freeMemory(int deviceCode, long address) {
    return () -> check(Fi4j.fi4j_free(deviceCode, pointer(address)));
  }

  /**
   * A native resource (an allocation, a stream) or a handle over one, shared by an object and its views.
   *
   * <p>Life cycle: open until {@link #close()}; closing is idempotent and never releases twice. Native calls
   * {@link #pin() pin} the resources they use: a close while another thread holds a pin marks the resource closed
   * (new pins fail with {@link IllegalStateException}) and defers the release until the last pin is dropped, so a
   * concurrent close can never free memory under a running native call. A pin also keeps the resource strongly
   * reachable, so the Cleaner cannot run while a call uses it.
   *
   * <p>When a resource that owns native memory becomes unreachable without being closed, the Cleaner releases it
   * on its own thread and logs a WARNING naming what leaked, once per resource. The Cleaner action is a separate
   * object ({@code State}) that holds only the native address, the release function and a description: it never
   * references the resource or its owner (which would keep them reachable forever).
   */
  public static final class Resource {
    private final State state;
    private final Cleaner.Cleanable cleanable;  // null when there is nothing to release
    @SuppressWarnings("unused")  // only held: whatever keeps borrowed memory valid stays reachable with this
    private final Object keepAlive;

    private Resource(State state, boolean track, Object keepAlive) {
      this.state = state;
      this.cleanable = track ? CLEANER.register(this, state) : null;
      this.keepAlive = keepAlive;
    }

    /**
     * A resource that releases through {@code release} when closed or, if never closed, by the Cleaner.
     * {@code description} (e.g. "Tensor(F16, [4, 8], cpu, 64 bytes)") names it in the leak warning.
     */
    public static Resource owning(Release release, Object description) {
      return new Resource(new State(release, description), true, null);
    }

    /**
     * A resource that releases through {@code release} when closed, without a Cleaner of its own: its owner closes
     * it, or registers its own action with {@link Native#whenUnreachable} (e.g. plans, whose unreachability is the
     * normal end of a result nobody kept and so is not worth a warning).
     */
    public static Resource owningUntracked(Release release, Object description) {
      return new Resource(new State(release, description), false, null);
    }

    /** A resource with nothing native to release: only its open/closed state (views, wraps, borrowed handles). */
    public static Resource borrowed(Object description) {
      return new Resource(new State(null, description), false, null);
    }

    /**
     * A borrowed resource over memory that {@code keepAlive} keeps valid while it is reachable (a mapped file's
     * {@link java.nio.MappedByteBuffer}): the resource, and so every object that holds it and every native call that
     * pins it, keeps {@code keepAlive} reachable.
     */
    public static Resource borrowed(Object description, Object keepAlive) {
      return new Resource(new State(null, description), false, java.util.Objects.requireNonNull(keepAlive));
    }

    public boolean isClosed() {
      return (state.word.get() & State.CLOSED) != 0;
    }

    /** Marks the resource in use by a native call; throws IllegalStateException once it is closed. */
    public void pin() {
      AtomicInteger word = state.word;
      while (true) {
        int w = word.get();
        if ((w & State.CLOSED) != 0) {
          throw new IllegalStateException(state.description + " is closed");
        }
        if ((w & State.PINS) == State.PINS) {
          throw new IllegalStateException(state.description + " has too many concurrent users");
        }
        if (word.compareAndSet(w, w + 1)) {
          return;
        }
      }
    }

    /** Ends a {@link #pin()}; the last one after a close releases the resource. */
    public void unpin() {
      int w = state.word.decrementAndGet();
      if (w == State.CLOSED) {
        try {
          releaseNow();
        } catch (RuntimeException e) {
          LOG.log(System.Logger.Level.WARNING, "flashinfer4j: releasing " + state.description + " failed", e);
        }
      }
    }

    /**
     * Closes: idempotent (a second close does nothing, never a second release). Returns true for the call that
     * closed it. Releases now when no native call holds a pin, else when the last pin is dropped.
     */
    public boolean close() {
      AtomicInteger word = state.word;
      while (true) {
        int w = word.get();
        if ((w & State.CLOSED) != 0) {
          return false;
        }
        if (word.compareAndSet(w, w | State.CLOSED)) {
          if ((w & State.PINS) == 0) {
            releaseNow();
          }
          return true;
        }
      }
    }

    private void releaseNow() {
      if (cleanable != null) {
        cleanable.clean();  // runs State.run() once and unregisters it from the Cleaner
      } else if (state.release != null) {
        state.release.release();  // untracked: close() and the last unpin() reach here once, after CLOSED is set
      }
    }

    @Override
    public String toString() {
      return String.valueOf(state.description);
    }
  }

  /** The Cleaner action of a {@link Resource}: everything needed to release it, and nothing that reaches it. */
  private static final class State implements Runnable {
    static final int CLOSED = 1 << 30;
    static final int PINS = CLOSED - 1;

    /** CLOSED bit | number of pins; read and written by user threads and the Cleaner thread. */
    final AtomicInteger word = new AtomicInteger();
    final Release release;
    final Object description;

    State(Release release, Object description) {
      this.release = release;
      this.description = description;
    }

    /** Runs exactly once: from close()/unpin() through Cleanable.clean(), or on the Cleaner thread. */
    @Override
    public void run() {
      boolean leaked = (word.getAndUpdate(w -> w | CLOSED) & CLOSED) == 0;
      if (!leaked) {
        if (release != null) {
          release.release();  // failures reach the caller of close()
        }
        return;
      }
      // Cleaner thread: nothing may throw out of here
      CLEANER_RELEASES.incrementAndGet();
      try {
        LOG.log(System.Logger.Level.WARNING, "flashinfer4j: " + description
            + " was not closed; the Cleaner released it. Close flashinfer4j objects (try-with-resources) to free "
            + "native memory promptly.");
        if (release != null) {
          release.release();
        }
      } catch (RuntimeException | Error e) {
        try {
          LOG.log(System.Logger.Level.WARNING, "flashinfer4j: the Cleaner could not release " + description, e);
        } catch (RuntimeException | Error ignored) {
          // logging itself failed (e.g. during shutdown): nothing more to do
        }
      }
    }
  }

  /**
   * The resources one native call uses, pinned for its duration: {@code try (Native.Pins pins = new Native.Pins())
   * { ... CORE.pointer(t, pins) ... native call ... }} ({@link CoreAccess}). Not thread-safe (one call, one
   * thread).
   *
   * <p>While a CUDA graph capture is open on this thread ({@link #beginRetention()}), every pin is also retained
   * by the capture's own Pins, which the graph can hold until it is destroyed, so that tensors a graph replays
   * cannot be freed under it.
   */
  public static final class Pins implements AutoCloseable {
    private static final ThreadLocal<Pins> RETENTION = new ThreadLocal<>();

    private Resource[] held = new Resource[8];
    private int size;

    /** Pins {@code r} until {@link #close()}; throws IllegalStateException when it is closed. */
    public void add(Resource r) {
      r.pin();
      push(r);
      Pins retention = RETENTION.get();
      if (retention != null && retention != this) {
        r.pin();  // cannot fail but in a race with close; this Pins then still unpins the first pin
        retention.push(r);
      }
    }

    private void push(Resource r) {
      if (size == held.length) {
        held = Arrays.copyOf(held, size * 2);
      }
      held[size++] = r;
    }

    /** Number of pins held. */
    public int size() {
      return size;
    }

    @Override
    public void close() {
      for (int i = size - 1; i >= 0; i--) {
        Resource r = held[i];
        held[i] = null;
        r.unpin();
      }
      size = 0;
    }

    /**
     * Starts retaining, on this thread, every resource pinned by native calls (for a CUDA graph capture); the
     * returned Pins holds them until it is closed. End with {@link #endRetention()}.
     */
    public static Pins beginRetention() {
      Pins p = new Pins();
      RETENTION.set(p);
      return p;
    }

    public static void endRetention() {
      RETENTION.remove();
    }
  }

  /** Describes an owned allocation in leak warnings, computed only when one is logged. */
  public static final class AllocationInfo {
    private final String what;
    private final DType dtype;
    private final long[] shape;
    private final Device device;
    private final long bytes;

    public AllocationInfo(String what, DType dtype, long[] shape, Device device, long bytes) {
      this.what = what;
      this.dtype = dtype;
      this.shape = shape.clone();
      this.device = device;
      this.bytes = bytes;
    }

    @Override
    public String toString() {
      return what + "(" + dtype + ", " + Arrays.toString(shape) + ", " + device + ", " + bytes + " bytes)";
    }
  }
}
