package io.github.flashinfer4j.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKv;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.testing.Gpu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Native memory does not grow over long loops of allocations, frees, plans and runs. Measured two ways: the C
 * registry's count of live fi4j_malloc allocations (and bytes) on the device must be back where it started,
 * exactly; and the process's resident set (VmRSS) must not grow by more than a tolerance between a warm-up pass and
 * a measured pass of the same loop (the warm-up lets the Java heap and JIT reach their steady size, so what is left
 * is native growth). Loop counts: a million tensor allocations on the CPU backend (fewer on CUDA, where cudaMalloc
 * and cudaFree cost tens of microseconds, and fewer still under compute-sanitizer, which also moves the RSS, so only
 * the registry is checked there); override with -Dflashinfer4j.resourceLoops=N.
 */
class ResourceTest {
  /** RSS growth allowed between the warm-up and the measured pass. */
  private static final long RSS_TOLERANCE_KB = 48 * 1024;

  static List<Device> devices() {
    return Gpu.devices();
  }

  private static int loops(Device device, int cpu, int cuda) {
    Integer forced = Integer.getInteger("flashinfer4j.resourceLoops");
    if (forced != null) {
      return device.isCpu() ? forced : Math.max(1, forced / 50);
    }
    return device.isCpu() ? cpu : Gpu.UNDER_SANITIZER ? Math.max(1, cuda / 10) : cuda;
  }

  /** VmRSS of this process in kB (0 where /proc is missing: the RSS check is then skipped). */
  static long rssKb() {
    try {
      for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException | NumberFormatException e) {
      return 0;
    }
    return 0;
  }

  private static long settledRssKb() {
    System.gc();
    return rssKb();
  }

  /** Runs body twice (warm-up, measured) and checks the registry and RSS. */
  private static void assertNoGrowth(Device device, String what, int n, Runnable body) {
    long[] start = Native.memoryStats(device);
    body.run();  // warm-up: heap, JIT, allocator arenas reach their steady state
    long rss0 = settledRssKb();
    long t0 = System.nanoTime();
    body.run();
    double seconds = (System.nanoTime() - t0) / 1e9;
    long rss1 = settledRssKb();
    long[] end = Native.memoryStats(device);
    System.out.printf("ResourceTest %s on %s: %d iterations in %.2f s; live allocations %d -> %d, bytes %d -> %d;"
        + " VmRSS %d kB -> %d kB (%+d kB)%n", what, device, n, seconds, start[0], end[0], start[1], end[1], rss0,
        rss1, rss1 - rss0);
    assertArrayEquals(start, end, what + ": live allocations/bytes/streams on " + device + " must not change");
    if (rss0 > 0 && !Gpu.UNDER_SANITIZER) {  // compute-sanitizer's own host bookkeeping moves the RSS
      long growth = rss1 - rss0;
      if (growth >= RSS_TOLERANCE_KB) {
        // A one-time step (the Java heap expanding after a long test run in the same JVM) does not repeat; a leak
        // grows with every pass, so a further pass must grow too.
        body.run();
        long rss2 = settledRssKb();
        System.out.printf("ResourceTest %s on %s: third pass VmRSS %d kB -> %d kB (%+d kB)%n", what, device, rss1,
            rss2, rss2 - rss1);
        growth = rss2 - rss1;
      }
      assertTrue(growth < RSS_TOLERANCE_KB,
          what + ": VmRSS grew by " + growth + " kB in a pass after warm-up (tolerance " + RSS_TOLERANCE_KB + " kB)");
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void tensorAllocationsAndFrees(Device device) {
    int n = loops(device, 1_000_000, 20_000);
    DType[] dtypes = {DType.F16, DType.BF16, DType.F32, DType.I32, DType.U8};
    assertNoGrowth(device, "tensor allocate+free", n, () -> {
      for (int i = 0; i < n; i++) {
        DType dt = dtypes[i % dtypes.length];
        try (Tensor t = Tensor.empty(device, dt, 1 + (i & 7), 1 + ((i >> 3) & 63))) {
          if ((i & 1023) == 0) {
            Tensor view = t.select(0, 0);  // views never free and never leak
            view.fillBytes(i);
            view.close();
          }
        }
      }
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void pageTablesAndCaches(Device device) {
    int n = loops(device, 100_000, 2_000);
    assertNoGrowth(device, "page table + cache build+close", n, () -> {
      for (int i = 0; i < n; i++) {
        try (PageTable t = PageTable.contiguous(device, 4, new int[] {i % 9, 3, 0});
            PagedKvCache c = PagedKvCache.allocate(device, DType.F16, KvLayout.NHD, 1 + t.maxPageId(), 4, 1, 64)) {
          assertEquals(t.totalTokens(), (i % 9) + 3);
          assertTrue(c.isOpen());
        }
      }
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void plansRunsAndAppends(Device device) {
    int n = loops(device, 10_000, 2_000);
    int pageSize = 4;
    int heads = 2;
    int dim = 64;
    try (PageTable table = PageTable.contiguous(device, pageSize, new int[] {5, 0, 9});
        PagedKvCache cache = PagedKvCache.allocate(device, DType.F16, KvLayout.NHD, 1 + table.maxPageId(), pageSize,
            heads, dim);
        Tensor q = Tensor.zeros(device, DType.F16, 3, heads * 2, dim);
        Tensor out = Tensor.empty(device, DType.F16, 3, heads * 2, dim);
        Tensor lse = Tensor.empty(device, DType.F32, 3, heads * 2);
        Tensor keys = Tensor.zeros(device, DType.F16, 2, heads, dim);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device)) {
      cache.k().reshape(cache.k().numel()).fillBytes(0);
      cache.v().reshape(cache.v().numel()).fillBytes(0);
      assertNoGrowth(device, "plan+run+append", n, () -> {
        for (int i = 0; i < n; i++) {
          dec.plan(table, heads * 2, heads, dim, pageSize, DType.F16);
          dec.run(q, cache, out, lse);
          PagedKv.append(keys, keys, new int[] {0, 2}, new int[] {i % 5, i % 9}, cache, table);
        }
      });
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void wrappersAndStreams(Device device) {
    int n = loops(device, 20_000, 100);
    assertNoGrowth(device, "wrapper + stream create+close", n, () -> {
      for (int i = 0; i < n; i++) {
        try (BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device);
            Stream s = Stream.create(device)) {
          s.synchronize();
          assertEquals(device, dec.device());
        }
      }
    });
  }
}
