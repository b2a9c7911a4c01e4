package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.attention.*;  // PageTable, PagedKvCache, PagedKv, BatchDecodeWithPagedKvCache, ...
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The README's decode example, verbatim (DecodeExample below is the README's class; keep the two in step), compiled
 * and run: on the CPU backend in CI, on the GPU in the GPU bundle.
 */
class ReadmeExampleTest {

  @Test
  void readmeDecodeExampleRuns() {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
      DecodeExample.main(new String[0]);
    } finally {
      System.setOut(old);
    }
    String printed = buf.toString(StandardCharsets.UTF_8);
    old.print("ReadmeExampleTest: " + printed);
    assertTrue(printed.matches("(?s).*out\\[0\\] = -?[0-9.E-]+, lse\\[0\\] = -?[0-9.E-]+\\s*"), printed);
  }

  static class DecodeExample {
    public static void main(String[] args) {
      Device dev = Device.best();                 // cuda:0 when present, else the CPU reference backend
      int numQoHeads = 32, numKvHeads = 8, headDim = 128, pageSize = 16, numPages = 64;
      int[] kvLens = {17, 300, 1};                // tokens per request after this step
      int[] appendIndptr = {0, 17, 317, 318};     // request b's new tokens are rows appendIndptr[b] .. appendIndptr[b+1]-1
      int batch = kvLens.length;                  // 3 requests
      int nnz = appendIndptr[batch];              // 318 new tokens (a first step: every token is new)
      Random rnd = new Random(42);
      float[] newKeys = random(rnd, nnz * numKvHeads * headDim);      // [nnz, numKvHeads, headDim], row-major
      float[] newValues = random(rnd, nnz * numKvHeads * headDim);
      float[] queries = random(rnd, batch * numQoHeads * headDim);    // one query row per request
      try (PageTable table = PageTable.contiguous(dev, pageSize, kvLens);  // request b gets consecutive pages
           PagedKvCache cache = PagedKvCache.allocate(dev, DType.BF16, KvLayout.NHD, numPages, pageSize, numKvHeads,
               headDim);
           Tensor keys = Tensor.fromFloats(dev, DType.BF16, newKeys, nnz, numKvHeads, headDim);
           Tensor values = Tensor.fromFloats(dev, DType.BF16, newValues, nnz, numKvHeads, headDim);
           Tensor q = Tensor.fromFloats(dev, DType.BF16, queries, batch, numQoHeads, headDim);
           Tensor out = Tensor.empty(dev, DType.BF16, batch, numQoHeads, headDim);
           Tensor lse = Tensor.empty(dev, DType.F32, batch, numQoHeads);  // base-2 log-sum-exp per row and head
           BatchDecodeWithPagedKvCache decode = new BatchDecodeWithPagedKvCache(dev)) {
        AppendPositions targets = PagedKv.batchIndicesAndPositions(appendIndptr, kvLens);
        PagedKv.append(keys, values, targets.batchIndices(), targets.positions(), cache, table);  // default stream
        decode.plan(table, numQoHeads, numKvHeads, headDim, pageSize, DType.BF16,
            AttentionOptions.builder().logitsSoftCap(30f).build());
        decode.run(q, cache, out, lse);           // once per layer, with that layer's q and cache
        float[] result = out.toFloatArray();      // [batch, numQoHeads, headDim]; copying out waits for the GPU
        System.out.println(dev + ": out[0] = " + result[0] + ", lse[0] = " + lse.toFloatArray()[0]);
      }
    }

    static float[] random(Random rnd, int n) {
      float[] a = new float[n];
      for (int i = 0; i < n; i++) {
        a[i] = rnd.nextFloat() * 2 - 1;
      }
      return a;
    }
  }
}
