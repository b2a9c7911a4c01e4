package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Every validation path of this ops, with the message it gives. */
class ValidationTest {
  private final Device cpu = Device.cpu();

  private static String invalid(Executable e) {
    return assertThrows(InvalidArgumentException.class, e).getMessage();
  }

  @Test
  void pageTable() {
    assertEquals("pageSize must be >= 1, got 0", invalid(() -> PageTable.of(cpu, 0, new int[] {0}, new int[0], new int[0])));
    assertEquals("kvIndptr.length must be kvLastPageLen.length + 1 = 2, got 3",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 1, 2}, new int[] {0, 1}, new int[] {1})));
    assertEquals("kvIndptr[0] must be 0, got 1",
        invalid(() -> PageTable.of(cpu, 4, new int[] {1, 2}, new int[] {0, 1}, new int[] {1})));
    assertEquals("kvIndptr[2] must be >= kvIndptr[1] = 2 (non-decreasing), got 1",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 2, 1}, new int[] {0, 1}, new int[] {1, 1})));
    assertEquals("kvIndptr[1] must be <= kvIndices.length = 1, got 2",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 2}, new int[] {0}, new int[] {1})));
    assertEquals("kvIndices[1] must be >= 0, got -5",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 2}, new int[] {0, -5}, new int[] {1})));
    assertEquals("kvLastPageLen[0] must be in [0, 4], got 5",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 2}, new int[] {0, 1}, new int[] {5})));
    assertEquals("kvLastPageLen[1] must be 0 for a request with no pages, got 2",
        invalid(() -> PageTable.of(cpu, 4, new int[] {0, 2, 2}, new int[] {0, 1}, new int[] {1, 2})));
    assertEquals("kvIndptr must be non-null, got null", invalid(() -> PageTable.of(cpu, 4, null, new int[0], new int[0])));
    assertEquals("kvLens[0] must be >= 0, got -1", invalid(() -> PageTable.contiguous(cpu, 4, new int[] {-1})));
    try (PageTable t = PageTable.of(cpu, 4, new int[] {0, 2, 2, 3}, new int[] {5, 1, 0}, new int[] {3, 0, 4})) {
      assertEquals(7, t.kvLen(0));
      assertEquals(0, t.kvLen(1));
      assertEquals(4, t.kvLen(2));
      assertEquals(11, t.totalTokens());
      assertEquals(5, t.maxPageId());
      assertEquals("b must be in [0, 3), got 3", invalid(() -> t.kvLen(3)));
    }
  }

  @Test
  void cacheShapes() {
    assertEquals("numPages must be >= 0, got -1",
        invalid(() -> PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, -1, 16, 8, 128)));
    assertEquals("dtype must be F16 or BF16, got F32",
        invalid(() -> PagedKvCache.allocate(cpu, DType.F32, KvLayout.NHD, 4, 16, 8, 128)));
    try (Tensor k = Tensor.empty(cpu, DType.F16, 4, 16, 8, 128);
        Tensor v = Tensor.empty(cpu, DType.F16, 4, 16, 8, 64);
        Tensor v2 = Tensor.empty(cpu, DType.BF16, 4, 16, 8, 128);
        Tensor k3 = Tensor.empty(cpu, DType.F16, 4, 16, 8)) {
      assertEquals("v.shape must be [4, 16, 8, 128], got [4, 16, 8, 64]", invalid(() -> PagedKvCache.of(k, v, KvLayout.NHD)));
      assertEquals("v.dtype must be k.dtype F16, got BF16", invalid(() -> PagedKvCache.of(k, v2, KvLayout.NHD)));
      assertEquals("k.dim() must be 4 ([numPages, pageSize, numKvHeads, headDim]), got 3",
          invalid(() -> PagedKvCache.of(k3, k3, KvLayout.NHD)));
      assertEquals("kv.dim() must be 5 ([numPages, 2, numKvHeads, pageSize, headDim]), got 4",
          invalid(() -> PagedKvCache.ofCombined(k, KvLayout.HND)));
      Tensor strided = Tensor.wrap(cpu, k.address(), DType.F16, new long[] {4, 16, 8, 64}, new long[] {16384, 1024, 128, 2});
      assertEquals("k.stride(3) must be 1 (last dim contiguous), got 2",
          invalid(() -> PagedKvCache.of(strided, strided, KvLayout.NHD)));
    }
  }

  @Test
  void appendTargetsAndTokens() {
    try (PagedKvCache cache = PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 4, 2, 1, 8);
        PageTable table = PageTable.of(cpu, 2, new int[] {0, 2, 3}, new int[] {3, 1, 0}, new int[] {1, 2});
        Tensor keys = Tensor.zeros(cpu, DType.F16, 2, 1, 8);
        Tensor bad = Tensor.zeros(cpu, DType.F16, 2, 2, 8);
        Tensor bf = Tensor.zeros(cpu, DType.BF16, 2, 1, 8)) {
      assertEquals("positions[1] must be in [0, 3) (the tokens request 0's pages hold), got 3",
          invalid(() -> PagedKv.append(keys, keys, new int[] {0, 0}, new int[] {0, 3}, cache, table)));
      assertEquals("positions[0] must be in [0, 2) (the tokens request 1's pages hold), got -1",
          invalid(() -> PagedKv.append(keys, keys, new int[] {1, 1}, new int[] {-1, 0}, cache, table)));
      assertEquals("batchIndices[1] must be in [0, 2), got 2",
          invalid(() -> PagedKv.append(keys, keys, new int[] {0, 2}, new int[] {0, 0}, cache, table)));
      assertEquals("batchIndices.length must be keys.size(0) = 2, got 1",
          invalid(() -> PagedKv.append(keys, keys, new int[] {0}, new int[] {0, 0}, cache, table)));
      assertEquals("keys.shape must be [2, 1, 8], got [2, 2, 8]",
          invalid(() -> PagedKv.append(bad, keys, new int[] {0, 0}, new int[] {0, 1}, cache, table)));
      assertEquals("values.dtype must be F16, got BF16",
          invalid(() -> PagedKv.append(keys, bf, new int[] {0, 0}, new int[] {0, 1}, cache, table)));
      assertEquals("seqLens[0] must be >= the 3 tokens appended to request 0, got 2",
          invalid(() -> PagedKv.batchIndicesAndPositions(new int[] {0, 3}, new int[] {2})));
      try (PagedKvCache small = PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 3, 2, 1, 8)) {
        assertEquals("kvIndices[0] must be < the cache's page count 3, got 3",
            invalid(() -> PagedKv.append(keys, keys, new int[] {0, 0}, new int[] {0, 1}, small, table)));
      }
      try (PagedKvCache p4 = PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 4, 4, 1, 8)) {
        assertEquals("cache.pageSize must be the page table's page size 2, got 4",
            invalid(() -> PagedKv.append(keys, keys, new int[] {0, 0}, new int[] {0, 1}, p4, table)));
      }
    }
  }

  @Test
  void decodePlanAndRun() {
    PageTable table = PageTable.contiguous(cpu, 16, new int[] {5, 0, 17});
    try (BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(cpu);
        PagedKvCache cache = PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 16, 2, 64);
        Tensor q = Tensor.zeros(cpu, DType.BF16, 3, 8, 64);
        Tensor out = Tensor.empty(cpu, DType.BF16, 3, 8, 64);
        Tensor qf = Tensor.zeros(cpu, DType.F16, 3, 8, 64);
        Tensor lse = Tensor.empty(cpu, DType.F32, 3, 8);
        Tensor lseBad = Tensor.empty(cpu, DType.F32, 3, 7)) {
      assertThrows(IllegalStateException.class, () -> dec.run(q, cache, out, null));
      assertEquals("numQoHeads must be a multiple of numKvHeads = 3, got 8",
          invalid(() -> dec.plan(table, 8, 3, 64, 16, DType.BF16)));
      assertEquals("pageSize must be the page table's page size 16, got 8",
          invalid(() -> dec.plan(table, 8, 2, 64, 8, DType.BF16)));
      UnsupportedConfigurationException u = assertThrows(UnsupportedConfigurationException.class,
          () -> dec.plan(table, 8, 2, 64, 16, DType.F32));
      assertTrue(u.getMessage().contains("F32"), u.getMessage());
      u = assertThrows(UnsupportedConfigurationException.class, () -> dec.plan(table, 8, 2, 63, 16, DType.BF16));
      assertTrue(u.getMessage().contains("head_dim 63"), u.getMessage());
      dec.plan(table, 8, 2, 64, 16, DType.BF16);
      assertEquals("q.dtype must be BF16, got F16", invalid(() -> dec.run(qf, cache, out, null)));
      assertEquals("lse.shape must be [3, 8], got [3, 7]", invalid(() -> dec.run(q, cache, out, lseBad)));
      assertEquals("lse.dtype must be F32, got BF16", invalid(() -> dec.run(q, cache, out, q)));
      try (PagedKvCache c1 = PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 16, 1, 64);
          PagedKvCache c2 = PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 2, 16, 2, 64)) {
        assertEquals("cache.numKvHeads must be the planned 2, got 1", invalid(() -> dec.run(q, c1, out, null)));
        assertEquals("kvIndices[2] must be < the cache's page count 2, got 2", invalid(() -> dec.run(q, c2, out, null)));
      }
      dec.run(q, cache, out, lse);
      table.close();
      assertThrows(IllegalStateException.class, () -> dec.run(q, cache, out, lse));
    }
  }

  @Test
  void options() {
    assertEquals("smScale must be finite and > 0, got NaN", invalid(() -> AttentionOptions.builder().smScale(Float.NaN)));
    assertEquals("logitsSoftCap must be finite and >= 0 (0 = off), got -1.0",
        invalid(() -> AttentionOptions.builder().logitsSoftCap(-1)));
    assertEquals("windowLeft must be >= -1 (-1 = off), got -2", invalid(() -> AttentionOptions.builder().windowLeft(-2)));
    assertEquals("ropeTheta must be finite and > 0, got 0.0", invalid(() -> AttentionOptions.builder().ropeTheta(0)));
    assertEquals("posEncoding must be non-null, got null", invalid(() -> AttentionOptions.builder().posEncoding(null)));
  }

  @Test
  void singleDecodeShapes() {
    try (Tensor q = Tensor.zeros(cpu, DType.F16, 4, 64);
        Tensor k = Tensor.zeros(cpu, DType.F16, 10, 3, 64);
        Tensor out = Tensor.empty(cpu, DType.F16, 4, 64)) {
      assertEquals("numQoHeads must be a multiple of numKvHeads = 3, got 4",
          invalid(() -> SingleDecode.run(q, k, k, out, null, KvLayout.NHD)));
      assertEquals("numQoHeads must be a multiple of numKvHeads = 10, got 4",
          invalid(() -> SingleDecode.run(q, k, k, out, null, KvLayout.HND)));
      try (Tensor k32 = Tensor.zeros(cpu, DType.F16, 10, 4, 32)) {
        assertEquals("k.size(2) must be q's head dim 64, got 32",
            invalid(() -> SingleDecode.run(q, k32, k32, out, null, KvLayout.NHD)));
      }
    }
  }
}
