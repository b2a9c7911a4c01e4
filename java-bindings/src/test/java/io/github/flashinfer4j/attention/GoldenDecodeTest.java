package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.safetensors.SafetensorsFile;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.GoldenCases;
import io.github.flashinfer4j.testing.Gpu;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * FlashInfer 0.2.5's own decode outputs (golden/flashinfer-0.2.5) reproduced through the Java API, on the CPU backend
 * and on CUDA when present. The golden folder is required: a missing folder fails instead of skipping.
 */
class GoldenDecodeTest {
  static List<Arguments> cases() throws IOException {
    List<Arguments> out = new ArrayList<>();
    try (SafetensorsFile f = GoldenCases.open("decode")) {
      for (String name : GoldenCases.cases(f).keySet()) {
        for (Device d : Gpu.devices()) {
          out.add(Arguments.of(name, d));
        }
      }
    }
    assertEquals(4 * Gpu.devices().size(), out.size(), "all four golden decode cases");
    return out;
  }

  @ParameterizedTest(name = "{0} on {1}")
  @MethodSource("cases")
  void matchesFlashInfer(String name, Device device) throws IOException {
    try (SafetensorsFile f = GoldenCases.open("decode")) {
      matches(f, name, device);
    }
  }

  private static void matches(SafetensorsFile f, String name, Device device) throws IOException {
    Map<String, Object> c = GoldenCases.cases(f).get(name);
    assertEquals("batch_decode_paged", c.get("op"));
    DType dtype = "torch.bfloat16".equals(c.get("dtype")) ? DType.BF16 : DType.F16;
    KvLayout layout = KvLayout.valueOf((String) c.get("layout"));
    int hq = ((Number) c.get("num_qo_heads")).intValue();
    int hkv = ((Number) c.get("num_kv_heads")).intValue();
    int dim = ((Number) c.get("head_dim")).intValue();
    int pageSize = ((Number) c.get("page_size")).intValue();
    Object cap = c.get("logits_soft_cap");
    int window = ((Number) c.get("window_left")).intValue();
    float scale = ((Number) c.get("sm_scale")).floatValue();
    AttentionOptions.Builder ob = AttentionOptions.builder().smScale(scale).windowLeft(window);
    if (cap != null) {
      ob.logitsSoftCap(((Number) cap).floatValue());
    }
    AttentionOptions opts = ob.build();

    int batch = (int) f.info(name + ".q").shape()[0];
    try (Tensor qT = GoldenCases.load(f, name, "q", device, dtype);
        Tensor kT = GoldenCases.load(f, name, "k_cache", device, dtype);
        Tensor vT = GoldenCases.load(f, name, "v_cache", device, dtype);
        PagedKvCache cache = PagedKvCache.of(kT, vT, layout);
        PageTable table = PageTable.of(device, pageSize, GoldenCases.ints(f, name, "kv_indptr"),
            GoldenCases.ints(f, name, "kv_indices"), GoldenCases.ints(f, name, "kv_last_page_len"));
        Tensor out = Tensor.empty(device, dtype, batch, hq, dim);
        Tensor lse = Tensor.empty(device, DType.F32, batch, hq);
        BatchDecodeWithPagedKvCache dec = new BatchDecodeWithPagedKvCache(device)) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      dec.plan(table, hq, hkv, dim, pageSize, dtype, opts);
      dec.run(qT, cache, out, lse);
      device.synchronize();
      float[] expectedO = GoldenCases.floats(f, name, "o");
      float[] expectedLse = GoldenCases.floats(f, name, "lse");
      Assertions2.assertClose(expectedO, out.toFloatArray(), Assertions2.tolerance(dtype), name + " o on " + device);
      Assertions2.assertClose(expectedLse, lse.toFloatArray(), 1e-3, name + " lse on " + device);
      assertTrue(table.totalTokens() > 0);
    }
  }
}
