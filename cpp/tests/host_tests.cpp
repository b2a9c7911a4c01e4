// Host tests of the C API on the CPU backend (no GPU needed): conversions, validation messages, and small
// decode/append cases with hand-computed answers. Exit code = number of failed checks.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "flashinfer4j/flashinfer4j.h"
#include "half.h"

static int g_failed = 0;
static int g_passed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      ++g_passed;                                                          \
    } else {                                                               \
      ++g_failed;                                                          \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                      \
  } while (0)

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

int main() {
  test_conversions();
  test_devices();
  test_decode_cpu();
  test_append_cpu();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
