package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Split-KV plans, both kernel paths, deterministic mode and CUDA-graph replay against the CPU reference: split and
 * unsplit agree with it, the tensor-core and CUDA-core paths agree to 1e-3, fixed chunks give bit-identical
 * results across batch orders, and a captured graph replayed after a new plan equals a direct run.
 */
@EnabledIf(value = "io.github.flashinfer4j.testing.Gpu#available", disabledReason = "no CUDA device")
class GpuDecodeSplitTest {
  static List<Arguments> plans() {
    List<Arguments> out = new ArrayList<>();
    DecodePlanOptions auto = DecodePlanOptions.defaults();
    DecodePlanOptions never = DecodePlanOptions.builder().neverSplit().build();
    DecodePlanOptions fixed = DecodePlanOptions.deterministic(96);
    DecodePlanOptions cc = DecodePlanOptions.builder().path(DecodePath.CUDA_CORES).build();
    DecodePlanOptions tc = DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).build();
    DecodePlanOptions tcFixed = DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).fixedChunk(64).build();
    long seed = 500;
    int[][] heads = {{8, 8}, {8, 2}, {32, 8}, {16, 1}, {12, 4}, {40, 5}};
    for (int[] h : heads) {
      for (DecodePlanOptions po : new DecodePlanOptions[] {auto, never, fixed, cc, tc, tcFixed}) {
        int dim = (seed % 3 == 0) ? 64 : (seed % 3 == 1) ? 128 : 256;
        DType dt = seed % 2 == 0 ? DType.BF16 : DType.F16;
        KvLayout layout = seed % 4 < 2 ? KvLayout.NHD : KvLayout.HND;
        // few long requests (AUTO splits them), an empty one and a one-token one
        DecodeProblem p = new DecodeProblem(seed++, dt, layout, 16, h[0], h[1], dim, new int[] {3000, 0, 1, 777},
            DecodeProblem.CacheKind.SEPARATE);
        AttentionOptions opt = seed % 5 == 0 ? AttentionOptions.builder().windowLeft(300).build()
            : seed % 5 == 1 ? AttentionOptions.builder().logitsSoftCap(30).build()
            : seed % 5 == 2 ? AttentionOptions.builder().posEncoding(PosEncoding.ROPE_LLAMA).build()
            : AttentionOptions.defaults();
        out.add(Arguments.of(p, opt, po));
      }
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("plans")
  void planMatchesCpuReference(DecodeProblem p, AttentionOptions opt, DecodePlanOptions po) {
    float[][] cpu = run(p, opt, DecodePlanOptions.defaults(), Device.cpu(), null);
    int[] work = new int[1];
    float[][] gpu = run(p, opt, po, Device.cuda(0), work);
    if (po.splitMode() == DecodePlanOptions.SplitMode.FIXED || po.splitMode() == DecodePlanOptions.SplitMode.AUTO) {
      assertTrue(work[0] > p.batch(), "long requests were split: " + work[0] + " work items");
    } else {
      assertEquals(0, work[0]);
    }
    Assertions2.assertClose(cpu[0], gpu[0], Assertions2.tolerance(p.dtype), p + " " + opt + " " + po + " out");
    Assertions2.assertClose(cpu[1], gpu[1], 1e-3, p + " " + opt + " " + po + " lse");
  }

  @Test
  void pathsAgreeToOneThousandth() {
    for (int[] h : new int[][] {{8, 8}, {32, 8}, {64, 8}, {16, 1}}) {
      DecodeProblem p = new DecodeProblem(h[0], DType.BF16, KvLayout.NHD, 16, h[0], h[1], 128,
          new int[] {513, 2048, 1, 0, 64}, DecodeProblem.CacheKind.SEPARATE);
      AttentionOptions opt = AttentionOptions.defaults();
      float[][] cc = run(p, opt, DecodePlanOptions.builder().path(DecodePath.CUDA_CORES).build(), Device.cuda(0), null);
      float[][] tc = run(p, opt, DecodePlanOptions.builder().path(DecodePath.TENSOR_CORES).build(), Device.cuda(0),
          null);
      Assertions2.assertClose(cc[0], tc[0], 1e-3, h[0] + "/" + h[1] + " tensor vs CUDA cores out");
      Assertions2.assertClose(cc[1], tc[1], 1e-3, h[0] + "/" + h[1] + " tensor vs CUDA cores lse");
    }
  }

  @Test
  void fixedChunksAreBitIdenticalAcrossBatchOrders() {
    int[] lens = {2500, 17, 900, 0, 4096};
    int[] order = {4, 2, 0, 3, 1};
    int[] permuted = new int[lens.length];
    for (int i = 0; i < lens.length; i++) {
      permuted[i] = lens[order[i]];
    }
    for (DecodePath path : new DecodePath[] {DecodePath.CUDA_CORES, DecodePath.TENSOR_CORES}) {
      DecodePlanOptions po = DecodePlanOptions.builder().fixedChunk(128).path(path).build();
      // the same requests (same seeds per request) in two orders
      short[][] a = bits(lens, po);
      short[][] b = bits(permuted, po);
      for (int i = 0; i < lens.length; i++) {
        assertArrayEquals(a[order[i]], b[i], path + ": request " + order[i] + " differs between batch orders");
      }
    }
  }

  /** Output bits per request for a batch whose request r holds data seeded by its length. */
  private static short[][] bits(int[] lens, DecodePlanOptions po) {
    Device d = Device.cuda(0);
    int hq = 32;
    int hkv = 8;
    int dim = 128;
    int batch = lens.length;
    try (PageTable table = PageTable.contiguous(d, 16, lens);
        PagedKvCache cache = PagedKvCache.allocate(d, DType.BF16, KvLayout.NHD, Math.max(1, table.maxPageId() + 1),
            16, hkv, dim);
        Tensor q = Tensor.empty(d, DType.BF16, batch, hq, dim);
        Tensor out = Tensor.empty(d, DType.BF16, batch, hq, dim);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(d)) {
      int[] indptr = table.kvIndptr();
      for (int b = 0; b < batch; b++) {
        q.select(0, b).fillUniform(1000 + lens[b], 1f, null);
        for (int pg = indptr[b]; pg < indptr[b + 1]; pg++) {
          cache.k().select(0, pg).fillUniform(7 * lens[b] + (pg - indptr[b]), 1f, null);
          cache.v().select(0, pg).fillUniform(9 * lens[b] + (pg - indptr[b]), 1f, null);
        }
      }
      out.fillBytes(0xff);
      dec.plan(table, hq, hkv, dim, 16, DType.BF16, AttentionOptions.defaults(), po, null);
      dec.run(q, cache, out, null);
      d.synchronize();
      short[][] r = new short[batch][];
      for (int b = 0; b < batch; b++) {
        r[b] = out.select(0, b).toBits();
      }
      return r;
    }
  }

  @Test
  void graphReplayAfterNewPlanEqualsDirectRun() {
    Device d = Device.cuda(0);
    int batch = 3;
    int hq = 32;
    int hkv = 8;
    int dim = 128;
    DecodeProblem first = new DecodeProblem(31, DType.BF16, KvLayout.NHD, 16, hq, hkv, dim, new int[] {100, 2000, 1},
        DecodeProblem.CacheKind.SEPARATE);
    DecodeProblem second = new DecodeProblem(32, DType.BF16, KvLayout.NHD, 16, hq, hkv, dim, new int[] {0, 33, 3100},
        DecodeProblem.CacheKind.SEPARATE);
    int maxPages = 256;
    try (Stream stream = Stream.create(d);
        PagedKvCache cache = PagedKvCache.allocate(d, DType.BF16, KvLayout.NHD, maxPages, 16, hkv, dim);
        Tensor q = Tensor.empty(d, DType.BF16, batch, hq, dim);
        Tensor out = Tensor.empty(d, DType.BF16, batch, hq, dim);
        Tensor lse = Tensor.empty(d, DType.F32, batch, hq);
        BatchDecodeWithPagedKvCache dec = BatchDecodeWithPagedKvCache.forCudaGraph(d, null, batch, maxPages)) {
      cache.k().fillUniform(1, 1f, null);
      cache.v().fillUniform(2, 1f, null);
      CudaGraph graph;
      try (PageTable t1 = PageTable.of(d, 16, first.indptr, first.indices, first.last)) {
        q.copyFrom(first.q);
        dec.plan(t1, hq, hkv, dim, 16, DType.BF16, AttentionOptions.defaults(), DecodePlanOptions.defaults(), stream);
        graph = CudaGraph.capture(stream, () -> dec.run(q, cache, out, lse, stream));
      }
      try (CudaGraph g = graph; PageTable t2 = PageTable.of(d, 16, second.indptr, second.indices, second.last)) {
        q.copyFrom(second.q);
        dec.plan(t2, hq, hkv, dim, 16, DType.BF16, AttentionOptions.defaults(), DecodePlanOptions.defaults(), stream);
        out.fillBytes(0xff);
        g.replay(stream);
        stream.synchronize();
        short[] replayed = out.toBits();
        float[] replayedLse = lse.toFloatArray();
        out.fillBytes(0xff);
        dec.run(q, cache, out, lse, stream);
        stream.synchronize();
        assertArrayEquals(out.toBits(), replayed, "graph replay with a new page table equals a direct run");
        assertArrayEquals(lse.toFloatArray(), replayedLse);
        assertTrue(dec.numWorkItems() > batch);
      }
    }
  }

  static float[][] run(DecodeProblem p, AttentionOptions opt, DecodePlanOptions po, Device device, int[] work) {
    try (DecodeProblem.OnDevice on = p.on(device);
        Tensor out = Tensor.empty(device, p.dtype, p.batch(), p.numQoHeads, p.headDim);
        Tensor lse = Tensor.empty(device, DType.F32, p.batch(), p.numQoHeads);
        Stream stream = Stream.create(device);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      dec.plan(on.pageTable, p.numQoHeads, p.numKvHeads, p.headDim, p.pageSize, p.dtype, opt, po, stream);
      if (work != null) {
        work[0] = dec.numWorkItems();
      }
      dec.run(on.q, on.cache, out, lse, stream);
      stream.synchronize();
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }
}
