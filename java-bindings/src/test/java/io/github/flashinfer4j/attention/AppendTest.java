package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Gpu;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Append semantics: every token lands in its page and slot, nothing else changes; on every available device. */
class AppendTest {
  static List<Device> devices() {
    return Gpu.devices();
  }

  @Test
  void batchIndicesAndPositionsFollowFlashInfer() {
    // request 0 appends 2 of its 5 tokens, request 1 appends none, request 2 appends 3 tokens to an empty cache
    AppendPositions p = PagedKv.batchIndicesAndPositions(new int[] {0, 2, 2, 5}, new int[] {5, 7, 3});
    assertArrayEquals(new int[] {0, 0, 2, 2, 2}, p.batchIndices());
    assertArrayEquals(new int[] {3, 4, 0, 1, 2}, p.positions());
  }

  @ParameterizedTest
  @MethodSource("devices")
  void tokensLandInTheirSlotsOnly(Device device) {
    for (KvLayout layout : KvLayout.values()) {
      for (boolean combined : new boolean[] {false, true}) {
        check(device, layout, combined);
      }
    }
  }

  private static void check(Device device, KvLayout layout, boolean combined) {
    final int pageSize = 3;
    final int heads = 2;
    final int dim = 64;
    final int numPages = 7;
    // request 0: pages {4, 0} (5 tokens), request 1: no pages, request 2: pages {6, 2, 5} (7 tokens)
    int[] indptr = {0, 2, 2, 5};
    int[] indices = {4, 0, 6, 2, 5};
    int[] last = {2, 0, 1};
    int[] bi = {0, 2, 2, 2, 0};
    int[] pos = {4, 0, 3, 6, 2};  // includes the last slot of a page (pos 2 of request 0) and page starts
    Random rnd = new Random(3);
    float[] k = new float[bi.length * heads * dim];
    float[] v = new float[k.length];
    for (int i = 0; i < k.length; i++) {
      k[i] = rnd.nextInt(100) - 50;
      v[i] = rnd.nextInt(100) - 50;
    }
    try (PagedKvCache cache = combined
            ? PagedKvCache.allocateCombined(device, DType.F16, layout, numPages, pageSize, heads, dim)
            : PagedKvCache.allocate(device, DType.F16, layout, numPages, pageSize, heads, dim);
        PageTable table = PageTable.of(device, pageSize, indptr, indices, last);
        Tensor keys = Tensor.fromFloats(device, DType.F16, k, bi.length, heads, dim);
        Tensor values = Tensor.fromFloats(device, DType.F16, v, bi.length, heads, dim)) {
      // poison the whole cache, then append
      float poison = -1234f;
      float[] pool = new float[numPages * pageSize * heads * dim];
      java.util.Arrays.fill(pool, poison);
      fill(cache, pool);
      PagedKv.append(keys, values, bi, pos, cache, table);
      float[][] got = {read(cache.k()), read(cache.v())};
      float[][] expected = {pool.clone(), pool.clone()};
      for (int n = 0; n < bi.length; n++) {
        int page = indices[indptr[bi[n]] + pos[n] / pageSize];
        int slot = pos[n] % pageSize;
        for (int h = 0; h < heads; h++) {
          for (int d = 0; d < dim; d++) {
            int at = layout == KvLayout.NHD
                ? ((page * pageSize + slot) * heads + h) * dim + d
                : ((page * heads + h) * pageSize + slot) * dim + d;
            expected[0][at] = k[(n * heads + h) * dim + d];
            expected[1][at] = v[(n * heads + h) * dim + d];
          }
        }
      }
      assertArrayEquals(expected[0], got[0], device + " " + layout + " combined=" + combined + " K");
      assertArrayEquals(expected[1], got[1], device + " " + layout + " combined=" + combined + " V");
      assertEquals(7, table.kvLen(2));
    }
  }

  /** Writes the same host pool into K and V, page by page (works for strided combined views too). */
  private static void fill(PagedKvCache cache, float[] pool) {
    int per = pool.length / cache.numPages();
    for (int p = 0; p < cache.numPages(); p++) {
      float[] page = java.util.Arrays.copyOfRange(pool, p * per, (p + 1) * per);
      cache.k().select(0, p).copyFrom(page);
      cache.v().select(0, p).copyFrom(page);
    }
  }

  private static float[] read(Tensor pages) {
    int n = (int) pages.size(0);
    int per = (int) (pages.numel() / Math.max(n, 1));
    float[] out = new float[n * per];
    for (int p = 0; p < n; p++) {
      System.arraycopy(pages.select(0, p).toFloatArray(), 0, out, p * per, per);
    }
    return out;
  }
}
