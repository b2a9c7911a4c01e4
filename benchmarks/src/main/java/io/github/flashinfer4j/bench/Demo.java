package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AppendPositions;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKv;
import io.github.flashinfer4j.attention.PagedKvCache;
import java.util.Random;

/**
 * The README's demo: a small generated batch goes through append and batch decode on the GPU when there is one
 * (else on the CPU reference backend), and is checked against the CPU reference, request by request.
 */
final class Demo {
  private static final int QO_HEADS = 32;
  private static final int KV_HEADS = 8;
  private static final int HEAD_DIM = 128;
  private static final int PAGE_SIZE = 16;
  private static final DType DTYPE = DType.BF16;

  private Demo() {}

  static int run(String[] args) {
    boolean forceCpu = args.length > 0 && args[0].equals("--cpu");
    Device device = forceCpu ? Device.cpu() : Device.best();
    System.out.println("flashinfer4j demo: batch decode over a paged KV cache");
    System.out.println("device: " + device + " (" + device.name() + ")"
        + (device.isCpu() ? " -- " + (forceCpu ? "forced" : Device.noCudaDeviceReason()) : ""));
    System.out.printf("heads %d/%d, head_dim %d, page size %d, %s, NHD%n", QO_HEADS, KV_HEADS, HEAD_DIM, PAGE_SIZE,
        DTYPE);

    Random rnd = new Random(42);
    int[] kvLens = {1, 16, 17, 0, 300, 1023, 64, 2048};
    int batch = kvLens.length;
    int total = 0;
    for (int len : kvLens) {
      total += len;
    }
    float[] keys = gaussian(rnd, total * KV_HEADS * HEAD_DIM);
    float[] values = gaussian(rnd, total * KV_HEADS * HEAD_DIM);
    float[] q = gaussian(rnd, batch * QO_HEADS * HEAD_DIM);
    int[] appendIndptr = new int[batch + 1];
    for (int b = 0; b < batch; b++) {
      appendIndptr[b + 1] = appendIndptr[b] + kvLens[b];
    }

    float[][] got = decode(device, kvLens, appendIndptr, keys, values, q);
    float[][] ref = device.isCpu() ? got : decode(Device.cpu(), kvLens, appendIndptr, keys, values, q);

    System.out.println();
    System.out.printf("%-8s %8s %14s %14s  %s%n", "request", "kv_len", "max |out-ref|", "max |lse-ref|", "check");
    boolean allOk = true;
    int per = QO_HEADS * HEAD_DIM;
    for (int b = 0; b < batch; b++) {
      double errO = 0;
      double errL = 0;
      boolean nan = false;
      for (int i = b * per; i < (b + 1) * per; i++) {
        nan |= Float.isNaN(got[0][i]);
        errO = Math.max(errO, Math.abs(got[0][i] - ref[0][i]));
      }
      for (int h = b * QO_HEADS; h < (b + 1) * QO_HEADS; h++) {
        nan |= Float.isNaN(got[1][h]);
        errL = kvLens[b] == 0 ? (got[1][h] == Float.NEGATIVE_INFINITY ? 0 : Double.POSITIVE_INFINITY)
            : Math.max(errL, Math.abs(got[1][h] - ref[1][h]));
      }
      boolean ok = !nan && errO <= 1e-2 && errL <= 1e-3;
      allOk &= ok;
      System.out.printf("%-8d %8d %14.2e %14.2e  %s%n", b, kvLens[b], errO, errL, ok ? "ok" : "MISMATCH");
    }
    System.out.println();
    System.out.println(allOk ? "all requests match the CPU reference" : "MISMATCH against the CPU reference");
    return allOk ? 0 : 1;
  }

  /** Appends the batch into a fresh cache on the device and decodes it; returns {out, lse} as floats. */
  private static float[][] decode(Device device, int[] kvLens, int[] appendIndptr, float[] keys, float[] values,
      float[] q) {
    int batch = kvLens.length;
    try (PageTable table = PageTable.contiguous(device, PAGE_SIZE, kvLens);
        PagedKvCache cache = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD,
            Math.max(1, table.maxPageId() + 1), PAGE_SIZE, KV_HEADS, HEAD_DIM);
        Tensor k = Tensor.fromFloats(device, DTYPE, keys, appendIndptr[batch], KV_HEADS, HEAD_DIM);
        Tensor v = Tensor.fromFloats(device, DTYPE, values, appendIndptr[batch], KV_HEADS, HEAD_DIM);
        Tensor qT = Tensor.fromFloats(device, DTYPE, q, batch, QO_HEADS, HEAD_DIM);
        Tensor out = Tensor.empty(device, DTYPE, batch, QO_HEADS, HEAD_DIM);
        Tensor lse = Tensor.empty(device, DType.F32, batch, QO_HEADS);
        BatchDecodeWithPagedKvCache decoder = new BatchDecodeWithPagedKvCache(device)) {
      AppendPositions targets = PagedKv.batchIndicesAndPositions(appendIndptr, kvLens);
      PagedKv.append(k, v, targets, cache, table, null);
      out.fillBytes(0xff);  // poison: anything the kernel fails to write shows as NaN
      decoder.plan(table, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE_SIZE, DTYPE, AttentionOptions.defaults());
      long t0 = System.nanoTime();
      decoder.run(qT, cache, out, lse);
      device.synchronize();
      long t1 = System.nanoTime();
      System.out.printf("%s: append %d tokens + decode %d requests; decode took %.3f ms (first call, untuned)%n",
          device, appendIndptr[batch], batch, (t1 - t0) / 1e6);
      return new float[][] {out.toFloatArray(), lse.toFloatArray()};
    }
  }

  private static float[] gaussian(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }
}
