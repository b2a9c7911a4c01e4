package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.CudaException;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.NoCudaDeviceException;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.testing.Gpu;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Table-driven fuzzing of every public op with malformed arguments. Each case builds a random valid problem (shapes,
 * page table, cache, queries, append targets; for prefill also query lengths, ragged K/V and a mask), applies one
 * mutation from the table below (negative sizes, wrong dtypes, out-of-range page ids, non-monotone or overflowing
 * indptr, qo/kv length mismatches, masks of the wrong length or batch, mismatched head counts, huge values, null,
 * closed inputs, other devices) with random values, and asserts that the call throws the typed exception the mutation
 * calls for, with a message that names the culprit ("name must be expected, got actual" for invalid arguments). Every
 * eighth case runs an unmutated call instead, which must succeed. After every case the bytes around the cache, the
 * output and the LSE (guard regions of the same allocation) must be untouched, and after a rejected call the cache,
 * output and LSE themselves must be unchanged: nothing was written anywhere. Prefill's run() mutations and controls
 * need a plan, which only the CPU backend makes until the CUDA prefill kernel lands (plan() on CUDA throws
 * UnsupportedConfigurationException): they are CPU-only; its plan-argument mutations, which the Java checks reject
 * before the backend is asked, run on every device.
 *
 * <p>Seeded: {@code -Dflashinfer4j.fuzzSeed=S}, {@code -Dflashinfer4j.fuzzCases=N} (default 20000 on the CPU
 * backend, a tenth of that on CUDA, where every case allocates device memory, and a fortieth under
 * compute-sanitizer). A failure message names the case number, the mutation and the seeds that reproduce it.
 */
class FuzzTest {
  private static final long SEED = Long.getLong("flashinfer4j.fuzzSeed", 0x5EEDF14L);
  private static final int CASES = Integer.getInteger("flashinfer4j.fuzzCases", 20000);
  /** The GPU bundle's run-tests.sh sets SANITIZER when it runs the suite under compute-sanitizer. */
  static final boolean UNDER_SANITIZER = Gpu.UNDER_SANITIZER;
  private static final int GUARD = 64;  // guard elements before and after each guarded tensor
  private static final short CANARY = 0x2bad;

  private static final Class<InvalidArgumentException> IAE = InvalidArgumentException.class;
  private static final Class<IllegalStateException> ISE = IllegalStateException.class;
  private static final Class<UnsupportedConfigurationException> UCE = UnsupportedConfigurationException.class;

  static List<Device> devices() {
    return Gpu.devices();
  }

  @FunctionalInterface
  interface Call {
    void run() throws Throwable;
  }

  @FunctionalInterface
  interface Maker {
    Call make(Env e) throws Throwable;
  }

  /** What a mutated call must do: throw one of {@code types} naming one of {@code fragments}, or succeed. */
  static final class Mutation {
    final String name;
    final List<Class<? extends Throwable>> types;
    final String[] fragments;
    final Maker maker;
    final boolean needsOtherDevice;
    final boolean cpuOnly;

    Mutation(String name, List<Class<? extends Throwable>> types, String[] fragments, Maker maker,
        boolean needsOtherDevice, boolean cpuOnly) {
      this.name = name;
      this.types = types;
      this.fragments = fragments;
      this.maker = maker;
      this.needsOtherDevice = needsOtherDevice;
      this.cpuOnly = cpuOnly;
    }

    boolean mustSucceed() {
      return types.isEmpty();
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // The random valid problem a case starts from
  // ------------------------------------------------------------------------------------------------------------

  static final class Env implements AutoCloseable {
    final Device dev;
    final Device other;  // another device, or null when there is none
    final Random rnd;
    final DType dtype;
    final DType otherDtype;
    final KvLayout layout;
    final boolean combined;
    final int page;
    final int hkv;
    final int hqo;
    final int dim;
    final int batch;
    final int[] lens;
    final int[] indptr;
    final int[] indices;
    final int[] last;
    final int numPages;
    final List<AutoCloseable> owned = new ArrayList<>();
    final List<Tensor> guarded = new ArrayList<>();  // flat tensors whose first and last GUARD elements are canaries
    final List<Tensor> watched = new ArrayList<>();  // tensors that a rejected call must leave unchanged

    private PagedKvCache cache;
    private PageTable table;
    private Tensor q;
    private Tensor out;
    private Tensor lse;
    private BatchDecodeWithPagedKvCache decoder;

    Env(Device dev, Device other, Random rnd) {
      this.dev = dev;
      this.other = other;
      this.rnd = rnd;
      dtype = rnd.nextBoolean() ? DType.F16 : DType.BF16;
      otherDtype = dtype == DType.F16 ? DType.BF16 : DType.F16;
      layout = rnd.nextBoolean() ? KvLayout.NHD : KvLayout.HND;
      combined = rnd.nextInt(3) == 0;
      page = 1 + rnd.nextInt(5);
      hkv = 1 + rnd.nextInt(dev.isCpu() ? 3 : 2);
      hqo = hkv * (1 + rnd.nextInt(3));
      dim = dev.isCpu() ? 2 << rnd.nextInt(4) : 64;
      batch = 1 + rnd.nextInt(4);
      lens = new int[batch];
      indptr = new int[batch + 1];
      last = new int[batch];
      for (int b = 0; b < batch; b++) {
        lens[b] = b == 0 ? 1 + rnd.nextInt(12) : rnd.nextInt(13);
        int p = (lens[b] + page - 1) / page;
        indptr[b + 1] = indptr[b] + p;
        last[b] = p == 0 ? 0 : lens[b] - (p - 1) * page;
      }
      numPages = indptr[batch] + rnd.nextInt(3);
      List<Integer> ids = new ArrayList<>();
      for (int i = 0; i < numPages; i++) {
        ids.add(i);
      }
      Collections.shuffle(ids, rnd);
      indices = new int[indptr[batch]];
      for (int i = 0; i < indices.length; i++) {
        indices[i] = ids.get(i);
      }
    }

    <T extends AutoCloseable> T own(T t) {
      owned.add(t);
      return t;
    }

    float[] randoms(long n) {
      float[] a = new float[(int) n];
      for (int i = 0; i < a.length; i++) {
        a[i] = (float) rnd.nextGaussian();
      }
      return a;
    }

    /** A contiguous tensor of {@code shape} inside a larger allocation whose ends hold canaries. */
    Tensor guardedTensor(DType dt, long... shape) {
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

    long[] pageShape(int pages, int pageSize, int heads, int headDim) {
      return PagedKvCache.shape(layout, pages, pageSize, heads, headDim);
    }

    PagedKvCache cache() {
      if (cache == null) {
        long[] s = pageShape(numPages, page, hkv, dim);
        if (combined) {
          Tensor kv = guardedTensor(dtype, s[0], 2, s[1], s[2], s[3]);
          cache = own(PagedKvCache.ofCombined(kv, layout));
          watched.add(kv);
        } else {
          Tensor kv = guardedTensor(dtype, 2, s[0], s[1], s[2], s[3]);
          cache = own(PagedKvCache.of(kv.select(0, 0), kv.select(0, 1), layout));
          watched.add(kv);
        }
      }
      return cache;
    }

    PageTable table() {
      if (table == null) {
        table = own(PageTable.of(dev, page, indptr, indices, last));
      }
      return table;
    }

    Tensor q() {
      if (q == null) {
        q = own(Tensor.fromFloats(dev, dtype, randoms((long) batch * hqo * dim), batch, hqo, dim));
      }
      return q;
    }

    Tensor out() {
      if (out == null) {
        out = guardedTensor(dtype, batch, hqo, dim);
        watched.add(out);
      }
      return out;
    }

    Tensor lse() {
      if (lse == null) {
        lse = guardedTensor(DType.F32, batch, hqo);
        watched.add(lse);
      }
      return lse;
    }

    BatchDecodeWithPagedKvCache planned() {
      BatchDecodeWithPagedKvCache d = decoder();
      d.plan(table(), hqo, hkv, dim, page, dtype);
      return d;
    }

    BatchDecodeWithPagedKvCache decoder() {
      if (decoder == null) {
        decoder = own(new BatchDecodeWithPagedKvCache(dev));
      }
      return decoder;
    }

    // ---- prefill: query lengths, ragged K/V, wrappers (drawn on first use, so decode cases keep their draws) ----

    private int[] qoLens;
    private int[] qoIndptr;
    private int[] kvIndptr;
    private Tensor prefillQ;
    private Tensor prefillOut;
    private Tensor prefillLse;
    private Tensor[] raggedKv;
    private BatchPrefillWithRaggedKvCache ragged;
    private BatchPrefillWithPagedKvCache pagedPrefill;

    /** Query rows of each request for prefill (request 0 has at least one; others may have none). */
    int[] qoLens() {
      if (qoLens == null) {
        qoLens = new int[batch];
        qoIndptr = new int[batch + 1];
        for (int b = 0; b < batch; b++) {
          qoLens[b] = b == 0 ? 1 + rnd.nextInt(6) : rnd.nextInt(7);
          qoIndptr[b + 1] = qoIndptr[b] + qoLens[b];
        }
      }
      return qoLens;
    }

    int[] qoIndptr() {
      qoLens();
      return qoIndptr;
    }

    int nnzQo() {
      return qoIndptr()[batch];
    }

    /** Ragged K/V offsets: request b has lens[b] keys. */
    int[] kvIndptr() {
      if (kvIndptr == null) {
        kvIndptr = new int[batch + 1];
        for (int b = 0; b < batch; b++) {
          kvIndptr[b + 1] = kvIndptr[b] + lens[b];
        }
      }
      return kvIndptr;
    }

    int nnzKv() {
      return kvIndptr()[batch];
    }

    /** Element offsets of each request's qoLen x kvLen block in an unpacked custom mask. */
    int[] maskIndptr() {
      int[] ip = new int[batch + 1];
      for (int b = 0; b < batch; b++) {
        ip[b + 1] = ip[b] + qoLens()[b] * lens[b];
      }
      return ip;
    }

    boolean[] bits(int n) {
      boolean[] m = new boolean[n];
      for (int i = 0; i < n; i++) {
        m[i] = rnd.nextInt(10) < 6;
      }
      return m;
    }

    /** A valid mask for the prefill batch: none, causal, custom (unpacked) or packed. */
    AttentionMask prefillMask() {
      switch (rnd.nextInt(4)) {
        case 0:
          return AttentionMask.none();
        case 1:
          return AttentionMask.causal();
        case 2:
          return AttentionMask.custom(bits(maskIndptr()[batch]));
        default: {
          int[] ip = maskIndptr();
          return AttentionMask.packed(Masks.segmentPackbits(bits(ip[batch]), ip));
        }
      }
    }

    Tensor prefillQ() {
      if (prefillQ == null) {
        prefillQ = own(Tensor.fromFloats(dev, dtype, randoms((long) nnzQo() * hqo * dim), nnzQo(), hqo, dim));
      }
      return prefillQ;
    }

    Tensor prefillOut() {
      if (prefillOut == null) {
        prefillOut = guardedTensor(dtype, nnzQo(), hqo, dim);
        watched.add(prefillOut);
      }
      return prefillOut;
    }

    Tensor prefillLse() {
      if (prefillLse == null) {
        prefillLse = guardedTensor(DType.F32, nnzQo(), hqo);
        watched.add(prefillLse);
      }
      return prefillLse;
    }

    long[] raggedShape(long tokens, long heads, long headDim) {
      return layout == KvLayout.NHD ? new long[] {tokens, heads, headDim} : new long[] {heads, tokens, headDim};
    }

    /** Ragged keys and values {k, v}: two halves of one guarded allocation. */
    Tensor[] raggedKv() {
      if (raggedKv == null) {
        long[] s = raggedShape(nnzKv(), hkv, dim);
        Tensor kv = guardedTensor(dtype, 2, s[0], s[1], s[2]);
        watched.add(kv);
        raggedKv = new Tensor[] {kv.select(0, 0), kv.select(0, 1)};
      }
      return raggedKv;
    }

    BatchPrefillWithRaggedKvCache ragged() {
      if (ragged == null) {
        ragged = own(new BatchPrefillWithRaggedKvCache(dev, layout, null));
      }
      return ragged;
    }

    BatchPrefillWithRaggedKvCache plannedRagged() {
      BatchPrefillWithRaggedKvCache r = ragged();
      r.plan(qoIndptr(), kvIndptr(), hqo, hkv, dim, dtype, prefillMask());
      return r;
    }

    BatchPrefillWithPagedKvCache pagedPrefill() {
      if (pagedPrefill == null) {
        pagedPrefill = own(new BatchPrefillWithPagedKvCache(dev));
      }
      return pagedPrefill;
    }

    BatchPrefillWithPagedKvCache plannedPaged() {
      BatchPrefillWithPagedKvCache p = pagedPrefill();
      p.plan(qoIndptr(), table(), hqo, hkv, dim, dtype, prefillMask());
      return p;
    }

    /** Random valid append targets: {batchIndices, positions}. */
    int[][] targets(int nnz) {
      int[] bi = new int[nnz];
      int[] pos = new int[nnz];
      for (int n = 0; n < nnz; n++) {
        int b;
        do {
          b = rnd.nextInt(batch);
        } while (lens[b] == 0);
        bi[n] = b;
        pos[n] = rnd.nextInt(lens[b]);
      }
      return new int[][] {bi, pos};
    }

    Tensor tokens(int nnz) {
      return own(Tensor.fromFloats(dev, dtype, randoms((long) nnz * hkv * dim), nnz, hkv, dim));
    }

    Tensor ints(int[] data) {
      return own(Tensor.fromInts(dev, data, data.length));
    }

    /** A small random tensor of a random (or given) dtype, rows >= 2 and cols >= 2. */
    Tensor small(DType dt) {
      long rows = 2 + rnd.nextInt(4);
      long cols = 2 + rnd.nextInt(5);
      Tensor t = own(Tensor.empty(dev, dt, rows, cols));
      t.fillBytes(rnd.nextInt(256));
      return t;
    }

    DType anyDtype() {
      DType[] all = DType.values();
      return all[rnd.nextInt(all.length)];
    }

    /** A value outside [lo, hi): just below, just above, far above, or an int extreme. */
    int outside(int lo, int hi) {
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

    long outsideLong(long lo, long hi) {
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

    int nonPositive() {
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
    Tensor onOther(Tensor t) {
      return own(Tensor.zeros(other, t.dtype(), t.shape()));
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
  // The mutation table
  // ------------------------------------------------------------------------------------------------------------

  private final List<Mutation> table = new ArrayList<>();

  private void add(String name, Class<? extends Throwable> type, String fragments, Maker maker) {
    table.add(new Mutation(name, List.of(type), fragments.split("\\|"), maker, false, false));
  }

  private void add2(String name, Class<? extends Throwable> a, Class<? extends Throwable> b, String fragments,
      Maker maker) {
    table.add(new Mutation(name, List.of(a, b), fragments.split("\\|"), maker, false, false));
  }

  private void addOther(String name, String fragments, Maker maker) {
    table.add(new Mutation(name, List.of(IAE), fragments.split("\\|"), maker, true, false));
  }

  private void addCpu(String name, Class<? extends Throwable> type, String fragments, Maker maker) {
    table.add(new Mutation(name, List.of(type), fragments.split("\\|"), maker, false, true));
  }

  private void valid(String name, Maker maker) {
    table.add(new Mutation(name, List.of(), new String[0], maker, false, false));
  }

  /** A control that runs on the CPU backend only (prefill has no CUDA kernel yet: plan() refuses CUDA). */
  private void validCpu(String name, Maker maker) {
    table.add(new Mutation(name, List.of(), new String[0], maker, false, true));
  }

  private void addOtherCpu(String name, String fragments, Maker maker) {
    table.add(new Mutation(name, List.of(IAE), fragments.split("\\|"), maker, true, true));
  }

  private static int[] with(int[] a, int i, int v) {
    int[] c = a.clone();
    c[i] = v;
    return c;
  }

  private static long[] withL(long[] a, int i, long v) {
    long[] c = a.clone();
    c[i] = v;
    return c;
  }

  private void buildTable() {
    tensorFactories();
    tensorCopiesAndViews();
    pageTables();
    caches();
    appends();
    singleDecode();
    batchDecode();
    masks();
    singlePrefill();
    raggedPrefill();
    pagedPrefill();
    optionsStreamsDevices();
    controls();
    prefillControls();
  }

  private void tensorFactories() {
    add("Tensor.empty negative dim", IAE, "shape[", e -> {
      long[] s = {1 + e.rnd.nextInt(4), 1 + e.rnd.nextInt(4), 1 + e.rnd.nextInt(4)};
      s[e.rnd.nextInt(3)] = e.rnd.nextBoolean() ? -1 : Long.MIN_VALUE + e.rnd.nextInt(10);
      return () -> Tensor.empty(e.dev, e.anyDtype(), s);
    });
    add("Tensor.empty numel overflow", IAE, "shape must be of fewer than", e -> {
      long a = 1L << (20 + e.rnd.nextInt(43));
      long b = (Long.MAX_VALUE / a) + 1 + e.rnd.nextInt(5);
      return () -> Tensor.empty(e.dev, e.anyDtype(), a, b, 1 + e.rnd.nextInt(3));
    });
    // a failing cudaMalloc is an API error that compute-sanitizer reports: CPU only under the sanitizer
    table.add(new Mutation("Tensor.empty unallocatable", List.of(CudaException.class),
        new String[] {"allocation", "cudaMalloc"},
        e -> () -> Tensor.empty(e.dev, DType.U8, (1L << 56) + e.rnd.nextInt(1 << 20)), false, UNDER_SANITIZER));
    add("Tensor.zeros negative dim", IAE, "shape[", e -> () -> Tensor.zeros(e.dev, e.dtype, 3, -e.rnd.nextInt(9) - 1));
    add("Tensor.empty null", IAE, "device|dtype|shape", e -> {
      int which = e.rnd.nextInt(3);
      return () -> Tensor.empty(which == 0 ? null : e.dev, which == 1 ? null : e.dtype,
          which == 2 ? null : new long[] {2});
    });
    add("Tensor.fromFloats length", IAE, "data.length", e -> {
      long n = 1 + e.rnd.nextInt(10);
      float[] data = new float[(int) n + (e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(3) : -1)];
      return () -> Tensor.fromFloats(e.dev, e.dtype, data, n);
    });
    add("Tensor.fromFloats dtype", IAE, "tensor dtype", e -> {
      DType[] bad = {DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> Tensor.fromFloats(e.dev, dt, new float[4], 4);
    });
    add("Tensor.fromFloats null", IAE, "data", e -> () -> Tensor.fromFloats(e.dev, e.dtype, null, 4));
    add("Tensor.fromInts length", IAE, "data.length", e -> () -> Tensor.fromInts(e.dev, new int[3], 2, 2));
    add("Tensor.fromInts null", IAE, "data", e -> () -> Tensor.fromInts(e.dev, null, 2));
    add("Tensor.wrap zero address", IAE, "address", e -> () -> Tensor.wrap(e.dev, 0, e.dtype, 4));
    add("Tensor.wrap misaligned", IAE, "address", e -> {
      Tensor t = e.small(DType.F32);
      long addr = t.address() + 1 + e.rnd.nextInt(3);
      return () -> Tensor.wrap(e.dev, addr, DType.F32, 2);
    });
    add("Tensor.wrap strides length", IAE, "strides", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {2, 2}, new long[] {2});
    });
    add("Tensor.wrap negative stride", IAE, "strides[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {2, 2}, new long[] {2, -1 - e.rnd.nextInt(5)});
    });
    add("Tensor.wrap extent overflow", IAE, "strides", e -> {
      Tensor t = e.small(e.dtype);
      long stride = Long.MAX_VALUE / (2 + e.rnd.nextInt(3));
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, new long[] {4, 2}, new long[] {stride, 1});
    });
    add("Tensor.wrap negative shape", IAE, "shape[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> Tensor.wrap(e.dev, t.address(), e.dtype, 2, -3);
    });
  }

  private void tensorCopiesAndViews() {
    add("copyFrom(float[]) length", IAE, "data.length", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom(new float[(int) t.numel() + 1 + e.rnd.nextInt(4)]);
    });
    add("copyFrom(float[]) null", IAE, "data", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom((float[]) null);
    });
    add("copyFrom(float[]) dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.I32 : DType.U8);
      return () -> t.copyFrom(new float[(int) t.numel()]);
    });
    add("copyFrom(float[]) non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 0);
      return () -> t.copyFrom(new float[(int) t.numel()]);
    });
    add("copyFrom(int[]) dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFrom(new int[(int) t.numel()]);
    });
    add("copyFrom(int[]) length", IAE, "data.length", e -> {
      Tensor t = e.small(DType.I32);
      return () -> t.copyFrom(new int[(int) t.numel() - 1]);
    });
    add("copyFromBits dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.F32 : DType.U8);
      return () -> t.copyFromBits(new short[(int) t.numel()]);
    });
    add("copyFromBits length", IAE, "bits.length", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.copyFromBits(new short[(int) t.numel() * 2]);
    });
    add("copyFrom(ByteBuffer) remaining", IAE, "buffer.remaining()", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyFrom(ByteBuffer.allocate((int) t.byteSize() + (e.rnd.nextBoolean() ? 1 : -1)));
    });
    add("copyFrom(ByteBuffer) null", IAE, "buffer", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyFrom((ByteBuffer) null);
    });
    add("copyTo(ByteBuffer) too small", IAE, "buffer.remaining()", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyTo(ByteBuffer.allocateDirect((int) t.byteSize() - 1));
    });
    add("copyTo(ByteBuffer) read-only", IAE, "buffer", e -> {
      Tensor t = e.small(e.anyDtype());
      return () -> t.copyTo(ByteBuffer.allocate((int) t.byteSize()).asReadOnlyBuffer());
    });
    add("copyFrom(Tensor) shape", IAE, "other.shape", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.own(Tensor.zeros(e.dev, e.dtype, a.size(0) + 1, a.size(1)));
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) dtype", IAE, "other.dtype", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.own(Tensor.zeros(e.dev, e.otherDtype, a.shape()));
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) null", IAE, "other", e -> {
      Tensor a = e.small(e.dtype);
      return () -> a.copyFrom((Tensor) null);
    });
    add("copyFrom(Tensor) closed", ISE, "closed", e -> {
      Tensor a = e.small(e.dtype);
      Tensor b = e.small(e.dtype);
      b.close();
      return () -> a.copyFrom(b);
    });
    add("copyFrom(Tensor) non-contiguous", IAE, "other", e -> {
      Tensor big = e.small(e.dtype);
      Tensor col = big.select(1, 0);
      Tensor a = e.own(Tensor.zeros(e.dev, e.dtype, col.shape()));
      return () -> a.copyFrom(col);
    });
    add("toFloatArray dtype", IAE, "tensor dtype", e -> {
      Tensor t = e.small(e.rnd.nextBoolean() ? DType.I32 : DType.FP8_E4M3);
      return t::toFloatArray;
    });
    add("toIntArray dtype", IAE, "tensor dtype", e -> e.small(e.dtype)::toIntArray);
    add("toBits dtype", IAE, "tensor dtype", e -> e.small(DType.F32)::toBits);
    add("copy out non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, e.rnd.nextInt(2));
      return e.rnd.nextBoolean() ? t::toFloatArray : t::toBits;
    });
    add("to(null)", IAE, "target", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.to(null);
    });
    add("closed tensor use", ISE, "closed", e -> {
      Tensor t = e.small(e.dtype);
      t.close();
      Call[] uses = {t::toBits, t::toFloatArray, () -> t.select(0, 0), () -> t.narrow(0, 0, 1),
        () -> t.reshape(t.numel()),
        () -> t.fillBytes(0), t::address, () -> t.to(e.dev), () -> t.copyFrom(new float[(int) t.numel()]),
        () -> t.copyTo(ByteBuffer.allocate((int) t.byteSize()))};
      return uses[e.rnd.nextInt(uses.length)];
    });
    add("closed view use", ISE, "closed", e -> {
      Tensor t = e.small(e.dtype);
      Tensor v = t.select(0, 0);
      if (e.rnd.nextBoolean()) {
        v.close();
      } else {
        t.close();
      }
      return e.rnd.nextBoolean() ? v::toBits : () -> v.fillBytes(1);
    });
    add("select bad dim", IAE, "dim", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.select(e.outside(0, 2), 0);
    });
    add("select bad index", IAE, "index", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.select(0, e.outsideLong(0, t.size(0)));
    });
    add("narrow bad start", IAE, "start", e -> {
      Tensor t = e.small(e.dtype);
      long start = e.rnd.nextBoolean() ? -1 - e.rnd.nextInt(10) : t.size(1) + 1 + e.rnd.nextInt(10);
      return () -> t.narrow(1, start, 0);
    });
    add("narrow bad length", IAE, "length", e -> {
      Tensor t = e.small(e.dtype);
      long start = e.rnd.nextInt((int) t.size(1));
      long length = e.rnd.nextBoolean() ? Long.MAX_VALUE - e.rnd.nextInt(3) : t.size(1) - start + 1;
      return () -> t.narrow(1, start, e.rnd.nextBoolean() ? length : -1);
    });
    add("reshape numel", IAE, "shape", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.reshape(t.numel() + 1 + e.rnd.nextInt(5));
    });
    add("reshape negative", IAE, "shape[", e -> {
      Tensor t = e.small(e.dtype);
      return () -> t.reshape(-t.numel());
    });
    add("reshape non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 0);
      return () -> t.reshape(t.numel());
    });
    add("size/stride bad dim", IAE, "dim", e -> {
      Tensor t = e.small(e.dtype);
      int d = e.outside(0, 2);
      return e.rnd.nextBoolean() ? () -> t.size(d) : () -> t.stride(d);
    });
    add("fillBytes non-contiguous", IAE, "tensor", e -> {
      Tensor t = e.small(e.dtype).select(1, 1);
      return () -> t.fillBytes(0);
    });
  }

  private void pageTables() {
    add("PageTable.of pageSize", IAE, "pageSize", e ->
        () -> PageTable.of(e.dev, e.nonPositive(), e.indptr, e.indices, e.last));
    add("PageTable.of null", IAE, "device|kvIndptr|kvIndices|kvLastPageLen", e -> {
      int w = e.rnd.nextInt(4);
      return () -> PageTable.of(w == 0 ? null : e.dev, e.page, w == 1 ? null : e.indptr, w == 2 ? null : e.indices,
          w == 3 ? null : e.last);
    });
    add("PageTable.of indptr length", IAE, "kvIndptr.length", e -> {
      int[] ip = Arrays.copyOf(e.indptr, e.indptr.length + (e.rnd.nextBoolean() ? 1 : -1));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of indptr[0]", IAE, "kvIndptr[0]", e -> {
      int[] ip = with(e.indptr, 0, e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(5) : -1 - e.rnd.nextInt(5));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of non-monotone indptr", IAE, "kvIndptr[", e -> {
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] ip = with(e.indptr, b, e.indptr[b - 1] - 1 - e.rnd.nextInt(3));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of indptr beyond indices", IAE, "kvIndptr[", e -> {
      int[] ip = with(e.indptr, e.batch, e.indices.length + 1 + e.rnd.nextInt(100));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of negative page id", IAE, "kvIndices[", e -> {
      int[] ix = with(e.indices, e.rnd.nextInt(e.indices.length), e.rnd.nextBoolean() ? -1 : Integer.MIN_VALUE);
      return () -> PageTable.of(e.dev, e.page, e.indptr, ix, e.last);
    });
    add("PageTable.of last page len", IAE, "kvLastPageLen[0]", e -> {
      int[] l = with(e.last, 0, e.outside(0, e.page + 1));
      return () -> PageTable.of(e.dev, e.page, e.indptr, e.indices, l);
    });
    add("PageTable.of last page len of an empty request", IAE, "kvLastPageLen[", e -> {
      int[] ip = Arrays.copyOf(e.indptr, e.indptr.length + 1);
      ip[ip.length - 1] = ip[ip.length - 2];
      int[] l = Arrays.copyOf(e.last, e.last.length + 1);
      l[l.length - 1] = e.rnd.nextBoolean() ? 1 : -1;
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, l);
    });
    add("PageTable.of kvLen overflow", IAE, "kvLen(0)", e -> {
      int pageSize = (1 << 30) + e.rnd.nextInt(1000);
      return () -> PageTable.of(e.dev, pageSize, new int[] {0, 3}, new int[] {0, 1, 2}, new int[] {1});
    });
    add("PageTable.fromTensors dtype", IAE, "kvIndptr.dtype", e -> {
      Tensor ip = e.own(Tensor.fromFloats(e.dev, DType.F32, new float[e.indptr.length], e.indptr.length));
      return () -> PageTable.fromTensors(e.dev, e.page, ip, e.ints(e.indices), e.ints(e.last));
    });
    add("PageTable.fromTensors dim", IAE, "kvIndices.dim()", e -> {
      Tensor ix = e.own(Tensor.zeros(e.dev, DType.I32, 1, Math.max(1, e.indices.length)));
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(e.indptr), ix, e.ints(e.last));
    });
    add("PageTable.fromTensors closed", ISE, "closed", e -> {
      Tensor l = e.ints(e.last);
      l.close();
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(e.indptr), e.ints(e.indices), l);
    });
    add("PageTable.fromTensors null", IAE, "kvIndptr|kvIndices|kvLastPageLen|device", e -> {
      int w = e.rnd.nextInt(4);
      return () -> PageTable.fromTensors(w == 3 ? null : e.dev, e.page, w == 0 ? null : e.ints(e.indptr),
          w == 1 ? null : e.ints(e.indices), w == 2 ? null : e.ints(e.last));
    });
    add("PageTable.fromTensors contents", IAE, "kvIndptr[", e -> {
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] ip = with(e.indptr, b, e.indptr[b - 1] - 1);
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(ip), e.ints(e.indices), e.ints(e.last));
    });
    add("PageTable.contiguous negative", IAE, "kvLens[", e -> {
      int[] l = with(e.lens, e.rnd.nextInt(e.batch), -1 - e.rnd.nextInt(100));
      return () -> PageTable.contiguous(e.dev, e.page, l);
    });
    add("PageTable.contiguous huge", IAE, "kvLens", e -> {
      int[] l = new int[2 + e.rnd.nextInt(3)];
      Arrays.fill(l, Integer.MAX_VALUE - e.rnd.nextInt(10));
      return () -> PageTable.contiguous(e.dev, 1, l);
    });
    add("PageTable.contiguous null/pageSize", IAE, "kvLens|pageSize", e -> e.rnd.nextBoolean()
        ? () -> PageTable.contiguous(e.dev, e.page, null) : () -> PageTable.contiguous(e.dev, e.nonPositive(), e.lens));
    add("PageTable.kvLen bad request", IAE, "b must be", e -> {
      PageTable t = e.table();
      return () -> t.kvLen(e.outside(0, e.batch));
    });
  }

  private void caches() {
    add("PagedKvCache.allocate bad size", IAE, "numPages|pageSize|numKvHeads|headDim", e -> {
      int[] a = {e.numPages, e.page, e.hkv, e.dim};
      int i = e.rnd.nextInt(4);
      a[i] = i == 0 ? -1 - e.rnd.nextInt(10) : e.nonPositive();
      boolean comb = e.rnd.nextBoolean();
      return () -> {
        if (comb) {
          PagedKvCache.allocateCombined(e.dev, e.dtype, e.layout, a[0], a[1], a[2], a[3]);
        } else {
          PagedKvCache.allocate(e.dev, e.dtype, e.layout, a[0], a[1], a[2], a[3]);
        }
      };
    });
    add("PagedKvCache.allocate dtype", IAE, "dtype", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, null};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> PagedKvCache.allocate(e.dev, dt, e.layout, 2, 4, 1, 8);
    });
    add("PagedKvCache.allocate null", IAE, "device|layout", e -> e.rnd.nextBoolean()
        ? () -> PagedKvCache.allocate(null, e.dtype, e.layout, 2, 4, 1, 8)
        : () -> PagedKvCache.allocate(e.dev, e.dtype, null, 2, 4, 1, 8));
    add("PagedKvCache.allocate huge", IAE, "shape", e -> () -> PagedKvCache.allocate(e.dev, e.dtype, e.layout,
        Integer.MAX_VALUE - e.rnd.nextInt(5), Integer.MAX_VALUE, 1 + e.rnd.nextInt(Integer.MAX_VALUE), 1 << 20));
    add("PagedKvCache.of dim", IAE, "k.dim()", e -> {
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, 2, 4, e.dim));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of v shape", IAE, "v.shape", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      int i = e.rnd.nextInt(4);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, withL(s, i, s[i] + 1)));
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of v dtype", IAE, "v.dtype", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.otherDtype, s));
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of v strides", IAE, "v.strides", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s[0], s[1] + 1, s[2], s[3])).narrow(1, 0, s[1]);
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of last dim strided", IAE, "k.stride(3)", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor wide = e.own(Tensor.zeros(e.dev, e.dtype, s[0], s[1], s[2], s[3], 2));
      Tensor k = wide.select(4, 0);
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of dtype", IAE, "k.dtype", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.rnd.nextBoolean() ? DType.F32 : DType.U8, s));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of zero-size page dims", IAE, "page size|head dim|KV heads", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      s[1 + e.rnd.nextInt(3)] = 0;
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of huge dims", IAE, "k.size(", e -> {
      Tensor t = e.small(e.dtype);
      long[] s = {1, 1L << 31 + e.rnd.nextInt(3), 1, 1};
      Tensor k = Tensor.wrap(e.dev, t.address(), e.dtype, s, new long[] {0, 0, 0, 1});
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of closed", ISE, "closed", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s));
      (e.rnd.nextBoolean() ? k : v).close();
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of null", IAE, "k|v|layout", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      int w = e.rnd.nextInt(3);
      return () -> PagedKvCache.of(w == 0 ? null : k, w == 1 ? null : k, w == 2 ? null : e.layout);
    });
    add("PagedKvCache.ofCombined dim", IAE, "kv.dim()", e -> {
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, e.pageShape(2, e.page, e.hkv, e.dim)));
      return () -> PagedKvCache.ofCombined(kv, e.layout);
    });
    add("PagedKvCache.ofCombined size(1)", IAE, "kv.size(1)", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, s[0], e.rnd.nextBoolean() ? 1 : 3, s[1], s[2], s[3]));
      return () -> PagedKvCache.ofCombined(kv, e.layout);
    });
    add("PagedKvCache.ofCombined null layout", IAE, "layout", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, s[0], 2, s[1], s[2], s[3]));
      return () -> PagedKvCache.ofCombined(kv, null);
    });
    addOther("PagedKvCache.of v on another device", "v.device", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      return () -> PagedKvCache.of(k, e.onOther(k), e.layout);
    });
  }

  private void appends() {
    add("append batch index out of range", IAE, "batchIndices[", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      t[0][e.rnd.nextInt(nnz)] = e.outside(0, e.batch);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table());
    });
    add("append position outside the request's pages", IAE, "positions[", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      int n = e.rnd.nextInt(nnz);
      t[1][n] = e.outside(0, e.lens[t[0][n]]);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table(), null);
    });
    add("append targets length", IAE, "batchIndices.length|positions.length", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz + 1);
      Tensor k = e.tokens(nnz);
      boolean which = e.rnd.nextBoolean();
      int[] bi = which ? t[0] : Arrays.copyOf(t[0], nnz);
      int[] pos = which ? Arrays.copyOf(t[1], nnz) : t[1];
      return () -> PagedKv.append(k, k, bi, pos, e.cache(), e.table());
    });
    add("append keys heads", IAE, "keys.shape|values.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv + 1, e.dim));
      boolean keysBad = e.rnd.nextBoolean();
      return () -> PagedKv.append(keysBad ? bad : k, keysBad ? k : bad, t[0], t[1], e.cache(), e.table());
    });
    add("append keys head dim", IAE, "keys.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv, e.dim * 2));
      return () -> PagedKv.append(bad, bad, t[0], t[1], e.cache(), e.table());
    });
    add("append keys rank", IAE, "keys.dim()", e -> {
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, 2, e.hkv * e.dim));
      return () -> PagedKv.append(bad, bad, new int[2], new int[2], e.cache(), e.table());
    });
    add("append values dtype", IAE, "values.dtype|keys.dtype", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.own(Tensor.zeros(e.dev, e.otherDtype, nnz, e.hkv, e.dim));
      boolean swap = e.rnd.nextBoolean();
      return () -> PagedKv.append(swap ? v : k, swap ? k : v, t[0], t[1], e.cache(), e.table());
    });
    add("append keys last dim strided", IAE, "keys.stride(2)", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv, e.dim, 2)).select(3, 0);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table());
    });
    add("append page id beyond the cache", IAE, "kvIndices[", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      int[] ix = with(e.indices, e.rnd.nextInt(e.indices.length), e.numPages + e.rnd.nextInt(1 << 20));
      PageTable bad = e.own(PageTable.of(e.dev, e.page, e.indptr, ix, e.last));
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), bad);
    });
    add("append page size mismatch", IAE, "cache.pageSize", e -> {
      PageTable bad = e.own(PageTable.contiguous(e.dev, e.page + 1, new int[] {1}));
      Tensor k = e.tokens(1);
      return () -> PagedKv.append(k, k, new int[] {0}, new int[] {0}, e.cache(), bad);
    });
    add("append closed input", ISE, "closed", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.tokens(nnz);
      PagedKvCache c = e.cache();
      PageTable tab = e.table();
      Stream s = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {k, v, c, tab, s};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> PagedKv.append(k, v, t[0], t[1], c, tab, s);
    });
    add("append null", IAE, "keys|values|cache|pageTable|batchIndices|positions", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      int w = e.rnd.nextInt(6);
      return () -> PagedKv.append(w == 0 ? null : k, w == 1 ? null : k, w == 2 ? null : t[0], w == 3 ? null : t[1],
          w == 4 ? null : e.cache(), w == 5 ? null : e.table());
    });
    add("append(AppendPositions) null/bad", IAE, "targets|positions[", e -> {
      Tensor k = e.tokens(1);
      AppendPositions bad = new AppendPositions(new int[] {0}, new int[] {e.lens[0] + e.rnd.nextInt(5)});
      boolean isNull = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, isNull ? null : bad, e.cache(), e.table(), null);
    });
    add("append(Tensor targets) dtype", IAE, "batchIndices.dtype|positions.dtype", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor f = e.own(Tensor.zeros(e.dev, DType.F32, nnz));
      boolean first = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, first ? f : e.ints(t[0]), first ? e.ints(t[1]) : f, e.cache(), e.table(),
          null);
    });
    add("append(Tensor targets) shape", IAE, "batchIndices.shape|positions.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bad = e.ints(new int[nnz + 1]);
      boolean first = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, first ? bad : e.ints(t[0]), first ? e.ints(t[1]) : bad, e.cache(),
          e.table(), null);
    });
    add("append(Tensor targets) non-contiguous", IAE, "positions", e -> {
      int nnz = 2 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor two = e.own(Tensor.zeros(e.dev, DType.I32, nnz, 2));
      return () -> PagedKv.append(k, k, e.ints(t[0]), two.select(1, 0), e.cache(), e.table(), null);
    });
    add("append(Tensor targets) closed", ISE, "closed", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bi = e.ints(t[0]);
      bi.close();
      return () -> PagedKv.append(k, k, bi, e.ints(t[1]), e.cache(), e.table(), null);
    });
    addCpu("append(Tensor targets) contents (checked in C on the CPU)", IAE, "positions[|batch_indices[", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      int n = e.rnd.nextInt(nnz);
      t[1][n] = e.outside(0, e.lens[t[0][n]]);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, e.ints(t[0]), e.ints(t[1]), e.cache(), e.table(), null);
    });
    add("batchIndicesAndPositions malformed", IAE, "appendIndptr|seqLens", e -> {
      int[] counts = new int[e.batch];
      int[] ip = new int[e.batch + 1];
      for (int b = 0; b < e.batch; b++) {
        counts[b] = e.rnd.nextInt(3);
        ip[b + 1] = ip[b] + counts[b];
      }
      int[] seq = new int[e.batch];
      for (int b = 0; b < e.batch; b++) {
        seq[b] = counts[b] + e.rnd.nextInt(5);
      }
      switch (e.rnd.nextInt(6)) {
        case 0:
          return () -> PagedKv.batchIndicesAndPositions(null, seq);
        case 1:
          return () -> PagedKv.batchIndicesAndPositions(ip, null);
        case 2:
          return () -> PagedKv.batchIndicesAndPositions(Arrays.copyOf(ip, ip.length + 1), seq);
        case 3:
          return () -> PagedKv.batchIndicesAndPositions(with(ip, 0, 1 + e.rnd.nextInt(4)), seq);
        case 4: {
          int b = e.rnd.nextInt(e.batch);
          return () -> PagedKv.batchIndicesAndPositions(with(ip, b + 1, ip[b] - 1 - e.rnd.nextInt(5)), seq);
        }
        default: {
          int b = e.rnd.nextInt(e.batch);
          int[] bad = with(seq, b, counts[b] - 1 - e.rnd.nextInt(5));
          return () -> PagedKv.batchIndicesAndPositions(ip, bad);
        }
      }
    });
    add("batchIndicesAndPositions huge", IAE, "appendIndptr[1]", e ->
        () -> PagedKv.batchIndicesAndPositions(new int[] {0, Integer.MAX_VALUE - e.rnd.nextInt(4)},
            new int[] {Integer.MAX_VALUE}));
    addOther("append keys on another device", "keys.device|values.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      return () -> PagedKv.append(e.onOther(k), e.onOther(k), t[0], t[1], e.cache(), e.table());
    });
    addOther("append stream of another device", "stream.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      Stream s = e.own(Stream.create(e.other));
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table(), s);
    });
    addOther("append page table of another device", "cache.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), other);
    });
  }

  /** Single-decode operands: q [Hqo, D], k/v [L, Hkv, D] or [Hkv, L, D], out, lse. */
  private static Tensor[] single(Env e, DType dt, int hqo, int hkv, int dim, int kvLen) {
    long[] kvShape = e.layout == KvLayout.NHD ? new long[] {kvLen, hkv, dim} : new long[] {hkv, kvLen, dim};
    Tensor q = e.own(Tensor.zeros(e.dev, dt, hqo, dim));
    Tensor k = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor v = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor out = e.own(Tensor.zeros(e.dev, dt, hqo, dim));
    Tensor lse = e.own(Tensor.zeros(e.dev, DType.F32, hqo));
    return new Tensor[] {q, k, v, out, lse};
  }

  private static Tensor[] single(Env e) {
    return single(e, e.dtype, e.hqo, e.hkv, e.dim, e.rnd.nextInt(9));
  }

  private void singleDecode() {
    add("SingleDecode q rank", IAE, "q.dim()", e -> {
      Tensor[] s = single(e);
      Tensor q3 = s[0].reshape(1, e.hqo, e.dim);
      return () -> SingleDecode.run(q3, s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode k rank", IAE, "k.dim()", e -> {
      Tensor[] s = single(e);
      Tensor k2 = s[1].reshape(s[1].numel());
      return () -> SingleDecode.run(s[0], k2, k2, s[3], s[4], e.layout);
    });
    add("SingleDecode v shape", IAE, "v.shape", e -> {
      Tensor[] s = single(e);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s[1].size(0) + 1, s[1].size(1), s[1].size(2)));
      return () -> SingleDecode.run(s[0], s[1], v, s[3], s[4], e.layout);
    });
    add("SingleDecode v strides", IAE, "v.strides", e -> {
      Tensor[] s = single(e, e.dtype, e.hqo, e.hkv, e.dim, 1 + e.rnd.nextInt(8));
      long[] sh = s[1].shape();
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, sh[0], sh[1] + 1, sh[2])).narrow(1, 0, sh[1]);
      return () -> SingleDecode.run(s[0], s[1], v, s[3], s[4], e.layout);
    });
    add("SingleDecode out shape", IAE, "out.shape", e -> {
      Tensor[] s = single(e);
      Tensor out = e.own(Tensor.zeros(e.dev, e.dtype, e.hqo + 1, e.dim));
      return () -> SingleDecode.run(s[0], s[1], s[2], out, s[4], e.layout);
    });
    add("SingleDecode mixed dtypes", IAE, "k.dtype|v.dtype|out.dtype", e -> {
      Tensor[] s = single(e);
      int i = 1 + e.rnd.nextInt(3);
      Tensor[] o = single(e, e.otherDtype, e.hqo, e.hkv, e.dim, (int) s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
      Tensor[] m = s.clone();
      m[i] = o[i];
      if (i == 1) {
        m[2] = o[2];
      } else if (i == 2) {
        m[1] = o[1];
      }
      return () -> SingleDecode.run(m[0], m[1], m[2], m[3], m[4], e.layout);
    });
    add("SingleDecode head counts", IAE, "numQoHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      Tensor[] s = single(e, e.dtype, hkv * (1 + e.rnd.nextInt(2)) + 1, hkv, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode head dim mismatch", IAE, "k.size(2)", e -> {
      Tensor[] s = single(e);
      Tensor[] o = single(e, e.dtype, e.hqo, e.hkv, e.dim * 2, 3);
      return () -> SingleDecode.run(s[0], o[1], o[2], s[3], s[4], e.layout);
    });
    add("SingleDecode no KV heads", IAE, "numKvHeads", e -> {
      Tensor[] s = single(e, e.dtype, e.hqo, 0, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode lse", IAE, "lse", e -> {
      Tensor[] s = single(e);
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, e.hqo + 1)),
        e.own(Tensor.zeros(e.dev, e.dtype, e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, e.hqo, 2)).select(1, 1),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 3 : 2)];
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], lse, e.layout);
    });
    add("SingleDecode closed", ISE, "closed", e -> {
      Tensor[] s = single(e);
      s[e.rnd.nextInt(5)].close();
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), null);
    });
    add("SingleDecode null", IAE, "q|k|v|out|layout|options", e -> {
      Tensor[] s = single(e);
      int w = e.rnd.nextInt(6);
      return () -> SingleDecode.run(w == 0 ? null : s[0], w == 1 ? null : s[1], w == 2 ? null : s[2],
          w == 3 ? null : s[3], s[4], w == 4 ? null : e.layout, w == 5 ? null : AttentionOptions.defaults(), null);
    });
    add("SingleDecode F32", UCE, "F32", e -> {
      Tensor[] s = single(e, DType.F32, e.hqo, e.hkv, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode unsupported head dim", UCE, "head_dim", e -> {
      // CUDA: not a multiple of 16 (neither ahead of time nor compiled at run time)
      int dim = e.dev.isCpu() ? 1 + 2 * e.rnd.nextInt(8) : 72;
      Tensor[] s = single(e, e.dtype, e.hqo, e.hkv, dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode closed stream", ISE, "closed", e -> {
      Tensor[] s = single(e);
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), st);
    });
    addOther("SingleDecode out on another device", "out.device|k.device|v.device", e -> {
      Tensor[] s = single(e);
      Tensor out = e.onOther(s[3]);
      return () -> SingleDecode.run(s[0], s[1], s[2], out, s[4], e.layout);
    });
    addOther("SingleDecode stream of another device", "stream.device", e -> {
      Tensor[] s = single(e);
      Stream st = e.own(Stream.create(e.other));
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), st);
    });
  }

  private void batchDecode() {
    add("plan page size mismatch", IAE, "pageSize", e -> {
      int ps = e.rnd.nextBoolean() ? e.page + 1 + e.rnd.nextInt(4) : e.nonPositive();
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.dim, ps, e.dtype);
    });
    add("plan head counts", IAE, "numQoHeads|numKvHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      int[] bad = {hkv * 2 + 1, e.nonPositive()};
      int which = e.rnd.nextInt(3);
      return () -> e.decoder().plan(e.table(), which == 0 ? bad[0] : which == 1 ? bad[1] : e.hqo,
          which == 2 ? e.nonPositive() : hkv, e.dim, e.page, e.dtype);
    });
    add("plan head dim", IAE, "headDim", e -> () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.nonPositive(),
        e.page, e.dtype));
    add("plan unsupported dtype", UCE, "F32|I32|U8|FP8", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.dim, e.page, dt);
    });
    add("plan unsupported head dim", UCE, "head_dim", e -> {
      int dim = e.dev.isCpu() ? 1 + 2 * e.rnd.nextInt(8) : 72 + 16 * e.rnd.nextInt(3);
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, dim, e.page, e.dtype);
    });
    add("plan null", IAE, "pageTable|dtype|options", e -> {
      int w = e.rnd.nextInt(3);
      return () -> e.decoder().plan(w == 0 ? null : e.table(), e.hqo, e.hkv, e.dim, e.page, w == 1 ? null : e.dtype,
          w == 2 ? null : AttentionOptions.defaults());
    });
    add2("plan closed page table", IAE, ISE, "pageTable|closed", e -> {
      PageTable t = e.table();
      t.close();
      return () -> e.decoder().plan(t, e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
    add("plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchDecodeWithPagedKvCache d = e.decoder();
      boolean planFirst = e.rnd.nextBoolean();
      if (planFirst) {
        d.plan(e.table(), e.hqo, e.hkv, e.dim, e.page, e.dtype);
      }
      d.close();
      return planFirst ? () -> d.run(e.q(), e.cache(), e.out(), e.lse())
          : () -> d.plan(e.table(), e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
    add("run before plan", ISE, "plan", e -> () -> e.decoder().run(e.q(), e.cache(), e.out(), e.lse()));
    add("run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.batch, e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> d.run(isQ ? bad : e.q(), e.cache(), isQ ? e.out() : bad, e.lse());
    });
    add("run q/out shape", IAE, "q.shape|out.shape", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      long[] s = {e.batch, e.hqo, e.dim};
      s[e.rnd.nextInt(3)] += 1 + e.rnd.nextInt(2);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, s));
      boolean isQ = e.rnd.nextBoolean();
      return () -> d.run(isQ ? bad : e.q(), e.cache(), isQ ? e.out() : bad, e.lse());
    });
    add("run lse", IAE, "lse.shape|lse.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, DType.F32, e.batch, e.hqo + 1))
          : e.own(Tensor.zeros(e.dev, e.dtype, e.batch, e.hqo));
      return () -> d.run(e.q(), e.cache(), e.out(), bad);
    });
    add("run cache head count", IAE, "cache.numKvHeads", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv + 1, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run cache dtype", IAE, "cache.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.otherDtype, e.layout, e.numPages, e.page, e.hkv, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run cache with too few pages", IAE, "kvIndices[", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      int pages = e.rnd.nextInt(e.table().maxPageId() + 1);
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, pages, e.page, e.hkv, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run closed input", ISE, "closed", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      AutoCloseable[] victims = {e.q(), e.out(), e.lse(), e.cache(), e.table()};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> d.run(e.q(), e.cache(), e.out(), e.lse());
    });
    add("run null cache", IAE, "cache|q|out", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      int w = e.rnd.nextInt(3);
      return () -> d.run(w == 0 ? null : e.q(), w == 1 ? null : e.cache(), w == 2 ? null : e.out(), e.lse());
    });
    add("BatchDecode null device", IAE, "device", e -> () -> new BatchDecodeWithPagedKvCache(null));
    addOther("run q on another device", "q.device|out.device|lse.device", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor q = e.onOther(e.q());
      return () -> d.run(q, e.cache(), e.out(), e.lse());
    });
    addOther("plan page table of another device", "pageTable.device", e -> {
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> e.decoder().plan(other, e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Prefill: masks, single prefill, ragged and paged batch prefill
  // ------------------------------------------------------------------------------------------------------------

  private void masks() {
    add("Masks.packbits null", IAE, "mask", e -> () -> Masks.packbits(null));
    add("Masks.segmentPackbits null", IAE, "mask|indptr", e -> {
      boolean[] m = e.bits(4);
      boolean nullMask = e.rnd.nextBoolean();
      return () -> Masks.segmentPackbits(nullMask ? null : m, nullMask ? new int[] {0, 4} : null);
    });
    add("Masks.segmentPackbits empty indptr", IAE, "indptr.length",
        e -> () -> Masks.segmentPackbits(e.bits(e.rnd.nextInt(4)), new int[0]));
    add("Masks.segmentPackbits indptr[0]", IAE, "indptr[0]", e -> {
      int[] ip = e.maskIndptr();
      boolean[] m = e.bits(ip[e.batch]);
      int[] bad = with(ip, 0, e.outside(0, 1));
      return () -> Masks.segmentPackbits(m, bad);
    });
    add("Masks.segmentPackbits negative/non-monotone indptr", IAE, "indptr[", e -> {
      int[] ip = e.maskIndptr();
      boolean[] m = e.bits(ip[e.batch]);
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] bad = with(ip, b, e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3));
      return () -> Masks.segmentPackbits(m, bad);
    });
    add("Masks.segmentPackbits indptr beyond the mask", IAE, "indptr[", e -> {
      int[] ip = e.maskIndptr();
      int n = ip[e.batch];
      switch (e.rnd.nextInt(3)) {
        case 0: {
          boolean[] m = e.bits(n + 1 + e.rnd.nextInt(9));
          return () -> Masks.segmentPackbits(m, ip);
        }
        case 1: {
          int[] huge = with(ip, e.batch, Integer.MAX_VALUE - e.rnd.nextInt(4));
          return () -> Masks.segmentPackbits(e.bits(n), huge);
        }
        default: {
          int[] grown = Arrays.copyOf(ip, ip.length + 1);
          grown[e.batch + 1] = Integer.MAX_VALUE;  // a last segment of 2^31 - 1 - n elements
          return () -> Masks.segmentPackbits(e.bits(n), grown);
        }
      }
    });
    add("PackedMask.of malformed", IAE, "bits|indptr", e -> {
      byte[] bits = new byte[1 + e.rnd.nextInt(8)];
      switch (e.rnd.nextInt(6)) {
        case 0:
          return () -> PackedMask.of(null, new int[] {0, 1});
        case 1:
          return () -> PackedMask.of(bits, null);
        case 2:
          return () -> PackedMask.of(bits, new int[0]);
        case 3:
          return () -> PackedMask.of(bits, new int[] {e.outside(0, 1), bits.length});
        case 4:
          return () -> PackedMask.of(bits, new int[] {0, bits.length, e.rnd.nextBoolean() ? 0 : Integer.MIN_VALUE});
        default:
          return () -> PackedMask.of(bits, new int[] {0, bits.length + 1 + e.rnd.nextInt(Integer.MAX_VALUE - 9)});
      }
    });
    add("PackedMask.get out of range", IAE, "b must be|element must be", e -> {
      int[] ip = e.maskIndptr();
      PackedMask m = Masks.segmentPackbits(e.bits(ip[e.batch]), ip);
      if (e.rnd.nextBoolean()) {
        return () -> m.get(e.outside(0, e.batch), 0);
      }
      int b = e.rnd.nextInt(e.batch);
      long bytes = m.indptr()[b + 1] - (long) m.indptr()[b];
      return () -> m.get(b, e.outsideLong(0, 8 * bytes));
    });
    add("Masks.tree malformed", IAE, "prefixLen|parents", e -> {
      int n = 1 + e.rnd.nextInt(6);
      int[] parents = new int[n];
      for (int i = 0; i < n; i++) {
        parents[i] = e.rnd.nextInt(i + 1) - 1;
      }
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> Masks.tree(e.rnd.nextBoolean() ? -1 : Integer.MIN_VALUE, parents);
        case 1:
          return () -> Masks.tree(3, null);
        case 2: {
          int i = e.rnd.nextInt(n);
          int[] bad = with(parents, i, e.rnd.nextBoolean() ? i + e.rnd.nextInt(5) : e.outside(-1, i));
          return () -> Masks.tree(e.rnd.nextInt(5), bad);
        }
        default:
          // n x (prefixLen + n) elements overflow an array
          return () -> Masks.tree(Integer.MAX_VALUE - e.rnd.nextInt(10), new int[] {-1, 0});
      }
    });
    add("AttentionMask factories null", IAE, "mask", e -> e.rnd.nextBoolean()
        ? () -> AttentionMask.custom(null) : () -> AttentionMask.packed(null));
  }

  /** Single-prefill operands: q [qoLen, Hqo, D], k/v [kvLen, Hkv, D] or [Hkv, kvLen, D], out, lse (guarded). */
  private static Tensor[] prefillOperands(Env e, DType dt, int hqo, int hkv, int dim, int qoLen, int kvLen) {
    long[] kvShape = e.raggedShape(kvLen, hkv, dim);
    Tensor q = e.own(Tensor.zeros(e.dev, dt, qoLen, hqo, dim));
    Tensor k = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor v = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor out = e.guardedTensor(dt, qoLen, hqo, dim);
    Tensor lse = e.guardedTensor(DType.F32, qoLen, hqo);
    e.watched.add(out);
    e.watched.add(lse);
    return new Tensor[] {q, k, v, out, lse};
  }

  private static Tensor[] prefillOperands(Env e) {
    return prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim, 1 + e.rnd.nextInt(6), e.rnd.nextInt(9));
  }

  /** A valid mask for one request of qoLen x kvLen. */
  private static AttentionMask singleMask(Env e, long qoLen, long kvLen) {
    int n = (int) (qoLen * kvLen);
    switch (e.rnd.nextInt(4)) {
      case 0:
        return AttentionMask.none();
      case 1:
        return AttentionMask.causal();
      case 2:
        return AttentionMask.custom(e.bits(n));
      default:
        return AttentionMask.packed(Masks.segmentPackbits(e.bits(n), new int[] {0, n}));
    }
  }

  private static AttentionMask singleMask(Env e, Tensor[] s) {
    return singleMask(e, s[0].size(0), s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
  }

  private void singlePrefill() {
    add("SinglePrefill q rank", IAE, "q.dim()", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor q2 = s[0].reshape(s[0].size(0), (long) e.hqo * e.dim);
      return () -> SinglePrefill.run(q2, s[1], s[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill k rank", IAE, "k.dim()", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor k1 = s[1].reshape(s[1].numel());
      return () -> SinglePrefill.run(s[0], k1, k1, s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill v shape", IAE, "v.shape", e -> {
      Tensor[] s = prefillOperands(e);
      long[] sh = s[1].shape();
      int i = e.rnd.nextInt(3);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, withL(sh, i, sh[i] + 1)));
      return () -> SinglePrefill.run(s[0], s[1], v, s[3], s[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill out shape", IAE, "out.shape", e -> {
      Tensor[] s = prefillOperands(e);
      long[] sh = s[0].shape();
      int i = e.rnd.nextInt(3);
      Tensor out = e.own(Tensor.zeros(e.dev, e.dtype, withL(sh, i, sh[i] + 1 + e.rnd.nextInt(3))));
      return () -> SinglePrefill.run(s[0], s[1], s[2], out, s[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill mixed dtypes", IAE, "k.dtype|v.dtype|out.dtype", e -> {
      Tensor[] s = prefillOperands(e);
      int kvLen = (int) s[1].size(e.layout == KvLayout.NHD ? 0 : 1);
      Tensor[] o = prefillOperands(e, e.otherDtype, e.hqo, e.hkv, e.dim, (int) s[0].size(0), kvLen);
      int i = 1 + e.rnd.nextInt(3);
      Tensor[] m = s.clone();
      m[i] = o[i];
      if (i == 1) {
        m[2] = o[2];  // k and v of the other dtype together: k.dtype is named
      }
      return () -> SinglePrefill.run(m[0], m[1], m[2], m[3], m[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill head counts", IAE, "numQoHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      Tensor[] s = prefillOperands(e, e.dtype, hkv * (1 + e.rnd.nextInt(2)) + 1, hkv, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.causal());
    });
    add("SinglePrefill head dim mismatch", IAE, "k.size(2)", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor[] o = prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim * 2, 1, 3);
      return () -> SinglePrefill.run(s[0], o[1], o[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill no KV heads", IAE, "numKvHeads", e -> {
      Tensor[] s = prefillOperands(e, e.dtype, e.hqo, 0, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill lse", IAE, "lse", e -> {
      Tensor[] s = prefillOperands(e);
      long qo = s[0].size(0);
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, qo, e.hqo + 1)),
        e.own(Tensor.zeros(e.dev, DType.F32, qo + 1, e.hqo)),
        e.own(Tensor.zeros(e.dev, e.dtype, qo, e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, qo, e.hqo, 2)).select(2, 1),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 4 : 3)];
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], lse, e.layout, singleMask(e, s));
    });
    add("SinglePrefill custom mask length", IAE, "mask.length", e -> {
      Tensor[] s = prefillOperands(e);
      int n = (int) (s[0].size(0) * s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
      int len = e.rnd.nextBoolean() || n == 0 ? n + 1 + e.rnd.nextInt(20) : e.rnd.nextInt(n);
      AttentionMask m = AttentionMask.custom(e.bits(len));
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, m, AttentionOptions.defaults(), null);
    });
    add("SinglePrefill packed mask for another batch", IAE, "mask.batchSize()|mask.indptr()[1]", e -> {
      int qo = 1 + e.rnd.nextInt(5);
      int kv = 1 + e.rnd.nextInt(8);
      Tensor[] s = prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim, qo, kv);
      int n = qo * kv;
      PackedMask p = e.rnd.nextBoolean()
          ? Masks.segmentPackbits(e.bits(2 * n), new int[] {0, n, 2 * n})   // two requests
          : PackedMask.of(new byte[(n + 7) / 8 - 1], new int[] {0, (n + 7) / 8 - 1});  // one byte short
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.packed(p));
    });
    add("SinglePrefill closed", ISE, "closed", e -> {
      Tensor[] s = prefillOperands(e);
      AttentionMask m = singleMask(e, s);
      s[e.rnd.nextInt(5)].close();
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, m, AttentionOptions.defaults(), null);
    });
    add("SinglePrefill null", IAE, "q|k|v|out|layout|mask|options", e -> {
      Tensor[] s = prefillOperands(e);
      AttentionMask m = singleMask(e, s);
      int w = e.rnd.nextInt(7);
      return () -> SinglePrefill.run(w == 0 ? null : s[0], w == 1 ? null : s[1], w == 2 ? null : s[2],
          w == 3 ? null : s[3], s[4], w == 4 ? null : e.layout, w == 5 ? null : m,
          w == 6 ? null : AttentionOptions.defaults(), null);
    });
    add("SinglePrefill unsupported dtype/head dim", UCE, "dtype|head_dim", e -> {
      // F32 everywhere (checked before the device's own limits); on the CPU also an odd head dim
      boolean oddDim = e.dev.isCpu() && e.rnd.nextBoolean();
      Tensor[] s = oddDim ? prefillOperands(e, e.dtype, e.hqo, e.hkv, 1 + 2 * e.rnd.nextInt(8), 2, 3)
          : prefillOperands(e, DType.F32, e.hqo, e.hkv, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.causal());
    });
    add("SinglePrefill closed stream", ISE, "closed", e -> {
      Tensor[] s = prefillOperands(e);
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, singleMask(e, s),
          AttentionOptions.defaults(), st);
    });
    addOther("SinglePrefill out on another device", "out.device|k.device|v.device|lse.device", e -> {
      Tensor[] s = prefillOperands(e);
      int i = 1 + e.rnd.nextInt(4);
      Tensor[] m = s.clone();
      m[i] = e.onOther(s[i]);
      if (i == 1) {
        m[2] = e.onOther(s[2]);
      }
      return () -> SinglePrefill.run(m[0], m[1], m[2], m[3], m[4], e.layout, AttentionMask.none());
    });
    addOther("SinglePrefill stream of another device", "stream.device", e -> {
      Tensor[] s = prefillOperands(e);
      Stream st = e.own(Stream.create(e.other));
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
  }

  /** Mutations of a prefill plan's batch and mask shared by the ragged and paged wrappers. */
  private interface PrefillPlanner {
    void plan(Env e, int[] qoIndptr, int numQoHeads, int numKvHeads, int headDim, DType dtype, AttentionMask mask,
        AttentionOptions options, Stream stream);
  }

  private void prefillPlanMutations(String op, PrefillPlanner p) {
    add(op + " plan qoIndptr [0]/non-monotone/negative", IAE, "qoIndptr[", e -> {
      int[] ip = e.qoIndptr();
      int b = e.rnd.nextInt(e.batch + 1);
      int v = b == 0 ? e.outside(0, 1)
          : e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3);
      int[] bad = with(ip, b, v);
      return () -> p.plan(e, bad, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal(), AttentionOptions.defaults(),
          null);
    });
    add(op + " plan qoIndptr length", IAE, "qoIndptr.length", e -> {
      int[] ip = e.qoIndptr();
      int[] bad;
      switch (e.rnd.nextInt(3)) {
        case 0:
          bad = new int[0];
          break;
        case 1:
          bad = Arrays.copyOf(ip, ip.length - 1);
          break;
        default:
          bad = Arrays.copyOf(ip, ip.length + 1);
          bad[ip.length] = ip[e.batch] + e.rnd.nextInt(3);
      }
      int[] fin = bad;
      return () -> p.plan(e, fin, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(), AttentionOptions.defaults(),
          null);
    });
    add(op + " plan null", IAE, "qoIndptr|dtype|mask|options", e -> {
      int w = e.rnd.nextInt(4);
      return () -> p.plan(e, w == 0 ? null : e.qoIndptr(), e.hqo, e.hkv, e.dim, w == 1 ? null : e.dtype,
          w == 2 ? null : e.prefillMask(), w == 3 ? null : AttentionOptions.defaults(), null);
    });
    add(op + " plan head counts", IAE, "numQoHeads|numKvHeads|headDim", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> p.plan(e, e.qoIndptr(), hkv * 2 + 1, hkv, e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        case 1:
          return () -> p.plan(e, e.qoIndptr(), e.nonPositive(), hkv, e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        case 2:
          return () -> p.plan(e, e.qoIndptr(), e.hqo, e.nonPositive(), e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        default:
          return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.nonPositive(), e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
      }
    });
    add(op + " plan custom mask of the wrong length", IAE, "mask.length", e -> {
      int n = e.maskIndptr()[e.batch];
      int len = e.rnd.nextBoolean() || n == 0 ? n + 1 + e.rnd.nextInt(30) : e.rnd.nextInt(n);
      AttentionMask m = AttentionMask.custom(e.bits(len));
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, m, AttentionOptions.defaults(), null);
    });
    add(op + " plan packed mask of another batch or too short", IAE, "mask.batchSize()|mask.indptr()[", e -> {
      int[] ip = e.maskIndptr();
      PackedMask pm;
      if (e.rnd.nextBoolean()) {
        int[] more = Arrays.copyOf(ip, ip.length + (e.batch > 1 && e.rnd.nextBoolean() ? -1 : 1));
        if (more.length > ip.length) {
          more[ip.length] = ip[e.batch] + e.rnd.nextInt(9);
        }
        pm = Masks.segmentPackbits(e.bits(more[more.length - 1]), more);
      } else {
        // request 0 (qoLen >= 1, kvLen >= 1) gets one byte fewer than its bits need
        int[] bytes = new int[e.batch + 1];
        for (int b = 0; b < e.batch; b++) {
          long need = ((long) e.qoLens()[b] * e.lens[b] + 7) / 8;
          bytes[b + 1] = bytes[b] + (int) need - (b == 0 ? 1 : 0);
        }
        pm = PackedMask.of(new byte[bytes[e.batch]], bytes);
      }
      AttentionMask m = AttentionMask.packed(pm);
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, m, AttentionOptions.defaults(), null);
    });
    add(op + " plan unsupported dtype/head dim", UCE, "dtype|head_dim", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      if (e.dev.isCpu() && e.rnd.nextBoolean()) {
        int dim = 1 + 2 * e.rnd.nextInt(8);
        return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, dim, e.dtype, AttentionMask.causal(),
            AttentionOptions.defaults(), null);
      }
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, dt, AttentionMask.causal(),
          AttentionOptions.defaults(), null);
    });
    // CPU only for now: on CUDA, plan() reaches the native "no CUDA prefill kernel yet" refusal before the stream
    addCpu(op + " plan closed stream", ISE, "closed", e -> {
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
    addOther(op + " plan stream of another device", "stream.device", e -> {
      Stream st = e.own(Stream.create(e.other));
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
  }

  private void raggedPrefill() {
    prefillPlanMutations("ragged prefill", (e, qo, hq, hkv, dim, dt, m, o, st) ->
        e.ragged().plan(qo, e.kvIndptr(), hq, hkv, dim, dt, m, o, st));
    add("ragged prefill plan kvIndptr [0]/non-monotone/negative", IAE, "kvIndptr[", e -> {
      int[] ip = e.kvIndptr();
      int b = e.rnd.nextInt(e.batch + 1);
      int v = b == 0 ? e.outside(0, 1)
          : e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3);
      int[] bad = with(ip, b, v);
      return () -> e.ragged().plan(e.qoIndptr(), bad, e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
    });
    add("ragged prefill plan qo/kv batch mismatch", IAE, "kvIndptr.length", e -> {
      int[] ip = e.kvIndptr();
      int[] bad = Arrays.copyOf(ip, ip.length + (e.batch > 1 && e.rnd.nextBoolean() ? -1 : 1));
      if (bad.length > ip.length) {
        bad[ip.length] = ip[e.batch] + e.rnd.nextInt(5);
      }
      return () -> e.ragged().plan(e.qoIndptr(), bad, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("ragged prefill plan null kvIndptr", IAE, "kvIndptr", e ->
        () -> e.ragged().plan(e.qoIndptr(), null, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal()));
    add("ragged prefill plan custom mask of 2^32 elements", IAE, "mask size|mask.indptr()[1]", e -> {
      int n = (1 << 16) + e.rnd.nextInt(1000);
      AttentionMask m = e.rnd.nextBoolean() ? AttentionMask.custom(e.bits(e.rnd.nextInt(16)))
          : AttentionMask.packed(PackedMask.of(new byte[8], new int[] {0, 8}));
      return () -> e.ragged().plan(new int[] {0, n}, new int[] {0, n}, e.hqo, e.hkv, e.dim, e.dtype, m);
    });
    add("ragged prefill constructor", IAE, "device|layout|workspace", e -> {
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> new BatchPrefillWithRaggedKvCache(null);
        case 1:
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, null, null);
        case 2: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.F32, 64));
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, e.layout, ws);
        }
        default: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.U8, 64, 2)).select(1, 0);
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, e.layout, ws);
        }
      }
    });
    add("ragged prefill plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchPrefillWithRaggedKvCache r = e.ragged();
      boolean planFirst = e.dev.isCpu() && e.rnd.nextBoolean();
      if (planFirst) {
        r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
      }
      r.close();
      Tensor[] kv = e.raggedKv();
      return planFirst ? () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse())
          : () -> r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("ragged prefill run before plan", ISE, "plan", e -> {
      Tensor[] kv = e.raggedKv();
      return () -> e.ragged().run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse());
    });
    // run() needs a plan, which the CPU backend alone makes for now
    addCpu("ragged prefill run q/out rows", IAE, "q.shape|out.shape", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo() + (e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(3) : -1),
          e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> r.run(isQ ? bad : e.prefillQ(), kv[0], kv[1], isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    addCpu("ragged prefill run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.nnzQo(), e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> r.run(isQ ? bad : e.prefillQ(), kv[0], kv[1], isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    addCpu("ragged prefill run lse", IAE, "lse", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo() + 1, e.hqo)),
        e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo(), e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo(), e.hqo, 2)).select(2, 0),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 3 : 2)];
      return () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), lse);
    });
    addCpu("ragged prefill run k/v length or heads mismatch", IAE, "k.shape|v.shape", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      boolean moreTokens = e.rnd.nextBoolean();
      long tokens = moreTokens ? e.nnzKv() + 1 + e.rnd.nextInt(3) : e.nnzKv() - 1;
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, moreTokens || tokens >= 0
          ? e.raggedShape(tokens, e.hkv, e.dim) : e.raggedShape(e.nnzKv(), e.hkv + 1, e.dim)));
      boolean isK = e.rnd.nextBoolean();
      return () -> r.run(e.prefillQ(), isK ? bad : kv[0], isK ? kv[1] : bad, e.prefillOut(), e.prefillLse());
    });
    addCpu("ragged prefill run k/v dtype or strides", IAE, "k.dtype|v.dtype|k.stride(2)|v.stride(2)", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      long[] sh = e.raggedShape(e.nnzKv(), e.hkv, e.dim);
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, e.otherDtype, sh))
          : e.own(Tensor.zeros(e.dev, e.dtype, sh[0], sh[1], sh[2], 2)).select(3, 1);
      boolean isK = e.rnd.nextBoolean();
      return () -> r.run(e.prefillQ(), isK ? bad : kv[0], isK ? kv[1] : bad, e.prefillOut(), e.prefillLse());
    });
    addCpu("ragged prefill run closed input", ISE, "closed", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Stream st = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse(), st};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse(), st);
    });
    addCpu("ragged prefill run null", IAE, "q|k|v|out", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      int w = e.rnd.nextInt(4);
      return () -> r.run(w == 0 ? null : e.prefillQ(), w == 1 ? null : kv[0], w == 2 ? null : kv[1],
          w == 3 ? null : e.prefillOut(), e.prefillLse());
    });
    addOtherCpu("ragged prefill run input on another device",
        "q.device|k.device|v.device|out.device|lse.device|stream.device", e -> {
          BatchPrefillWithRaggedKvCache r = e.plannedRagged();
          Tensor[] kv = e.raggedKv();
          Tensor[] args = {e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse()};
          int i = e.rnd.nextInt(6);
          if (i == 5) {
            Stream st = e.own(Stream.create(e.other));
            return () -> r.run(args[0], args[1], args[2], args[3], args[4], st);
          }
          args[i] = e.onOther(args[i]);
          return () -> r.run(args[0], args[1], args[2], args[3], args[4]);
        });
  }

  private void pagedPrefill() {
    prefillPlanMutations("paged prefill", (e, qo, hq, hkv, dim, dt, m, o, st) ->
        e.pagedPrefill().plan(qo, e.table(), hq, hkv, dim, dt, m, o, st));
    add("paged prefill plan null page table", IAE, "pageTable", e ->
        () -> e.pagedPrefill().plan(e.qoIndptr(), null, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal()));
    add2("paged prefill plan closed page table", IAE, ISE, "pageTable|closed", e -> {
      PageTable t = e.table();
      t.close();
      return () -> e.pagedPrefill().plan(e.qoIndptr(), t, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    addOther("paged prefill plan page table of another device", "pageTable.device", e -> {
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> e.pagedPrefill().plan(e.qoIndptr(), other, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none());
    });
    add("paged prefill constructor", IAE, "device|workspace", e -> {
      switch (e.rnd.nextInt(3)) {
        case 0:
          return () -> new BatchPrefillWithPagedKvCache(null);
        case 1: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.I32, 16));
          return () -> new BatchPrefillWithPagedKvCache(e.dev, ws);
        }
        default: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.U8, 64, 2)).select(1, 1);
          return () -> new BatchPrefillWithPagedKvCache(e.dev, ws);
        }
      }
    });
    add("paged prefill plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchPrefillWithPagedKvCache p = e.pagedPrefill();
      boolean planFirst = e.dev.isCpu() && e.rnd.nextBoolean();
      if (planFirst) {
        p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
      }
      p.close();
      return planFirst ? () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse())
          : () -> p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("paged prefill run before plan", ISE, "plan", e ->
        () -> e.pagedPrefill().run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse()));
    addCpu("paged prefill run q/out rows or heads", IAE, "q.shape|out.shape", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      long[] sh = {e.nnzQo(), e.hqo, e.dim};
      int i = e.rnd.nextInt(3);
      sh[i] += i == 0 && e.rnd.nextBoolean() ? -1 : 1 + e.rnd.nextInt(2);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, sh));
      boolean isQ = e.rnd.nextBoolean();
      return () -> p.run(isQ ? bad : e.prefillQ(), e.cache(), isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    addCpu("paged prefill run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.nnzQo(), e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> p.run(isQ ? bad : e.prefillQ(), e.cache(), isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    addCpu("paged prefill run lse", IAE, "lse", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo(), e.hqo + 1))
          : e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo(), e.hqo));
      return () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), bad);
    });
    addCpu("paged prefill run cache of another shape", IAE,
        "cache.numKvHeads|cache.dtype|cache.headDim|cache.pageSize", e -> {
          BatchPrefillWithPagedKvCache p = e.plannedPaged();
          PagedKvCache c;
          switch (e.rnd.nextInt(4)) {
            case 0:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv + 1, e.dim);
              break;
            case 1:
              c = PagedKvCache.allocate(e.dev, e.otherDtype, e.layout, e.numPages, e.page, e.hkv, e.dim);
              break;
            case 2:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv, e.dim * 2);
              break;
            default:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page + 1, e.hkv, e.dim);
          }
          PagedKvCache cache = e.own(c);
          return () -> p.run(e.prefillQ(), cache, e.prefillOut(), e.prefillLse());
        });
    addCpu("paged prefill run cache with too few pages", IAE, "kvIndices[", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      int pages = e.rnd.nextInt(e.table().maxPageId() + 1);
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, pages, e.page, e.hkv, e.dim));
      return () -> p.run(e.prefillQ(), c, e.prefillOut(), e.prefillLse());
    });
    addCpu("paged prefill run closed input", ISE, "closed", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Stream st = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {e.prefillQ(), e.prefillOut(), e.prefillLse(), e.cache(), e.table(), st};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse(), st);
    });
    addCpu("paged prefill run null", IAE, "cache|q|out", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      int w = e.rnd.nextInt(3);
      return () -> p.run(w == 0 ? null : e.prefillQ(), w == 1 ? null : e.cache(), w == 2 ? null : e.prefillOut(),
          e.prefillLse());
    });
    addOtherCpu("paged prefill run input on another device", "q.device|out.device|lse.device|stream.device", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor[] args = {e.prefillQ(), e.prefillOut(), e.prefillLse()};
      int i = e.rnd.nextInt(4);
      if (i == 3) {
        Stream st = e.own(Stream.create(e.other));
        return () -> p.run(args[0], e.cache(), args[1], args[2], st);
      }
      args[i] = e.onOther(args[i]);
      return () -> p.run(args[0], e.cache(), args[1], args[2]);
    });
  }

  /** A random valid variant: defaults, soft cap, window, RoPE. */
  private static AttentionOptions randomOptions(Env e) {
    AttentionOptions.Builder b = AttentionOptions.builder();
    if (e.rnd.nextBoolean()) {
      b.logitsSoftCap(1 + e.rnd.nextInt(50));
    }
    if (e.rnd.nextBoolean()) {
      b.windowLeft(e.rnd.nextInt(8));
    }
    if (e.rnd.nextInt(3) == 0) {
      b.posEncoding(PosEncoding.ROPE_LLAMA);
    }
    return b.build();
  }

  /** Unmutated prefill calls (the CPU backend; CUDA refuses prefill until its kernel lands). */
  private void prefillControls() {
    validCpu("valid: ragged prefill plan+run", e -> {
      Tensor[] kv = e.raggedKv();
      AttentionOptions o = randomOptions(e);
      return () -> {
        BatchPrefillWithRaggedKvCache r = e.ragged();
        r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask(), o, null);
        r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.rnd.nextBoolean() ? e.prefillLse() : null);
      };
    });
    validCpu("valid: paged prefill plan+run", e -> {
      AttentionOptions o = randomOptions(e);
      return () -> {
        BatchPrefillWithPagedKvCache p = e.pagedPrefill();
        p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask(), o, null);
        p.run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse());
      };
    });
    validCpu("valid: single prefill", e -> {
      Tensor[] s = prefillOperands(e);
      AttentionMask m = singleMask(e, s);
      AttentionOptions o = randomOptions(e);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], e.rnd.nextBoolean() ? s[4] : null, e.layout, m, o,
          null);
    });
    valid("valid: mask packing", e -> {
      int[] ip = e.maskIndptr();
      boolean[] bits = e.bits(ip[e.batch]);
      return () -> {
        PackedMask p = Masks.segmentPackbits(bits, ip);
        PackedMask same = PackedMask.of(p.bits(), p.indptr());
        for (int b = 0; b < e.batch; b++) {
          for (int i = ip[b]; i < ip[b + 1]; i++) {
            if (same.get(b, i - ip[b]) != bits[i]) {
              fail("segmentPackbits lost element " + i + " of request " + b);
            }
          }
        }
        byte[] flat = Masks.packbits(bits);
        assertTrue(flat.length == (bits.length + 7) / 8, "packbits length");
      };
    });
  }

  private void optionsStreamsDevices() {
    add("AttentionOptions.smScale", IAE, "smScale", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -1f, -Float.MIN_VALUE};
      float v = bad[e.rnd.nextInt(bad.length)];
      return () -> AttentionOptions.builder().smScale(v);
    });
    add("AttentionOptions.logitsSoftCap", IAE, "logitsSoftCap", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, -1f, -1e-30f};
      float v = bad[e.rnd.nextInt(bad.length)];
      return () -> AttentionOptions.builder().logitsSoftCap(v);
    });
    add("AttentionOptions.windowLeft", IAE, "windowLeft", e -> () -> AttentionOptions.builder()
        .windowLeft(-2 - e.rnd.nextInt(Integer.MAX_VALUE)));
    add("AttentionOptions.rope", IAE, "ropeScale|ropeTheta", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, 0f, -3f};
      float v = bad[e.rnd.nextInt(bad.length)];
      return e.rnd.nextBoolean() ? () -> AttentionOptions.builder().ropeScale(v)
          : () -> AttentionOptions.builder().ropeTheta(v);
    });
    add("AttentionOptions.posEncoding null", IAE, "posEncoding",
        e -> () -> AttentionOptions.builder().posEncoding(null));
    add("Stream null device", IAE, "device", e -> {
      switch (e.rnd.nextInt(3)) {
        case 0:
          return () -> Stream.create(null);
        case 1:
          return () -> Stream.defaultStream(null);
        default:
          return () -> Stream.wrap(null, 0);
      }
    });
    add("Stream closed", ISE, "closed", e -> {
      Stream s = e.rnd.nextBoolean() ? Stream.create(e.dev) : Stream.defaultStream(e.dev);
      s.close();
      return e.rnd.nextBoolean() ? s::synchronize : s::handle;
    });
    table.add(new Mutation("Device.cuda bad index", List.of(NoCudaDeviceException.class, IAE),
        new String[] {"index", "no CUDA device"}, e -> {
          int count = Device.cudaDeviceCount();
          int bad = e.outside(0, count);
          return () -> Device.cuda(bad);
        }, false, false));
  }

  /** Unmutated calls: they must succeed, and write nothing outside their buffers. */
  private void controls() {
    valid("valid: append (host targets)", e -> {
      int nnz = e.rnd.nextInt(5);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.tokens(nnz);
      return () -> PagedKv.append(k, v, t[0], t[1], e.cache(), e.table(), null);
    });
    valid("valid: append (device targets)", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Stream s = e.own(Stream.create(e.dev));
      return () -> {
        PagedKv.append(k, k, e.ints(t[0]), e.ints(t[1]), e.cache(), e.table(), s);
        s.synchronize();
      };
    });
    valid("valid: decode plan+run", e -> () -> {
      e.planned().run(e.q(), e.cache(), e.out(), e.lse());
      e.dev.synchronize();
    });
    valid("valid: single decode", e -> {
      Tensor[] s = single(e);
      return () -> {
        SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
        e.dev.synchronize();
      };
    });
    valid("valid: views and copies", e -> {
      Tensor t = e.small(e.dtype);
      return () -> {
        Tensor row = t.select(0, t.size(0) - 1);
        row.copyFrom(new float[(int) row.numel()]);
        t.narrow(1, 1, t.size(1) - 1).select(0, 0).toString();
        t.reshape(t.numel()).narrow(0, t.numel(), 0).toBits();
        try (Tensor c = t.to(e.dev)) {
          c.copyFrom(t);
        }
      };
    });
    table.add(new Mutation("bad device targets write nothing (CUDA kernel guard)", List.of(), new String[0], e -> {
      if (e.dev.isCpu()) {
        return () -> { };
      }
      int nnz = 1 + e.rnd.nextInt(4);
      int[] bi = new int[nnz];
      int[] pos = new int[nnz];
      for (int n = 0; n < nnz; n++) {
        bi[n] = e.rnd.nextBoolean() ? e.outside(0, e.batch) : 0;
        pos[n] = bi[n] == 0 ? e.outside(0, e.lens[0]) : 0;
      }
      Tensor k = e.tokens(nnz);
      PagedKvCache c = e.cache();
      Tensor watched = e.watched.get(e.watched.size() - 1);
      byte[] before = bytes(watched);
      return () -> {
        PagedKv.append(k, k, e.ints(bi), e.ints(pos), c, e.table(), null);
        e.dev.synchronize();
        assertArrayEquals(before, bytes(watched), "a kernel given only invalid targets wrote into the cache");
      };
    }, false, false));
  }

  // ------------------------------------------------------------------------------------------------------------
  // The harness
  // ------------------------------------------------------------------------------------------------------------

  static byte[] bytes(Tensor t) {
    ByteBuffer b = ByteBuffer.allocate((int) t.byteSize());
    t.copyTo(b);
    return b.array();
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

  private static boolean namesSomething(Throwable t, Mutation m) {
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

  @ParameterizedTest
  @MethodSource("devices")
  void malformedArgumentsGiveTypedExceptions(Device device) {
    buildTable();
    Device other = null;
    if (Device.cudaDeviceCount() > 0) {
      other = device.isCpu() ? Device.cuda(0) : Device.cpu();
    }
    List<Mutation> usable = new ArrayList<>();
    for (Mutation m : table) {
      if ((m.needsOtherDevice && other == null) || (m.cpuOnly && device.isCuda())) {
        continue;
      }
      usable.add(m);
    }
    List<Mutation> mutations = new ArrayList<>();
    List<Mutation> controls = new ArrayList<>();
    for (Mutation m : usable) {
      (m.mustSucceed() ? controls : mutations).add(m);
    }
    int cases = device.isCpu() ? CASES : Math.max(1, CASES / (UNDER_SANITIZER ? 40 : 10));
    long seed = SEED ^ (device.isCpu() ? 0 : 0x9E3779B97F4A7C15L);
    Random master = new Random(seed);
    Map<String, Integer> perMutation = new LinkedHashMap<>();
    Map<String, Integer> perType = new TreeMap<>();
    long[] before = Native.memoryStats(device);
    long t0 = System.nanoTime();
    // every eighth case is a control; the others cycle through the mutations in a fresh random order each round,
    // so that every mutation runs (cases / 8 * 7 / mutations) times with its own random values
    List<Mutation> cycle = new ArrayList<>();
    int nextControl = 0;
    for (int c = 0; c < cases; c++) {
      long caseSeed = master.nextLong();
      Random rnd = new Random(caseSeed);
      Mutation m;
      if (c % 8 == 7) {
        m = controls.get(nextControl++ % controls.size());
      } else {
        if (cycle.isEmpty()) {
          cycle.addAll(mutations);
          Collections.shuffle(cycle, master);
        }
        m = cycle.remove(cycle.size() - 1);
      }
      String where = "case " + c + " [" + m.name + "] on " + device + " (case seed " + caseSeed
          + ", -Dflashinfer4j.fuzzSeed=" + SEED + ")";
      try (Env e = new Env(device, other, rnd)) {
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
      perMutation.merge(m.name, 1, Integer::sum);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (cases >= 8 * usable.size()) {
      for (Mutation m : usable) {
        assertTrue(perMutation.containsKey(m.name), "mutation never drawn: " + m.name);
      }
    }
    int valid = 0;
    for (Mutation m : controls) {
      valid += perMutation.getOrDefault(m.name, 0);
    }
    System.out.printf("FuzzTest on %s: %d cases (%d malformed calls over %d mutations, %d valid calls over %d"
        + " controls) in %.1f s, seed %d; exceptions by type %s; 0 JVM crashes%n", device, cases, cases - valid,
        mutations.size(), valid, controls.size(), seconds, SEED, perType);
    assertArrayEquals(before, Native.memoryStats(device), "the fuzz cases leaked native memory");
  }
}
