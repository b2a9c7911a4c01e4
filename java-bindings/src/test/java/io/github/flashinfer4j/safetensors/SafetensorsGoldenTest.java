package io.github.flashinfer4j.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.GoldenCases;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The FlashInfer 0.2.5 golden files (golden/flashinfer-0.2.5) read through the main-code reader: the values below were
 * cross-checked with numpy when the files were made. The golden folder is required (missing fails, not skips).
 */
class SafetensorsGoldenTest {

  private static float[] floats(SafetensorsFile f, String name) throws IOException {
    try (Tensor t = f.load(name, Device.cpu())) {
      return t.toFloatArray();
    }
  }

  private static int[] ints(SafetensorsFile f, String name) throws IOException {
    try (Tensor t = f.load(name, Device.cpu())) {
      return t.toIntArray();
    }
  }

  @Test
  void decode() throws IOException {
    try (SafetensorsFile f = GoldenCases.open("decode")) {
      Map<String, Map<String, Object>> cases = GoldenCases.cases(f);
      assertEquals(List.of("decode_gqa_bf16_d128_p16", "decode_mqa_bf16_d128_p16",
          "decode_softcap_window_bf16_d128", "decode_mha_fp16_d64_p1_hnd"), List.copyOf(cases.keySet()));
      Map<String, Object> gqa = cases.get("decode_gqa_bf16_d128_p16");
      assertEquals("batch_decode_paged", gqa.get("op"));
      assertEquals(32L, gqa.get("num_qo_heads"));
      assertEquals(8L, gqa.get("num_kv_heads"));
      assertEquals("torch.bfloat16", gqa.get("dtype"));
      assertTrue(gqa.containsKey("logits_soft_cap"));
      assertNull(gqa.get("logits_soft_cap"));
      assertEquals(0.08838834764831843, gqa.get("sm_scale"));
      assertEquals(30.0, cases.get("decode_softcap_window_bf16_d128").get("logits_soft_cap"));
      assertTrue(f.metadata().get("source").startsWith("FlashInfer 0.2.5"));
      assertEquals(32, f.names().size());

      TensorInfo q = f.info("decode_gqa_bf16_d128_p16.q");
      assertEquals(SafetensorsDType.BF16, q.dtype());
      assertArrayEquals(new long[] {7, 32, 128}, q.shape());
      assertEquals(28672, q.numel());
      float[] qv = floats(f, q.name());
      assertEquals(0.064453125f, qv[0]);
      assertEquals(-0.90234375f, qv[1]);
      assertEquals(-0.83984375f, qv[qv.length - 1]);
      assertEquals(174.73481273651123, sequentialSum(qv), 0.0);  // same order as numpy's loop
      assertEquals(0x3d84, f.bytes(q.name()).getShort(0) & 0xffff);

      TensorInfo indptr = f.info("decode_gqa_bf16_d128_p16.kv_indptr");
      assertEquals(SafetensorsDType.I32, indptr.dtype());
      assertArrayEquals(new int[] {0, 1, 3, 22, 54, 58, 121, 124}, ints(f, indptr.name()));
      assertArrayEquals(new int[] {1, 1, 12, 15, 16, 8, 1}, ints(f, "decode_gqa_bf16_d128_p16.kv_last_page_len"));
      assertArrayEquals(new int[] {15, 94, 101, 58, 71, 106, 0, 87, 18, 90},
          Arrays.copyOf(ints(f, "decode_gqa_bf16_d128_p16.kv_indices"), 10));
      assertArrayEquals(new long[] {127, 16, 8, 128}, f.info("decode_gqa_bf16_d128_p16.k_cache").shape());

      float[] lv = floats(f, "decode_gqa_bf16_d128_p16.lse");
      assertEquals(SafetensorsDType.F32, f.info("decode_gqa_bf16_d128_p16.lse").dtype());
      assertEquals(0x3eea9078, Float.floatToRawIntBits(lv[0]));
      assertEquals(0x40bb220e, Float.floatToRawIntBits(lv[lv.length - 1]));

      float[] hv = floats(f, "decode_mha_fp16_d64_p1_hnd.q");
      assertEquals(SafetensorsDType.F16, f.info("decode_mha_fp16_d64_p1_hnd.q").dtype());
      assertEquals(0xbf33e000, Float.floatToRawIntBits(hv[0]));
      assertEquals(0x3fb06000, Float.floatToRawIntBits(hv[hv.length - 1]));
      assertEquals(-7.656803131103516, sequentialSum(hv), 0.0);
      // every F16 element of the caches (including 15 + 13 subnormals) matches numpy's float32 bits
      float[] k = floats(f, "decode_mha_fp16_d64_p1_hnd.k_cache");
      float[] v = floats(f, "decode_mha_fp16_d64_p1_hnd.v_cache");
      assertEquals(529016715919360L, bitSum(k, false));
      assertEquals(-8184667665344626688L, bitSum(k, true));
      assertEquals(527932403269632L, bitSum(v, false));
      assertEquals(-8385450767041388544L, bitSum(v, true));
    }
  }

  @Test
  void prefill() throws IOException {
    try (SafetensorsFile f = GoldenCases.open("prefill")) {
      Map<String, Map<String, Object>> cases = GoldenCases.cases(f);
      assertEquals(List.of("prefill_paged_causal_bf16_d128", "prefill_paged_noncausal_bf16_d128_hnd",
          "prefill_paged_treemask_bf16_d128", "prefill_ragged_causal_bf16_d128"), List.copyOf(cases.keySet()));
      TensorInfo mask = f.info("prefill_paged_treemask_bf16_d128.custom_mask");
      assertEquals(SafetensorsDType.U8, mask.dtype());
      assertArrayEquals(new long[] {1470}, mask.shape());
      ByteBuffer m = f.bytes(mask.name());
      long ones = 0;
      long weighted = 0;
      for (int i = 0; i < m.remaining(); i++) {
        ones += m.get(i);
        weighted += (long) m.get(i) * i;
      }
      assertEquals(1399, ones);
      assertEquals(1027011, weighted);
      assertArrayEquals(new int[] {0, 1, 38, 102, 107}, ints(f, "prefill_paged_causal_bf16_d128.qo_indptr"));
      assertArrayEquals(new long[] {107, 32, 128}, f.info("prefill_paged_causal_bf16_d128.o").shape());
      assertArrayEquals(new long[] {182, 16, 128}, f.info("prefill_ragged_causal_bf16_d128.k").shape());
    }
  }

  @Test
  void merge() throws IOException {
    try (SafetensorsFile f = GoldenCases.open("merge")) {
      assertEquals(Map.of("merge_state_bf16", Map.of("op", "merge_state")), GoldenCases.cases(f));
      float[] s = floats(f, "merge_state_bf16.s");
      assertEquals(72, s.length);
      assertEquals(0x40fd7fda, Float.floatToRawIntBits(s[0]));
      assertEquals(0x3e316aa6, Float.floatToRawIntBits(s[71]));
      float[] vv = floats(f, "merge_state_bf16.v");
      assertArrayEquals(new long[] {9, 8, 128}, f.info("merge_state_bf16.v").shape());
      assertEquals(-1.4375f, vv[0]);
      assertEquals(-0.70703125f, vv[vv.length - 1]);
      assertEquals(6, f.names().size());
    }
  }

  /** Every golden tensor, zero-copy on the CPU and copied to each device, has exactly the bytes of bytes(). */
  @Test
  void loadsMatchTheRawBytesOnEveryDevice() throws IOException {
    for (String kind : List.of("decode", "prefill", "merge")) {
      try (SafetensorsFile f = GoldenCases.open(kind)) {
        for (TensorInfo t : f.tensors()) {
          ByteBuffer raw = f.bytes(t.name());
          for (Device d : io.github.flashinfer4j.testing.Gpu.devices()) {
            try (Tensor x = f.load(t.name(), d)) {
              ByteBuffer got = ByteBuffer.allocate((int) x.byteSize());
              x.copyTo(got);
              assertEquals(raw.duplicate(), got.flip(), t + " on " + d);
            }
          }
        }
      }
    }
  }

  private static double sequentialSum(float[] v) {
    double s = 0;
    for (float x : v) {
      s += x;
    }
    return s;
  }

  /** Sum of the float32 bit patterns (optionally weighted by 1-based index), wrapping like numpy int64. */
  private static long bitSum(float[] v, boolean weighted) {
    long s = 0;
    for (int i = 0; i < v.length; i++) {
      long bits = Float.floatToRawIntBits(v[i]) & 0xffffffffL;
      s += weighted ? bits * (i + 1) : bits;
    }
    return s;
  }
}
