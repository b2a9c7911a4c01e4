package io.github.flashinfer4j.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.internal.Native;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * The shared runner of the table-driven fuzz tests, one table of cases per op family ({@code TensorFuzzTest},
 * {@code attention.PagedKvFuzzTest}, {@code attention.DecodeFuzzTest}, {@code attention.PrefillFuzzTest},
 * {@code safetensors.SafetensorsFuzzTest}; a new family adds one such file). A family's table holds mutations and
 * controls. Each case builds a random valid problem (an {@link Env}, or the family's subclass of it), applies one
 * mutation with random values, and the call must then throw the typed exception the mutation calls for
 * ({@link InvalidArgumentException}, {@link UnsupportedConfigurationException}, {@link IllegalStateException}, or
 * what the mutation names) with a message naming the culprit ("name must be expected, got actual" for invalid
 * arguments) — never another exception, a crash, or a success. Every eighth case runs a control instead: an
 * unmutated call that must succeed, with outputs that were poisoned before ({@link #poison}) and that
 * {@link #checkOutput} compares with the reference: no NaN where the reference has none, no unwritten element, and
 * within the dtype's tolerance of the reference where the family gives one (CUDA against the CPU backend). After
 * every case the bytes around the guarded tensors (guard regions of the same allocation) must be untouched, after a
 * rejected call the watched tensors themselves must be unchanged, and after the run no native memory may have
 * leaked.
 *
 * <p>Seeded and sized by system properties: {@code -Dflashinfer4j.fuzzSeed=S}; {@code -Dflashinfer4j.fuzzCases=N}
 * cases per family on the CPU backend (or {@code -Dflashinfer4j.fuzzCases.<family>=N} for one family; default 80 per
 * table entry), a tenth of that on CUDA, where every case allocates device memory, and a fortieth under
 * compute-sanitizer. A failure names the family, case number, mutation and both seeds; {@code
 * -Dflashinfer4j.fuzzReplay=<case seed>@<mutation name>} runs that one case alone.
 */
public final class Fuzz {
  public static final long SEED = Long.getLong("flashinfer4j.fuzzSeed", 0x5EEDF14L);
  /** Cases per table entry on the CPU backend when no property sets the count. */
  public static final int CASES_PER_ENTRY = 80;
  /** The GPU bundle's run-tests.sh sets SANITIZER when it runs the suite under compute-sanitizer. */
  public static final boolean UNDER_SANITIZER = Gpu.UNDER_SANITIZER;
  public static final int GUARD = 64;  // guard elements before and after each guarded tensor
  public static final short CANARY = 0x2bad;

  public static final Class<InvalidArgumentException> IAE = InvalidArgumentException.class;
  public static final Class<IllegalStateException> ISE = IllegalStateException.class;
  public static final Class<UnsupportedConfigurationException> UCE = UnsupportedConfigurationException.class;

  private Fuzz() {}

  @FunctionalInterface
  public interface Call {
    void run() throws Throwable;
  }

  @FunctionalInterface
  public interface Maker<E extends Env> {
    Call make(E e) throws Throwable;
  }

  @FunctionalInterface
  public interface EnvFactory<E extends Env> {
    E create(Device dev, Device other, Random rnd);
  }

  /** What a mutated call must do: throw one of {@code types} naming one of {@code fragments}, or succeed. */
  public static final class Mutation<E extends Env> {
    public final String name;
    final List<Class<? extends Throwable>> types;
    final String[] fragments;
    final Maker<E> maker;
    final boolean needsOtherDevice;
    final boolean cpuOnly;
    /** Damage that may leave the input valid: the call may also succeed (its own checks then judge the result). */
    final boolean maySucceed;

    public Mutation(String name, List<Class<? extends Throwable>> types, String[] fragments, Maker<E> maker,
        boolean needsOtherDevice, boolean cpuOnly) {
      this(name, types, fragments, maker, needsOtherDevice, cpuOnly, false);
    }

    Mutation(String name, List<Class<? extends Throwable>> types, String[] fragments, Maker<E> maker,
        boolean needsOtherDevice, boolean cpuOnly, boolean maySucceed) {
      this.name = name;
      this.types = types;
      this.fragments = fragments;
      this.maker = maker;
      this.needsOtherDevice = needsOtherDevice;
      this.cpuOnly = cpuOnly;
      this.maySucceed = maySucceed;
    }

    public boolean mustSucceed() {
      return types.isEmpty();
    }
  }

  /** One family's cases. */
  public static final class Table<E extends Env> {
    final List<Mutation<E>> entries = new ArrayList<>();

    public List<Mutation<E>> entries() {
      return Collections.unmodifiableList(entries);
    }

    public void add(Mutation<E> m) {
      entries.add(m);
    }

    public void add(String name, Class<? extends Throwable> type, String fragments, Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(type), fragments.split("\\|"), maker, false, false));
    }

    public void add2(String name, Class<? extends Throwable> a, Class<? extends Throwable> b, String fragments,
        Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(a, b), fragments.split("\\|"), maker, false, false));
    }

    /** A mutation that needs a second device (the CPU backend and a CUDA device). */
    public void addOther(String name, String fragments, Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(IAE), fragments.split("\\|"), maker, true, false));
    }

    /** A mutation for the CPU backend only (say why where it is added). */
    public void addCpu(String name, Class<? extends Throwable> type, String fragments, Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(type), fragments.split("\\|"), maker, false, true));
    }

    /**
     * Random damage that may happen to leave the input valid (a flipped bit in a name): the call throws {@code type}
     * naming one of {@code fragments}, or succeeds and passes the checks the call makes itself.
     */
    public void addMaybe(String name, Class<? extends Throwable> type, String fragments, Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(type), fragments.split("\\|"), maker, false, false, true));
    }

    /** A control: the call must succeed. */
    public void valid(String name, Maker<E> maker) {
      entries.add(new Mutation<>(name, List.of(), new String[0], maker, false, false));
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // The random valid problem a case starts from: what every family shares
  // ------------------------------------------------------------------------------------------------------------

  /** A case's device, random source and resources; a family's subclass adds its problem. */
  public static class Env implements AutoCloseable {
    public final Device dev;
    public final Device other;  // another device, or null when there is none
    public final Random rnd;
    public final DType dtype;
    public final DType otherDtype;
    public final List<AutoCloseable> owned = new ArrayList<>();
    /** Flat tensors whose first and last GUARD elements are canaries. */
    public final List<Tensor> guarded = new ArrayList<>();
    /** Tensors that a rejected call must leave unchanged. */
    public final List<Tensor> watched = new ArrayList<>();

    public Env(Device dev, Device other, Random rnd) {
      this.dev = dev;
      this.other = other;
      this.rnd = rnd;
      dtype = rnd.nextBoolean() ? DType.F16 : DType.BF16;
      otherDtype = dtype == DType.F16 ? DType.BF16 : DType.F16;
    }

    public <T extends AutoCloseable> T own(T t) {
      owned.add(t);
      return t;
    }

    public float[] randoms(long n) {
      float[] a = new float[(int) n];
      for (int i = 0; i < a.length; i++) {
        a[i] = (float) rnd.nextGaussian();
      }
      return a;
    }

    /** A contiguous tensor of {@code shape} inside a larger allocation whose ends hold canaries. */
    public Tensor guardedTensor(DType dt, long... shape) {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      Tensor flat = own(Tensor.empty(dev, dt, GUARD + n + GUARD));
      fillCanary(flat.narrow(0, 0, GUARD));
      fillCanary(flat.narrow(0, GUARD + n, GUARD));
      guarded.add(flat);
      Tensor t = flat.narrow(0, GUARD, n).reshape(shape);
      if (dt.isFloatingPoint()) {
        t.copyFrom(randoms(n));
      } else {
        t.fillBytes(0);
      }
      return t;
    }

    static void fillCanary(Tensor t) {
      ByteBuffer b = ByteBuffer.allocate((int) t.byteSize());
      while (b.remaining() >= 2) {
        b.putShort(CANARY);
      }
      b.flip();
      t.copyFrom(b);
    }

    public Tensor ints(int[] data) {
      return own(Tensor.fromInts(dev, data, data.length));
    }

    /** A small random tensor of a random (or given) dtype, rows >= 2 and cols >= 2. */
    public Tensor small(DType dt) {
      long rows = 2 + rnd.nextInt(4);
      long cols = 2 + rnd.nextInt(5);
      Tensor t = own(Tensor.empty(dev, dt, rows, cols));
      t.fillBytes(rnd.nextInt(256));
      return t;
    }

    public DType anyDtype() {
      DType[] all = DType.values();
      return all[rnd.nextInt(all.length)];
    }

    /** A value outside [lo, hi): just below, just above, far above, or an int extreme. */
    public int outside(int lo, int hi) {
      switch (rnd.nextInt(6)) {
        case 0:
          return lo - 1;
        case 1:
          return hi;
        case 2:
          return hi + 1 + rnd.nextInt(1000);
        case 3:
          return Integer.MIN_VALUE;
        case 4:
          return Integer.MAX_VALUE;
        default:
          return lo - 1 - rnd.nextInt(1000);
      }
    }

    public long outsideLong(long lo, long hi) {
      switch (rnd.nextInt(5)) {
        case 0:
          return lo - 1;
        case 1:
          return hi;
        case 2:
          return Long.MIN_VALUE;
        case 3:
          return Long.MAX_VALUE;
        default:
          return hi + 1 + rnd.nextInt(1 << 20);
      }
    }

    public int nonPositive() {
      switch (rnd.nextInt(3)) {
        case 0:
          return 0;
        case 1:
          return -1 - rnd.nextInt(100);
        default:
          return Integer.MIN_VALUE;
      }
    }

    /** A second tensor like t, on the other device. */
    public Tensor onOther(Tensor t) {
      return own(Tensor.zeros(other, t.dtype(), t.shape()));
    }

    /** A contiguous copy of t on the CPU backend, owned by this case (for a reference run). */
    public Tensor onCpu(Tensor t) {
      return own(t.to(Device.cpu()));
    }

    @Override
    public void close() {
      for (int i = owned.size() - 1; i >= 0; i--) {
        try {
          owned.get(i).close();
        } catch (Exception e) {
          throw new AssertionError("closing " + owned.get(i) + " failed", e);
        }
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Helpers for tables and controls
  // ------------------------------------------------------------------------------------------------------------

  public static int[] with(int[] a, int i, int v) {
    int[] c = a.clone();
    c[i] = v;
    return c;
  }

  public static long[] withL(long[] a, int i, long v) {
    long[] c = a.clone();
    c[i] = v;
    return c;
  }

  public static byte[] bytes(Tensor t) {
    ByteBuffer b = ByteBuffer.allocate((int) t.byteSize());
    t.copyTo(b);
    return b.array();
  }

  /** Fills outputs with 0xff bytes (NaN in every float dtype), so that an unwritten element shows. */
  public static void poison(Tensor... outputs) {
    for (Tensor t : outputs) {
      if (t != null) {
        t.fillBytes(0xff);
      }
    }
  }

  /**
   * The control rule for an output: no NaN (a poisoned, unwritten element reads as NaN) where the reference has
   * none, and, given a reference (the same call on the CPU backend), within {@code tol} of it. reference may be null:
   * then no element may be NaN, as every control's inputs are finite.
   */
  public static void checkOutput(Tensor actual, Tensor reference, double tol, String what) {
    float[] a = actual.toFloatArray();
    float[] r = reference == null ? null : reference.toFloatArray();
    for (int i = 0; i < a.length; i++) {
      if (Float.isNaN(a[i]) && (r == null || !Float.isNaN(r[i]))) {
        fail(what + ": element " + i + " of " + a.length + " is NaN (unwritten, or NaN "
            + (r == null ? "from finite inputs)" : "where the reference has " + r[i] + ")"));
      }
    }
    if (r != null) {
      Assertions2.assertClose(r, a, tol, what + " against the CPU backend");
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // The runner
  // ------------------------------------------------------------------------------------------------------------

  /** Cases for {@code family} on {@code device}: see the class comment. */
  public static int cases(String family, Device device, int entries) {
    int cpu = Integer.getInteger("flashinfer4j.fuzzCases." + family,
        Integer.getInteger("flashinfer4j.fuzzCases", CASES_PER_ENTRY * entries));
    return device.isCpu() ? cpu : Math.max(1, cpu / (UNDER_SANITIZER ? 40 : 10));
  }

  /** The CPU backend and CUDA device 0 when present: the other device of a mutation that needs two. */
  public static Device otherDevice(Device device) {
    if (Device.cudaDeviceCount() == 0) {
      return null;
    }
    return device.isCpu() ? Device.cuda(0) : Device.cpu();
  }

  private static void checkGuards(Env e, String where) {
    for (Tensor flat : e.guarded) {
      if (!flat.isOpen()) {
        continue;
      }
      for (Tensor g : new Tensor[] {flat.narrow(0, 0, GUARD), flat.narrow(0, flat.numel() - GUARD, GUARD)}) {
        ByteBuffer b = ByteBuffer.allocate((int) g.byteSize());
        g.copyTo(b);
        b.flip();
        while (b.remaining() >= 2) {
          if (b.getShort() != CANARY) {
            fail(where + ": a guard region next to " + flat + " was overwritten");
          }
        }
      }
    }
  }

  private static boolean namesSomething(Throwable t, Mutation<?> m) {
    String msg = t.getMessage();
    if (msg == null || msg.isEmpty()) {
      return false;
    }
    if (t instanceof InvalidArgumentException && !(msg.contains(" must be ") && msg.contains(", got "))) {
      return false;
    }
    for (String f : m.fragments) {
      if (msg.contains(f)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Runs {@code family}'s table on {@code device}: every eighth case a control, the others cycling through the
   * mutations in a fresh random order each round, so that every mutation runs (cases / 8 * 7 / mutations) times with
   * its own random values. Prints a summary line.
   */
  public static <E extends Env> void run(String family, Device device, Table<E> table, EnvFactory<E> factory) {
    Device other = otherDevice(device);
    List<Mutation<E>> usable = new ArrayList<>();
    for (Mutation<E> m : table.entries) {
      if ((m.needsOtherDevice && other == null) || (m.cpuOnly && device.isCuda())) {
        continue;
      }
      usable.add(m);
    }
    List<Mutation<E>> mutations = new ArrayList<>();
    List<Mutation<E>> controls = new ArrayList<>();
    for (Mutation<E> m : usable) {
      (m.mustSucceed() ? controls : mutations).add(m);
    }
    assertTrue(!controls.isEmpty() && !mutations.isEmpty(), family + ": a fuzz table needs mutations and controls");
    String replay = System.getProperty("flashinfer4j.fuzzReplay");
    int cases = cases(family, device, table.entries.size());
    long seed = SEED ^ family.hashCode() ^ (device.isCpu() ? 0 : 0x9E3779B97F4A7C15L);
    Random master = new Random(seed);
    Map<String, Integer> perMutation = new LinkedHashMap<>();
    Map<String, Integer> perType = new TreeMap<>();
    long[] before = Native.memoryStats(device);
    long t0 = System.nanoTime();
    List<Mutation<E>> cycle = new ArrayList<>();
    int nextControl = 0;
    int ran = 0;
    for (int c = 0; c < cases; c++) {
      long caseSeed = master.nextLong();
      Mutation<E> m;
      if (c % 8 == 7) {
        m = controls.get(nextControl++ % controls.size());
      } else {
        if (cycle.isEmpty()) {
          cycle.addAll(mutations);
          Collections.shuffle(cycle, master);
        }
        m = cycle.remove(cycle.size() - 1);
      }
      if (replay != null) {
        int at = replay.indexOf('@');
        if (at < 0 || !replay.substring(at + 1).equals(m.name)) {
          continue;
        }
        caseSeed = Long.parseLong(replay.substring(0, at));
        c = cases;  // this case alone
      }
      String where = family + " case " + c + " [" + m.name + "] on " + device + " (-Dflashinfer4j.fuzzReplay="
          + caseSeed + "@" + m.name + ", or -Dflashinfer4j.fuzzSeed=" + SEED + ")";
      runCase(m, factory.create(device, other, new Random(caseSeed)), where, perType);
      perMutation.merge(m.name, 1, Integer::sum);
      ran++;
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (replay == null && cases >= 8 * usable.size()) {
      for (Mutation<E> m : usable) {
        assertTrue(perMutation.containsKey(m.name), family + ": mutation never drawn: " + m.name);
      }
    }
    int valid = 0;
    for (Mutation<E> m : controls) {
      valid += perMutation.getOrDefault(m.name, 0);
    }
    System.out.printf("Fuzz %s on %s: %d cases (%d malformed calls over %d mutations, %d valid calls over %d"
        + " controls; %d entries in the table) in %.1f s, seed %d; exceptions by type %s; 0 JVM crashes%n", family,
        device, ran, ran - valid, mutations.size(), valid, controls.size(), table.entries.size(), seconds, SEED,
        perType);
    assertArrayEquals(before, Native.memoryStats(device), family + ": the fuzz cases leaked native memory");
  }

  private static <E extends Env> void runCase(Mutation<E> m, E env, String where, Map<String, Integer> perType) {
    try (E e = env) {
      Call call;
      try {
        call = m.maker.make(e);
      } catch (Throwable setup) {
        throw new AssertionError(where + ": setting up the case failed", setup);
      }
      List<byte[]> snapshot = new ArrayList<>();
      for (Tensor w : e.watched) {
        snapshot.add(w.isOpen() ? bytes(w) : null);
      }
      Throwable thrown = null;
      try {
        call.run();
      } catch (AssertionError a) {
        throw new AssertionError(where + ": " + a.getMessage(), a);
      } catch (Throwable t) {
        thrown = t;
      }
      if (m.mustSucceed()) {
        if (thrown != null) {
          throw new AssertionError(where + ": a valid call threw " + thrown, thrown);
        }
      } else {
        if (thrown == null && m.maySucceed) {
          perType.merge("(still valid)", 1, Integer::sum);
          checkGuards(e, where);
          return;
        }
        if (thrown == null) {
          fail(where + ": expected " + m.types + " but the call succeeded");
        }
        boolean typed = false;
        for (Class<? extends Throwable> type : m.types) {
          typed |= type.isInstance(thrown);
        }
        if (!typed) {
          throw new AssertionError(where + ": expected " + m.types + ", got " + thrown, thrown);
        }
        if (!namesSomething(thrown, m)) {
          throw new AssertionError(where + ": the message does not name " + Arrays.toString(m.fragments) + ": "
              + thrown.getMessage(), thrown);
        }
        perType.merge(thrown.getClass().getSimpleName(), 1, Integer::sum);
        for (int i = 0; i < snapshot.size(); i++) {
          Tensor w = e.watched.get(i);
          if (snapshot.get(i) != null && w.isOpen()) {
            assertArrayEquals(snapshot.get(i), bytes(w), where + ": a rejected call changed " + w);
          }
        }
      }
      checkGuards(e, where);
    }
  }
}
