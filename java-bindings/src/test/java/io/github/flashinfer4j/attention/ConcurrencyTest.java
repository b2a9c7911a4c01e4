package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.testing.Gpu;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Concurrent use: N Java threads, each with its own stream and its own decode wrappers, append into their own
 * caches and decode both their own cache and one cache (and page table) shared read-only by all threads; every
 * output must equal, bit for bit, the output of the same work run serially. Also: threads allocating and freeing
 * at once, and closes racing with uses (never a crash; the racing use either completes or gets an
 * IllegalStateException; nothing leaks).
 */
class ConcurrencyTest {
  private static final int THREADS = 4;
  private static final int ROUNDS = 6;
  private static final int BATCH = 3;
  private static final int KV_HEADS = 2;
  private static final int QO_HEADS = 8;
  private static final int HEAD_DIM = 64;
  private static final int PAGE = 4;
  private static final DType DTYPE = DType.BF16;

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** The outputs of one thread's rounds: [round] -> bits of out (own), lse (own), out (shared), lse (shared). */
  private static final class Outputs {
    final List<short[]> ownOut = new ArrayList<>();
    final List<float[]> ownLse = new ArrayList<>();
    final List<short[]> sharedOut = new ArrayList<>();
    final List<float[]> sharedLse = new ArrayList<>();
  }

  /** A read-only cache and page table that every thread decodes. */
  private static final class Shared implements AutoCloseable {
    final PagedKvCache cache;
    final PageTable table;

    Shared(Device device) {
      Random rnd = new Random(99);
      int[] lens = {13, 0, 29};
      int pages = 0;
      for (int l : lens) {
        pages += (l + PAGE - 1) / PAGE;
      }
      List<Integer> ids = new ArrayList<>();
      for (int i = 0; i < pages + 2; i++) {
        ids.add(i);
      }
      Collections.shuffle(ids, rnd);
      int[] indptr = new int[BATCH + 1];
      int[] last = new int[BATCH];
      for (int b = 0; b < BATCH; b++) {
        int p = (lens[b] + PAGE - 1) / PAGE;
        indptr[b + 1] = indptr[b] + p;
        last[b] = p == 0 ? 0 : lens[b] - (p - 1) * PAGE;
      }
      int[] indices = new int[pages];
      for (int i = 0; i < pages; i++) {
        indices[i] = ids.get(i);
      }
      cache = PagedKvCache.allocate(device, DTYPE, KvLayout.HND, pages + 2, PAGE, KV_HEADS, HEAD_DIM);
      table = PageTable.of(device, PAGE, indptr, indices, last);
      cache.k().reshape(cache.k().numel()).copyFrom(randoms(rnd, (int) cache.k().numel()));
      cache.v().reshape(cache.v().numel()).copyFrom(randoms(rnd, (int) cache.v().numel()));
    }

    @Override
    public void close() {
      table.close();
      cache.close();
    }
  }

  private static float[] randoms(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }

  /** One thread's work: its stream, wrappers and cache; rounds append one token per request and decode. */
  private static final class Worker implements AutoCloseable {
    final Device device;
    final int id;
    final Shared shared;
    final Stream stream;
    final BatchDecodeWithPagedKvCache ownDecode;
    final BatchDecodeWithPagedKvCache sharedDecode;
    final PagedKvCache cache;
    final int[] baseLens;
    final int[][] reserved;  // page ids reserved for each request, in order
    final Tensor q;
    final Tensor out;
    final Tensor lse;
    final Outputs outputs = new Outputs();

    Worker(Device device, int id, Shared shared) {
      this.device = device;
      this.id = id;
      this.shared = shared;
      Random rnd = new Random(1000 + id);
      stream = Stream.create(device);
      ownDecode = new BatchDecodeWithPagedKvCache(device);
      sharedDecode = new BatchDecodeWithPagedKvCache(device);
      baseLens = new int[BATCH];
      reserved = new int[BATCH][];
      List<Integer> ids = new ArrayList<>();
      int pages = 0;
      for (int b = 0; b < BATCH; b++) {
        baseLens[b] = rnd.nextInt(3) == 0 ? 0 : rnd.nextInt(12);
        reserved[b] = new int[(baseLens[b] + ROUNDS + PAGE - 1) / PAGE];
        pages += reserved[b].length;
      }
      for (int i = 0; i < pages; i++) {
        ids.add(i);
      }
      Collections.shuffle(ids, rnd);
      int next = 0;
      for (int b = 0; b < BATCH; b++) {
        for (int i = 0; i < reserved[b].length; i++) {
          reserved[b][i] = ids.get(next++);
        }
      }
      cache = id % 2 == 0
          ? PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, pages, PAGE, KV_HEADS, HEAD_DIM)
          : PagedKvCache.allocateCombined(device, DTYPE, KvLayout.HND, pages, PAGE, KV_HEADS, HEAD_DIM);
      q = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
      out = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
      lse = Tensor.empty(device, DType.F32, BATCH, QO_HEADS);
      // the base tokens, appended through a page table of the base lengths
      int nnz = 0;
      for (int l : baseLens) {
        nnz += l;
      }
      if (nnz > 0) {
        int[] appendIndptr = new int[BATCH + 1];
        for (int b = 0; b < BATCH; b++) {
          appendIndptr[b + 1] = appendIndptr[b] + baseLens[b];
        }
        try (PageTable t = table(0);
            Tensor k = Tensor.fromFloats(device, DTYPE, randoms(rnd, nnz * KV_HEADS * HEAD_DIM), nnz, KV_HEADS,
                HEAD_DIM);
            Tensor v = Tensor.fromFloats(device, DTYPE, randoms(rnd, nnz * KV_HEADS * HEAD_DIM), nnz, KV_HEADS,
                HEAD_DIM)) {
          PagedKv.append(k, v, PagedKv.batchIndicesAndPositions(appendIndptr, baseLens), cache, t, stream);
        }
      }
      sharedDecode.plan(shared.table, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE, AttentionOptions.defaults(),
          DecodePlanOptions.defaults(), stream);
    }

    /** The page table after {@code extra} tokens were added to every request's base length. */
    PageTable table(int extra) {
      int[] indptr = new int[BATCH + 1];
      int[] last = new int[BATCH];
      List<Integer> indices = new ArrayList<>();
      for (int b = 0; b < BATCH; b++) {
        int len = baseLens[b] + extra;
        int p = (len + PAGE - 1) / PAGE;
        for (int i = 0; i < p; i++) {
          indices.add(reserved[b][i]);
        }
        indptr[b + 1] = indptr[b] + p;
        last[b] = p == 0 ? 0 : len - (p - 1) * PAGE;
      }
      return PageTable.of(device, PAGE, indptr, indices.stream().mapToInt(Integer::intValue).toArray(), last);
    }

    void round(int r) {
      Random rnd = new Random(id * 7919L + r);
      int[] bi = new int[BATCH];
      int[] pos = new int[BATCH];
      for (int b = 0; b < BATCH; b++) {
        bi[b] = b;
        pos[b] = baseLens[b] + r;
      }
      try (PageTable t = table(r + 1);
          Tensor k = Tensor.fromFloats(device, DTYPE, randoms(rnd, BATCH * KV_HEADS * HEAD_DIM), BATCH, KV_HEADS,
              HEAD_DIM);
          Tensor v = Tensor.fromFloats(device, DTYPE, randoms(rnd, BATCH * KV_HEADS * HEAD_DIM), BATCH, KV_HEADS,
              HEAD_DIM)) {
        q.copyFrom(randoms(rnd, (int) q.numel()));
        PagedKv.append(k, v, bi, pos, cache, t, stream);
        ownDecode.plan(t, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE, AttentionOptions.defaults(),
            DecodePlanOptions.defaults(), stream);
        out.fillBytes(0xff);
        ownDecode.run(q, cache, out, lse, stream);
        stream.synchronize();
        outputs.ownOut.add(out.toBits());
        outputs.ownLse.add(lse.toFloatArray());
        out.fillBytes(0xff);
        sharedDecode.run(q, shared.cache, out, lse, stream);
        stream.synchronize();
        outputs.sharedOut.add(out.toBits());
        outputs.sharedLse.add(lse.toFloatArray());
      }
    }

    @Override
    public void close() {
      q.close();
      out.close();
      lse.close();
      cache.close();
      ownDecode.close();
      sharedDecode.close();
      stream.close();
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void concurrentThreadsMatchASerialRun(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    List<Outputs> serial = new ArrayList<>();
    List<Outputs> concurrent = new ArrayList<>();
    try (Shared shared = new Shared(device)) {
      for (int t = 0; t < THREADS; t++) {
        try (Worker w = new Worker(device, t, shared)) {
          for (int r = 0; r < ROUNDS; r++) {
            w.round(r);
          }
          serial.add(w.outputs);
        }
      }
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      try {
        CyclicBarrier barrier = new CyclicBarrier(THREADS);
        List<Future<Outputs>> futures = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          final int id = t;
          futures.add(pool.submit(() -> {
            try (Worker w = new Worker(device, id, shared)) {
              for (int r = 0; r < ROUNDS; r++) {
                barrier.await(60, TimeUnit.SECONDS);  // all threads in the same round at once
                w.round(r);
              }
              return w.outputs;
            }
          }));
        }
        for (Future<Outputs> f : futures) {
          concurrent.add(f.get(300, TimeUnit.SECONDS));
        }
      } finally {
        pool.shutdownNow();
      }
    }
    int compared = 0;
    for (int t = 0; t < THREADS; t++) {
      Outputs s = serial.get(t);
      Outputs c = concurrent.get(t);
      for (int r = 0; r < ROUNDS; r++) {
        String where = device + " thread " + t + " round " + r;
        for (short[] bits : new short[][] {s.ownOut.get(r), s.sharedOut.get(r)}) {
          for (short x : bits) {
            assertTrue(x != (short) 0xffff, where + ": every output element written (no poison left)");
          }
        }
        assertArrayEquals(s.ownOut.get(r), c.ownOut.get(r), where + ": own cache out");
        assertArrayEquals(s.ownLse.get(r), c.ownLse.get(r), where + ": own cache lse");
        assertArrayEquals(s.sharedOut.get(r), c.sharedOut.get(r), where + ": shared cache out");
        assertArrayEquals(s.sharedLse.get(r), c.sharedLse.get(r), where + ": shared cache lse");
        compared += 2;
      }
    }
    System.out.printf("ConcurrencyTest on %s: %d threads x %d rounds, %d decode outputs (append + own-cache decode,"
        + " shared-cache decode) identical to the serial run%n", device, THREADS, ROUNDS, compared);
    assertArrayEquals(before, Native.memoryStats(device), "nothing leaked");
  }

  @ParameterizedTest
  @MethodSource("devices")
  void concurrentAllocationsAndFrees(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    int perThread = device.isCpu() ? 50_000 : 2_000;
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        final int id = t;
        futures.add(pool.submit(() -> {
          List<Tensor> live = new ArrayList<>();
          Random rnd = new Random(id);
          for (int i = 0; i < perThread; i++) {
            live.add(Tensor.empty(device, DType.F16, 1 + rnd.nextInt(64)));
            if (live.size() > 16 || rnd.nextBoolean()) {
              live.remove(rnd.nextInt(live.size())).close();
            }
          }
          live.forEach(Tensor::close);
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get(300, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertArrayEquals(before, Native.memoryStats(device));
  }

  /**
   * A close on one thread races with uses on another: the use completes or throws IllegalStateException, never
   * anything else and never a crash; memory is freed exactly once, after the last running native call.
   */
  @ParameterizedTest
  @MethodSource("devices")
  void closeRacingWithUse(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    int iterations = device.isCpu() ? 300 : 50;
    Random rnd = new Random(5);
    int raced = 0;
    for (int i = 0; i < iterations; i++) {
      PageTable table = PageTable.contiguous(device, PAGE, new int[] {7, 3});
      PagedKvCache cache = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, 4, PAGE, KV_HEADS, HEAD_DIM);
      Tensor keys = Tensor.zeros(device, DTYPE, 2, KV_HEADS, HEAD_DIM);
      Tensor big = Tensor.zeros(device, DType.F32, 1 << 14);
      Stream stream = Stream.create(device);
      AtomicReference<Throwable> unexpected = new AtomicReference<>();
      Thread user = new Thread(() -> {
        try {
          while (true) {
            big.toFloatArray();
            PagedKv.append(keys, keys, new int[] {0, 1}, new int[] {6, 2}, cache, table, stream);
            stream.synchronize();
          }
        } catch (IllegalStateException expected) {
          // a closed handle refused use: the right outcome; any other IllegalStateException is a failure
          if (!String.valueOf(expected.getMessage()).contains("is closed")) {
            unexpected.set(expected);
          }
        } catch (Throwable t) {
          unexpected.set(t);
        }
      });
      user.start();
      Thread.sleep(0, rnd.nextInt(200_000));
      switch (i % 5) {
        case 0:
          big.close();
          break;
        case 1:
          cache.close();
          break;
        case 2:
          table.close();
          break;
        case 3:
          stream.close();
          break;
        default:
          keys.close();
      }
      user.join(60_000);
      assertTrue(!user.isAlive(), "user thread finished");
      if (unexpected.get() != null) {
        fail("a racing close gave " + unexpected.get(), unexpected.get());
      }
      raced++;
      big.close();
      keys.close();
      cache.close();
      table.close();
      stream.close();
    }
    assertEquals(iterations, raced);
    assertArrayEquals(before, Native.memoryStats(device), "every allocation freed exactly once");
  }
}
