package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.testing.Gpu;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Plans are values: two threads sharing one wrapper, each planning then running its own plan, never mix plans
 * (the old plan-then-run(q, ...) pair did, silently, in 5 of 6,000 pairs when batch sizes matched); a plan stays
 * valid after later plans of its wrapper unless it uses the workspace; a plan of another wrapper is refused; prefill
 * plans own their device copies and free them on close, on the wrapper's close, or when unreachable.
 */
class PlanValueTest {
  private static final int BATCH = 3;
  private static final int QO_HEADS = 4;
  private static final int KV_HEADS = 2;
  private static final int HEAD_DIM = 64;
  private static final int PAGE = 4;
  private static final DType DTYPE = DType.F16;
  /** Batches of one size with different lengths: the old convenience pair would mix them without an error. */
  private static final int[][] LENS = {{5, 9, 2}, {13, 1, 7}, {3, 3, 16}, {0, 11, 6}, {8, 8, 8}, {1, 15, 4}};

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** Six page tables over one shared cache, one query tensor per table, and each table's expected output. */
  private static final class Batches implements AutoCloseable {
    final Device device;
    final PagedKvCache cache;
    final PageTable[] tables = new PageTable[LENS.length];
    final Tensor[] queries = new Tensor[LENS.length];
    final short[][] expectedOut = new short[LENS.length][];
    final float[][] expectedLse = new float[LENS.length][];

    Batches(Device device) {
      this.device = device;
      Random rnd = new Random(17);
      cache = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, 16, PAGE, KV_HEADS, HEAD_DIM);
      cache.k().fillUniform(3, 1f, null);
      cache.v().fillUniform(4, 1f, null);
      for (int i = 0; i < LENS.length; i++) {
        // each table takes its pages from a shuffled pool, so that batches differ in pages as well as lengths
        int[] indptr = new int[BATCH + 1];
        int[] last = new int[BATCH];
        List<Integer> ids = new ArrayList<>();
        for (int p = 0; p < 16; p++) {
          ids.add(p);
        }
        java.util.Collections.shuffle(ids, rnd);
        for (int b = 0; b < BATCH; b++) {
          int pages = (LENS[i][b] + PAGE - 1) / PAGE;
          indptr[b + 1] = indptr[b] + pages;
          last[b] = pages == 0 ? 0 : LENS[i][b] - (pages - 1) * PAGE;
        }
        int[] indices = new int[indptr[BATCH]];
        for (int p = 0; p < indices.length; p++) {
          indices[p] = ids.get(p);
        }
        tables[i] = PageTable.of(device, PAGE, indptr, indices, last);
        queries[i] = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        queries[i].fillUniform(100 + i, 1f, null);
      }
      // the expected outputs: each batch on a wrapper of its own, one thread
      for (int i = 0; i < LENS.length; i++) {
        try (BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device);
            Tensor out = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
            Tensor lse = Tensor.empty(device, DType.F32, BATCH, QO_HEADS)) {
          dec.plan(tables[i], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
          dec.run(queries[i], cache, out, lse);
          device.synchronize();
          expectedOut[i] = out.toBits();
          expectedLse[i] = lse.toFloatArray();
        }
      }
    }

    @Override
    public void close() {
      for (int i = 0; i < LENS.length; i++) {
        tables[i].close();
        queries[i].close();
      }
      cache.close();
    }
  }

  /**
   * The case a new user met: two threads share one decode wrapper on the CPU backend, each plans a batch (same
   * batch size, different lengths and pages) and runs it, thousands of times; every output must equal the output
   * of its own batch. With the convenience {@code plan(...); run(q, ...)} the other thread's plan() can land
   * between the two calls and the run then silently decodes the wrong batch; {@code run(plan, ...)} cannot mix.
   */
  @Test
  void twoThreadsShareOneDecodeWrapper() throws Exception {
    Device cpu = Device.cpu();
    long[] before = Native.memoryStats(cpu);
    int pairsPerThread = 3000;
    try (Batches batches = new Batches(cpu);
        BatchDecodeWithPagedKvCache shared = new BatchDecodeWithPagedKvCache(cpu)) {
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        CyclicBarrier start = new CyclicBarrier(2);
        List<Future<Integer>> futures = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
          final int thread = t;
          futures.add(pool.submit(() -> {
            Random rnd = new Random(thread);
            int checked = 0;
            try (Tensor out = Tensor.empty(cpu, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
                Tensor lse = Tensor.empty(cpu, DType.F32, BATCH, QO_HEADS)) {
              start.await(60, TimeUnit.SECONDS);
              for (int n = 0; n < pairsPerThread; n++) {
                // the two threads take batches from disjoint halves, so a mixed plan always shows
                int i = thread * 3 + rnd.nextInt(3);
                out.fillBytes(0xff);
                DecodePlan plan = shared.plan(batches.tables[i], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
                shared.run(plan, batches.queries[i], batches.cache, out, lse);
                assertArrayEquals(batches.expectedOut[i], out.toBits(), "thread " + thread + " pair " + n
                    + ": out of its own batch " + i);
                assertArrayEquals(batches.expectedLse[i], lse.toFloatArray(), "thread " + thread + " pair " + n
                    + ": lse of its own batch " + i);
                checked++;
              }
            }
            return checked;
          }));
        }
        int pairs = 0;
        for (Future<Integer> f : futures) {
          pairs += f.get(300, TimeUnit.SECONDS);
        }
        assertEquals(2 * pairsPerThread, pairs);
        System.out.printf("PlanValueTest: %d plan/run(plan) pairs on one shared decode wrapper, every output that"
            + " of its own batch%n", pairs);
      } finally {
        pool.shutdownNow();
      }
    }
    assertArrayEquals(before, Native.memoryStats(cpu), "nothing leaked");
  }

  /** The same for the ragged prefill wrapper, whose plans own device copies. */
  @Test
  void twoThreadsShareOneRaggedPrefillWrapper() throws Exception {
    Device cpu = Device.cpu();
    long[] before = Native.memoryStats(cpu);
    int[][] qoIndptrs = {{0, 2, 3, 7}, {0, 1, 5, 7}, {0, 4, 5, 7}, {0, 3, 4, 7}};
    int[][] kvIndptrs = {{0, 9, 12, 20}, {0, 2, 14, 20}, {0, 5, 6, 20}, {0, 10, 18, 20}};
    int nnzQo = 7;
    int nnzKv = 20;
    int pairsPerThread = 1500;
    try (Tensor q = Tensor.empty(cpu, DTYPE, nnzQo, QO_HEADS, HEAD_DIM);
        Tensor k = Tensor.empty(cpu, DTYPE, nnzKv, KV_HEADS, HEAD_DIM);
        Tensor v = Tensor.empty(cpu, DTYPE, nnzKv, KV_HEADS, HEAD_DIM);
        BatchPrefillWithRaggedKvCache shared = new BatchPrefillWithRaggedKvCache(cpu)) {
      q.fillUniform(1, 1f, null);
      k.fillUniform(2, 1f, null);
      v.fillUniform(3, 1f, null);
      short[][] expected = new short[qoIndptrs.length][];
      for (int i = 0; i < qoIndptrs.length; i++) {
        try (BatchPrefillWithRaggedKvCache own = new BatchPrefillWithRaggedKvCache(cpu);
            Tensor out = Tensor.empty(cpu, DTYPE, nnzQo, QO_HEADS, HEAD_DIM)) {
          own.plan(qoIndptrs[i], kvIndptrs[i], QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE, AttentionMask.causal());
          own.run(q, k, v, out, null);
          expected[i] = out.toBits();
        }
      }
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        List<Future<Integer>> futures = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
          final int thread = t;
          futures.add(pool.submit(() -> {
            Random rnd = new Random(10 + thread);
            int checked = 0;
            try (Tensor out = Tensor.empty(cpu, DTYPE, nnzQo, QO_HEADS, HEAD_DIM)) {
              for (int n = 0; n < pairsPerThread; n++) {
                int i = thread * 2 + rnd.nextInt(2);
                out.fillBytes(0xff);
                try (PrefillPlan plan = shared.plan(qoIndptrs[i], kvIndptrs[i], QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE,
                    AttentionMask.causal())) {
                  shared.run(plan, q, k, v, out, null);
                }
                assertArrayEquals(expected[i], out.toBits(), "thread " + thread + " pair " + n + ": batch " + i);
                checked++;
              }
            }
            return checked;
          }));
        }
        int pairs = 0;
        for (Future<Integer> f : futures) {
          pairs += f.get(300, TimeUnit.SECONDS);
        }
        assertEquals(2 * pairsPerThread, pairs);
      } finally {
        pool.shutdownNow();
      }
    }
    assertArrayEquals(before, Native.memoryStats(cpu), "nothing leaked");
  }

  /** A later plan() does not supersede a plan that does not use the workspace; run(q, ...) follows the latest. */
  @ParameterizedTest
  @MethodSource("devices")
  void earlierPlanStaysValid(Device device) {
    try (Batches batches = new Batches(device);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device);
        Tensor out = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        Tensor lse = Tensor.empty(device, DType.F32, BATCH, QO_HEADS)) {
      assertNull(dec.latestPlan());
      DecodePlan a = dec.plan(batches.tables[0], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      DecodePlan b = dec.plan(batches.tables[1], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      assertSame(b, dec.latestPlan());
      assertFalse(a.usesWorkspace(), "a small batch does not split");
      assertTrue(a.isValid());
      assertEquals(BATCH, a.batchSize());
      assertSame(batches.tables[0], a.pageTable());
      dec.run(a, batches.queries[0], batches.cache, out, lse);
      device.synchronize();
      assertArrayEquals(batches.expectedOut[0], out.toBits(), "plan a after plan b");
      dec.run(batches.queries[1], batches.cache, out, lse);
      device.synchronize();
      assertArrayEquals(batches.expectedOut[1], out.toBits(), "the convenience run uses the latest plan");
    }
  }

  /** A plan passed to another wrapper (of the same kind, or on another device) is an InvalidArgumentException. */
  @ParameterizedTest
  @MethodSource("devices")
  void planOfAnotherWrapperIsRefused(Device device) {
    try (Batches batches = new Batches(device);
        BatchDecodeWithPagedKvCache one = new BatchDecodeWithPagedKvCache(device);
        BatchDecodeWithPagedKvCache other = new BatchDecodeWithPagedKvCache(device);
        BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(device);
        BatchPrefillWithRaggedKvCache ragged2 = new BatchPrefillWithRaggedKvCache(device);
        BatchPrefillWithPagedKvCache paged = new BatchPrefillWithPagedKvCache(device);
        Tensor out = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        Tensor kv = Tensor.empty(device, DTYPE, 3, KV_HEADS, HEAD_DIM)) {
      DecodePlan plan = one.plan(batches.tables[0], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
          () -> other.run(plan, batches.queries[0], batches.cache, out, null));
      assertTrue(e.getMessage().startsWith("plan must be a plan made by this wrapper's plan()"), e.getMessage());
      PrefillPlan rp = ragged.plan(new int[] {0, 1, 2, 3}, new int[] {0, 1, 2, 3}, QO_HEADS, KV_HEADS, HEAD_DIM,
          DTYPE, AttentionMask.causal());
      Tensor q = batches.queries[0];
      e = assertThrows(InvalidArgumentException.class, () -> ragged2.run(rp, q, kv, kv, out, null));
      assertTrue(e.getMessage().contains("a plan of another BatchPrefillWithRaggedKvCache"), e.getMessage());
      e = assertThrows(InvalidArgumentException.class, () -> paged.run(rp, q, batches.cache, out, null));
      assertTrue(e.getMessage().startsWith("plan must be"), e.getMessage());
      if (device.isCuda()) {
        try (Batches onCpu = new Batches(Device.cpu());
            BatchDecodeWithPagedKvCache cpuWrapper = new BatchDecodeWithPagedKvCache(Device.cpu())) {
          DecodePlan cpuPlan = cpuWrapper.plan(onCpu.tables[0], QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
          e = assertThrows(InvalidArgumentException.class,
              () -> one.run(cpuPlan, batches.queries[0], batches.cache, out, null));
          assertTrue(e.getMessage().contains("(on cpu)"), e.getMessage());
        }
      }
      e = assertThrows(InvalidArgumentException.class,
          () -> one.run(null, batches.queries[0], batches.cache, out, null));
      assertEquals("plan must be non-null, got null", e.getMessage());
    }
  }

  /** Closed things: the plan's page table, the wrapper, a prefill plan. */
  @ParameterizedTest
  @MethodSource("devices")
  void closedPlansAndTheirTables(Device device) {
    long[] before = Native.memoryStats(device);
    try (PagedKvCache cache = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, 4, PAGE, KV_HEADS, HEAD_DIM);
        Tensor q = Tensor.zeros(device, DTYPE, 2, QO_HEADS, HEAD_DIM);
        Tensor out = Tensor.empty(device, DTYPE, 2, QO_HEADS, HEAD_DIM)) {
      BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device);
      PageTable table = PageTable.contiguous(device, PAGE, new int[] {5, 3});
      DecodePlan plan = dec.plan(table, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      table.close();
      assertFalse(plan.isValid());
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> dec.run(plan, q, cache, out, null));
      assertTrue(e.getMessage().startsWith("pageTable is closed"), e.getMessage());
      dec.close();
      e = assertThrows(IllegalStateException.class, () -> dec.run(plan, q, cache, out, null));
      assertEquals("BatchDecodeWithPagedKvCache is closed", e.getMessage());

      // prefill plans: closed by their close, by the wrapper's close; a closed plan refuses runs
      BatchPrefillWithPagedKvCache paged = new BatchPrefillWithPagedKvCache(device);
      PageTable t2 = PageTable.contiguous(device, PAGE, new int[] {5, 3});
      PrefillPlan p1 = paged.plan(new int[] {0, 1, 2}, t2, QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE,
          AttentionMask.causal());
      PrefillPlan p2 = paged.plan(new int[] {0, 2, 2}, t2, QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE,
          AttentionMask.none());
      assertTrue(p1.isOpen() && p1.isValid(), "a later plan leaves an earlier one open");
      paged.run(p1, q, cache, out, null);
      p1.close();
      p1.close();  // idempotent
      assertFalse(p1.isOpen());
      e = assertThrows(IllegalStateException.class, () -> paged.run(p1, q, cache, out, null));
      assertEquals("PrefillPlan is closed", e.getMessage());
      paged.run(p2, q, cache, out, null);
      paged.close();
      assertFalse(p2.isOpen(), "the wrapper's close frees the plans it made");
      t2.close();
    }
    assertArrayEquals(before, Native.memoryStats(device), "every plan's copies freed");
  }

  /** A prefill plan nobody keeps or closes is freed once unreachable (no warning: that is the convenience use). */
  @Test
  void unreachablePrefillPlansAreFreed() throws Exception {
    Device cpu = Device.cpu();
    try (BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(cpu)) {
      long[] before = Native.memoryStats(cpu);
      long releases = Native.cleanerReleases();
      for (int i = 0; i < 200; i++) {
        ragged.plan(new int[] {0, 1, 3}, new int[] {0, 4, 9}, QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE,
            AttentionMask.causal());
      }
      // 200 plans ignored; the latest is still the wrapper's: at most it stays allocated
      long[] now = Native.memoryStats(cpu);
      for (int attempt = 0; attempt < 100 && now[0] > before[0] + 1; attempt++) {
        System.gc();
        Thread.sleep(20);
        now = Native.memoryStats(cpu);
      }
      assertTrue(now[0] <= before[0] + 1, "unreachable plans freed: " + before[0] + " -> " + now[0]);
      assertEquals(releases, Native.cleanerReleases(), "no leak warnings for ignored plans");
    }
  }
}
