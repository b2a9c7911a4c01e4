package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Gpu;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A decode wrapper keeps the native descriptor of its last run and rewrites only the operands that changed: every
 * change of one operand between runs of one plan (another output, lse on and off, a strided query view, another
 * cache, another plan's page table) must give what a fresh wrapper gives for the same call.
 */
class DescriptorReuseTest {
  private static final int BATCH = 3;
  private static final int QO_HEADS = 4;
  private static final int KV_HEADS = 2;
  private static final int HEAD_DIM = 64;
  private static final int PAGE = 4;
  private static final DType DTYPE = DType.BF16;

  static List<Device> devices() {
    return Gpu.devices();
  }

  @ParameterizedTest
  @MethodSource("devices")
  void everyChangedOperandReachesTheKernel(Device device) {
    try (PagedKvCache cacheA = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, 12, PAGE, KV_HEADS, HEAD_DIM);
        PagedKvCache cacheB = PagedKvCache.allocate(device, DTYPE, KvLayout.HND, 12, PAGE, KV_HEADS, HEAD_DIM);
        PageTable tableA = PageTable.of(device, PAGE, new int[] {0, 2, 3, 5}, new int[] {0, 1, 2, 3, 4},
            new int[] {3, 4, 1});
        PageTable tableB = PageTable.of(device, PAGE, new int[] {0, 1, 4, 4}, new int[] {7, 8, 9, 10},
            new int[] {2, 4, 0});
        Tensor q = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        Tensor wide = Tensor.empty(device, DTYPE, BATCH, 2 * QO_HEADS, HEAD_DIM);
        Tensor out1 = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        Tensor out2 = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
        Tensor lse = Tensor.empty(device, DType.F32, BATCH, QO_HEADS);
        BatchDecodeWithPagedKvCache reused = new BatchDecodeWithPagedKvCache(device)) {
      cacheA.k().fillUniform(1, 1f, null);
      cacheA.v().fillUniform(2, 1f, null);
      cacheB.k().fillUniform(3, 1f, null);
      cacheB.v().fillUniform(4, 1f, null);
      q.fillUniform(5, 1f, null);
      wide.fillUniform(6, 1f, null);
      Tensor strided = wide.narrow(1, QO_HEADS, QO_HEADS);  // row stride 2 x QO_HEADS x HEAD_DIM
      DecodePlan planA = reused.plan(tableA, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      DecodePlan planB = reused.plan(tableB, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
      Object[][] calls = {
        {planA, q, cacheA, out1, lse},
        {planA, q, cacheA, out2, null},      // another output, lse off
        {planA, strided, cacheA, out2, lse}, // a strided query, lse on again
        {planA, strided, cacheB, out1, lse}, // another cache (HND)
        {planB, q, cacheB, out1, null},      // another plan's page table
        {planA, q, cacheA, out1, lse},       // back to the first call
      };
      for (Object[] c : calls) {
        DecodePlan plan = (DecodePlan) c[0];
        Tensor query = (Tensor) c[1];
        PagedKvCache cache = (PagedKvCache) c[2];
        Tensor out = (Tensor) c[3];
        Tensor l = (Tensor) c[4];
        out.fillBytes(0xff);
        if (l != null) {
          l.fillBytes(0xff);
        }
        reused.run(plan, query, cache, out, l);
        device.synchronize();
        short[] gotOut = out.toBits();
        float[] gotLse = l == null ? null : l.toFloatArray();
        try (BatchDecodeWithPagedKvCache fresh = new BatchDecodeWithPagedKvCache(device);
            Tensor freshOut = Tensor.empty(device, DTYPE, BATCH, QO_HEADS, HEAD_DIM);
            Tensor freshLse = Tensor.empty(device, DType.F32, BATCH, QO_HEADS)) {
          PageTable table = plan == planA ? tableA : tableB;
          DecodePlan own = fresh.plan(table, QO_HEADS, KV_HEADS, HEAD_DIM, PAGE, DTYPE);
          fresh.run(own, query, cache, freshOut, freshLse);
          device.synchronize();
          assertArrayEquals(freshOut.toBits(), gotOut, "out of " + describe(c));
          if (gotLse != null) {
            assertArrayEquals(freshLse.toFloatArray(), gotLse, "lse of " + describe(c));
          }
        }
      }
    }
  }

  private static String describe(Object[] call) {
    return "call(" + (call[1] instanceof Tensor t && !t.isContiguous() ? "strided q" : "q") + ", "
        + call[2] + ", lse " + (call[4] == null ? "off" : "on") + ")";
  }
}
