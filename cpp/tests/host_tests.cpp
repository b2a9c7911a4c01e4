// Host tests of the C API on the CPU backend (no GPU needed): conversions, validation messages, and small
// decode/append cases with hand-computed answers. Exit code = number of failed checks.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "flashinfer4j/flashinfer4j.h"
#include "core/half.h"
#include "attention/prefill_plan.h"
#include "fi4j/attention/prefill_params.h"

static bool contains(const char* s, const char* part) { return std::strstr(s, part) != nullptr; }

static void test_conversions() {
  using namespace fi4j;
  const float values[] = {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.103515625e-05f, 5.960464477539063e-08f, 0.1f, 3.14159f};
  for (float v : values) {
    CHECK(std::fabs(f16_to_float(float_to_f16(v)) - v) <= std::fabs(v) * 1e-3f);
    CHECK(std::fabs(bf16_to_float(float_to_bf16(v)) - v) <= std::fabs(v) * 8e-3f);
  }
  CHECK(float_to_f16(1.0f) == 0x3c00);
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_f16(1e6f) == 0x7c00);                   // overflow to inf
  CHECK(float_to_f16(2.9802322e-08f) == 0x0000);         // half of the smallest subnormal rounds to even (0)
  CHECK(std::isnan(f16_to_float(float_to_f16(NAN))));
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  CHECK(float_to_bf16(1.00390625f) == 0x3f80);           // tie rounds to even
  CHECK(float_to_bf16(1.01171875f) == 0x3f82);           // tie rounds up to even
}

static void test_devices() {
  int count = -1;
  CHECK(fi4j_device_count(&count) == FI4J_OK);
  CHECK(count >= 0);
  if (count == 0) {
    CHECK(contains(fi4j_no_device_reason(), "no CUDA device"));
    void* p = nullptr;
    CHECK(fi4j_malloc(0, 16, &p) == FI4J_ERR_NO_DEVICE);
  }
  CHECK(fi4j_device_count(nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "count"));
}

static fi4j_decode_args base_args(std::vector<uint16_t>& q, std::vector<uint16_t>& k, std::vector<uint16_t>& v,
                                  std::vector<uint16_t>& o, std::vector<float>& lse, std::vector<int32_t>& indptr,
                                  std::vector<int32_t>& indices, std::vector<int32_t>& last) {
  fi4j_decode_args a;
  std::memset(&a, 0, sizeof(a));
  a.num_qo_heads = 2;
  a.dtype = FI4J_F16;
  a.q = q.data();
  a.q_stride_n = 2 * 2;
  a.q_stride_h = 2;
  a.o = o.data();
  a.o_stride_n = 4;
  a.o_stride_h = 2;
  a.lse = lse.data();
  a.kv.k = k.data();
  a.kv.v = v.data();
  a.kv.page_size = 2;
  a.kv.num_pages = 2;
  a.kv.num_kv_heads = 1;
  a.kv.head_dim = 2;
  a.kv.dtype = FI4J_F16;
  a.kv.token_stride = 2;
  a.kv.head_stride = 2;
  a.kv.page_stride = 4;
  a.kv.kv_indptr = indptr.data();
  a.kv.kv_indices = indices.data();
  a.kv.kv_last_page_len = last.data();
  a.kv.batch_size = 1;
  a.kv.num_indices = static_cast<int32_t>(indices.size());
  a.options.window_left = -1;
  return a;
}

static void test_decode_cpu() {
  using namespace fi4j;
  // one request, one KV head shared by two query heads (GQA 2), head_dim 2, kv_len 1 (page 1, slot 0)
  std::vector<uint16_t> q = {float_to_f16(1.f), float_to_f16(0.f), float_to_f16(0.f), float_to_f16(2.f)};
  std::vector<uint16_t> k(8, float_to_f16(0.f)), v(8, float_to_f16(0.f)), o(4, 0xffff);
  k[4] = float_to_f16(0.5f);
  k[5] = float_to_f16(0.25f);
  v[4] = float_to_f16(3.f);
  v[5] = float_to_f16(-1.f);
  std::vector<float> lse(2, 0.f);
  std::vector<int32_t> indptr = {0, 1}, indices = {1}, last = {1};
  fi4j_decode_args a = base_args(q, k, v, o, lse, indptr, indices, last);
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_OK);
  CHECK(f16_to_float(o[0]) == 3.f && f16_to_float(o[1]) == -1.f);
  CHECK(f16_to_float(o[2]) == 3.f && f16_to_float(o[3]) == -1.f);
  const float scale = 1.f / std::sqrt(2.f);
  CHECK(std::fabs(lse[0] - 0.5f * scale / std::log(2.f)) < 1e-5f);
  CHECK(std::fabs(lse[1] - 0.5f * scale / std::log(2.f)) < 1e-5f);

  // empty request: output 0, lse -inf
  std::vector<int32_t> indptr0 = {0, 0}, last0 = {0};
  a = base_args(q, k, v, o, lse, indptr0, indices, last0);
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_OK);
  CHECK(f16_to_float(o[0]) == 0.f && std::isinf(lse[0]) && lse[0] < 0);

  // validation messages name the argument, the expectation and the value
  a = base_args(q, k, v, o, lse, indptr, indices, last);
  a.num_qo_heads = 3;
  a.kv.num_kv_heads = 2;
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "num_qo_heads") && contains(fi4j_last_error(), "got 3"));
  std::vector<int32_t> bad_indices = {7};
  a = base_args(q, k, v, o, lse, indptr, bad_indices, last);
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "kv_indices[0]") && contains(fi4j_last_error(), "got 7"));
  std::vector<int32_t> bad_last = {3};
  a = base_args(q, k, v, o, lse, indptr, indices, bad_last);
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "kv_last_page_len[0]"));
  a = base_args(q, k, v, o, lse, indptr, indices, last);
  a.dtype = FI4J_F32;
  a.kv.dtype = FI4J_F32;
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_UNSUPPORTED);
  CHECK(contains(fi4j_last_error(), "F32"));
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, nullptr, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
}

static void test_append_cpu() {
  using namespace fi4j;
  // 2 requests, page size 2, 3 pages; request 0 owns pages {2, 0} (3 tokens), request 1 owns page {1} (1 token)
  std::vector<uint16_t> k(3 * 2 * 1 * 2, 0), v(k.size(), 0);
  std::vector<int32_t> indptr = {0, 2, 3}, indices = {2, 0, 1}, last = {1, 1};
  std::vector<uint16_t> keys = {1, 2, 3, 4}, values = {5, 6, 7, 8};
  std::vector<int32_t> bi = {0, 1}, pos = {2, 0};
  fi4j_append_args a;
  std::memset(&a, 0, sizeof(a));
  a.nnz = 2;
  a.keys = keys.data();
  a.keys_stride_n = 2;
  a.keys_stride_h = 2;
  a.values = values.data();
  a.values_stride_n = 2;
  a.values_stride_h = 2;
  a.batch_indices = bi.data();
  a.positions = pos.data();
  a.kv.k = k.data();
  a.kv.v = v.data();
  a.kv.page_size = 2;
  a.kv.num_pages = 3;
  a.kv.num_kv_heads = 1;
  a.kv.head_dim = 2;
  a.kv.dtype = FI4J_BF16;
  a.kv.page_stride = 4;
  a.kv.token_stride = 2;
  a.kv.head_stride = 2;
  a.kv.kv_indptr = indptr.data();
  a.kv.kv_indices = indices.data();
  a.kv.kv_last_page_len = last.data();
  a.kv.batch_size = 2;
  a.kv.num_indices = 3;
  CHECK(fi4j_append_paged_kv(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_OK);
  // token 0 -> request 0 position 2 -> page indices[1] = 0, slot 0
  CHECK(k[0] == 1 && k[1] == 2 && v[0] == 5 && v[1] == 6);
  // token 1 -> request 1 position 0 -> page 1, slot 0
  CHECK(k[4] == 3 && k[5] == 4 && v[4] == 7 && v[5] == 8);
  pos[0] = 3;  // beyond request 0's 3 tokens
  CHECK(fi4j_append_paged_kv(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "positions[0]") && contains(fi4j_last_error(), "got 3"));
}

static int64_t live_allocations(int device) {
  int64_t n = -1;
  CHECK(fi4j_memory_stats(device, &n, nullptr, nullptr) == FI4J_OK);
  return n;
}

// Memory functions: argument checks and the allocation registry (foreign pointers, double frees, wrong devices,
// copies past an allocation's end).
static void test_memory() {
  const int cpu = FI4J_DEVICE_CPU;
  void* p = reinterpret_cast<void*>(0x1);
  CHECK(fi4j_malloc(cpu, -1, &p) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "bytes must be >= 0, got -1"));
  CHECK(p == nullptr);  // *out is cleared on failure
  CHECK(fi4j_malloc(cpu, INT64_MAX, &p) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "bytes must be <= 2^62"));
  CHECK(fi4j_malloc(cpu, (int64_t{1} << 62), &p) == FI4J_ERR_OUT_OF_MEMORY);  // in range, but no machine has it
  CHECK(fi4j_malloc(cpu, 16, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "out must be non-null"));

  const int64_t base_count = live_allocations(cpu);
  int64_t bytes0 = -1;
  CHECK(fi4j_memory_stats(cpu, nullptr, &bytes0, nullptr) == FI4J_OK);
  void* a = nullptr;
  CHECK(fi4j_malloc(cpu, 64, &a) == FI4J_OK && a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0);
  int64_t count = 0, bytes = 0, streams = -1;
  CHECK(fi4j_memory_stats(cpu, &count, &bytes, &streams) == FI4J_OK);
  CHECK(count == base_count + 1 && bytes == bytes0 + 64 && streams == 0);

  // copies and memsets: inside the allocation fine, past its end refused, nothing written
  char host[128];
  std::memset(host, 7, sizeof(host));
  CHECK(fi4j_memcpy(cpu, a, cpu, host, 64) == FI4J_OK);
  CHECK(fi4j_memcpy(cpu, static_cast<char*>(a) + 32, cpu, host, 32) == FI4J_OK);
  CHECK(fi4j_memcpy(cpu, a, cpu, host, 65) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "bytes must be <= 64") && contains(fi4j_last_error(), "got 65"));
  CHECK(fi4j_memcpy(cpu, static_cast<char*>(a) + 40, cpu, host, 32) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "<= 24"));
  CHECK(fi4j_memcpy(cpu, host, cpu, static_cast<char*>(a) + 63, 2) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "allocation src points into"));
  CHECK(fi4j_memcpy_async(cpu, a, cpu, host, 100, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_memset(cpu, a, 0, 65) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_memset(cpu, static_cast<char*>(a) + 1, 0, 64) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_memset(cpu, a, 0, 64) == FI4J_OK);
  CHECK(fi4j_memset(cpu, a, 0, -1) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_memcpy(cpu, a, cpu, host, -5) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_memcpy(cpu, nullptr, cpu, host, 5) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "dst must be non-null"));
  // a host allocation named as device memory (and the reverse) is refused before anything touches it
  CHECK(fi4j_memset(0, a, 0, 8) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "device must be -1 (CPU) (the device ptr was allocated on), got 0"));
  CHECK(fi4j_memcpy(0, a, cpu, host, 8) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "dst_device must be -1 (CPU)"));
  CHECK(fi4j_memcpy(cpu, host, 3, a, 8) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "src_device must be -1 (CPU)"));
  // memory the library did not allocate is the caller's word
  char other[16];
  CHECK(fi4j_memcpy(cpu, other, cpu, host, 16) == FI4J_OK);

  // frees: foreign, interior, wrong-device and double frees are errors, not heap corruption
  CHECK(fi4j_free(cpu, other) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "ptr must be a live allocation of fi4j_malloc"));
  CHECK(fi4j_free(cpu, static_cast<char*>(a) + 16) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_free(0, a) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "device must be -1 (CPU) (the device ptr was allocated on), got 0"));
  CHECK(live_allocations(cpu) == base_count + 1);
  CHECK(fi4j_free(cpu, a) == FI4J_OK);
  CHECK(live_allocations(cpu) == base_count);
  CHECK(fi4j_free(cpu, a) == FI4J_ERR_INVALID_ARGUMENT);  // double free
  CHECK(fi4j_free(cpu, nullptr) == FI4J_OK);

  // a 0-byte allocation holds no byte
  void* z = nullptr;
  CHECK(fi4j_malloc(cpu, 0, &z) == FI4J_OK && z != nullptr);
  CHECK(fi4j_memset(cpu, z, 0, 0) == FI4J_OK);
  CHECK(fi4j_memset(cpu, z, 0, 1) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_free(cpu, z) == FI4J_OK);

  CHECK(fi4j_memory_stats(cpu, nullptr, nullptr, nullptr) == FI4J_OK);
  CHECK(live_allocations(12345) == 0);

  // many threads allocating and freeing at once leave the registry where it was
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 2000; ++i) {
        void* q = nullptr;
        if (fi4j_malloc(FI4J_DEVICE_CPU, 1 + i % 300, &q) != FI4J_OK) continue;
        fi4j_memset(FI4J_DEVICE_CPU, q, i, 1 + i % 300);
        fi4j_free(FI4J_DEVICE_CPU, q);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(live_allocations(cpu) == base_count);
}

// Streams: null outs, destroying what was never created (or on the wrong device), the CPU stand-in.
static void test_streams() {
  CHECK(fi4j_stream_create(FI4J_DEVICE_CPU, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  void* s = reinterpret_cast<void*>(0x1);
  CHECK(fi4j_stream_create(FI4J_DEVICE_CPU, &s) == FI4J_OK && s == nullptr);
  CHECK(fi4j_stream_synchronize(FI4J_DEVICE_CPU, nullptr) == FI4J_OK);
  CHECK(fi4j_stream_destroy(FI4J_DEVICE_CPU, nullptr) == FI4J_OK);
  int bogus = 0;
  CHECK(fi4j_stream_destroy(0, &bogus) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "stream must be a live stream of fi4j_stream_create"));
  int count = 0;
  fi4j_device_count(&count);
  if (count > 0) {
    void* cs = nullptr;
    CHECK(fi4j_stream_create(0, &cs) == FI4J_OK && cs != nullptr);
    int64_t streams = 0;
    CHECK(fi4j_memory_stats(0, nullptr, nullptr, &streams) == FI4J_OK && streams == 1);
    if (count > 1) {
      CHECK(fi4j_stream_synchronize(1, cs) == FI4J_ERR_INVALID_ARGUMENT);
      CHECK(fi4j_stream_destroy(1, cs) == FI4J_ERR_INVALID_ARGUMENT);
    }
    CHECK(fi4j_stream_destroy(0, cs) == FI4J_OK);
    CHECK(fi4j_stream_destroy(0, cs) == FI4J_ERR_INVALID_ARGUMENT);  // double destroy
    void* d = nullptr;
    CHECK(fi4j_malloc(0, 64, &d) == FI4J_OK);
    char host[64] = {0};
    CHECK(fi4j_memcpy(0, d, FI4J_DEVICE_CPU, host, 65) == FI4J_ERR_INVALID_ARGUMENT);
    CHECK(fi4j_memset(FI4J_DEVICE_CPU, d, 0, 8) == FI4J_ERR_INVALID_ARGUMENT);  // never a host memset of device memory
    CHECK(fi4j_free(FI4J_DEVICE_CPU, d) == FI4J_ERR_INVALID_ARGUMENT);        // never std::free of device memory
    CHECK(fi4j_free(0, d) == FI4J_OK);
  }
}

// Split-KV planning of prefill: when, how the chunks cover each tile's visible keys, and the workspace image.
static void test_prefill_split_plan() {
  using namespace fi4j;
  // One request of 16 query tokens (x group 4 = 64 rows, one tile) against 32768 keys on 132 SMs: split.
  std::vector<int32_t> qo = {0, 16}, kv = {32768};
  PrefillSplitInput in;
  in.batch_size = 1;
  in.qo_indptr = qo.data();
  in.kv_len = kv.data();
  in.group = 4;
  in.num_kv_heads = 8;
  in.head_dim = 128;
  in.rows_tile = 64;
  in.num_sms = 132;
  in.blocks_per_sm = 2;
  in.workspace_bytes = int64_t{128} << 20;
  PrefillSplitPlan plan = plan_prefill_split(in);
  CHECK(plan.num_work() > 16 && plan.num_work() <= 64);
  CHECK(plan.num_groups() == 1);
  CHECK(plan.kv_lo.front() == 0 && plan.kv_hi.back() == 32768);
  for (int w = 1; w < plan.num_work(); ++w) CHECK(plan.kv_lo[w] == plan.kv_hi[w - 1] && plan.kv_hi[w] > plan.kv_lo[w]);
  CHECK(plan.bytes == prefill_split_layout(plan.num_work(), 8, 64, 128).total);
  // The image: group count, then the arrays at their offsets.
  const std::vector<unsigned char> image = prefill_split_image(plan, 8, 64, 128);
  const PrefillSplitLayout l = prefill_split_layout(plan.num_work(), 8, 64, 128);
  int32_t groups = 0, last_hi = 0, end = 0;
  std::memcpy(&groups, image.data(), 4);
  std::memcpy(&last_hi, image.data() + l.work_kv_hi + 4 * (plan.num_work() - 1), 4);
  std::memcpy(&end, image.data() + l.group_indptr + 4, 4);
  CHECK(groups == 1 && last_hi == 32768 && end == plan.num_work());
  // Too little workspace: no split (the run is then unsplit).
  in.workspace_bytes = 4096;
  CHECK(plan_prefill_split(in).num_work() == 0);
  in.workspace_bytes = int64_t{128} << 20;
  // Enough tiles to fill the GPU: no split.
  std::vector<int32_t> qo_big = {0, 8192}, kv_big = {8192};
  in.qo_indptr = qo_big.data();
  in.kv_len = kv_big.data();
  CHECK(plan_prefill_split(in).num_work() == 0);
  // Causal with two requests: each tile's chunks stay within its causal end; an empty request adds nothing; a
  // request without keys keeps one empty item per tile.
  std::vector<int32_t> qo2 = {0, 100, 100, 103}, kv2 = {5000, 0, 3};
  in.batch_size = 3;
  in.qo_indptr = qo2.data();
  in.kv_len = kv2.data();
  in.causal = true;
  plan = plan_prefill_split(in);
  CHECK(plan.num_work() > 0);
  for (int g = 0; g < plan.num_groups(); ++g) {
    const int w0 = plan.group_indptr[g], w1 = plan.group_indptr[g + 1];
    CHECK(w1 > w0);
    const int b = plan.request[w0];
    const int rows_end = std::min((plan.tile[w0] + 1) * 64, (qo2[b + 1] - qo2[b]) * 4);
    const int causal_end = (rows_end - 1) / 4 + kv2[b] - (qo2[b + 1] - qo2[b]) + 1;
    for (int w = w0; w < w1; ++w) {
      CHECK(plan.request[w] == b && plan.tile[w] == plan.tile[w0]);
      CHECK(plan.kv_hi[w] <= std::max(0, std::min(kv2[b], causal_end)));
    }
    CHECK(b != 1);  // the empty request has no tiles
  }
  // A sliding window starts each tile's chunks at its window.
  in.causal = true;
  in.window_left = 100;
  in.batch_size = 1;
  in.qo_indptr = qo.data();
  in.kv_len = kv.data();
  plan = plan_prefill_split(in);
  CHECK(plan.num_work() == 0 || plan.kv_lo.front() >= 32768 - 16 - 100);
}

int main() {
  test_conversions();
  test_devices();
  test_decode_cpu();
  test_append_cpu();
  test_memory();
  test_streams();
  test_prefill_split_plan();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
