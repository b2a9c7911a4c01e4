#include "attention/checks.h"

#include <cmath>
#include <string>

#include "core/status.h"

namespace fi4j {

void check_attention_config(int device, int dtype, int head_dim, int num_qo_heads, int num_kv_heads) {
  if (dtype != FI4J_F16 && dtype != FI4J_BF16)
    throw Error(FI4J_ERR_UNSUPPORTED, std::string("dtype ") + dtype_name(dtype) +
                                          " is not supported for attention (supported: F16, BF16)");
  require(num_kv_heads > 0, "num_kv_heads", "> 0", num_kv_heads);
  require(num_qo_heads > 0, "num_qo_heads", "> 0", num_qo_heads);
  if (num_qo_heads % num_kv_heads != 0)
    fail_arg("num_qo_heads", "a multiple of num_kv_heads (" + std::to_string(num_kv_heads) + ")", num_qo_heads);
  if (is_cpu(device) && (head_dim < 2 || head_dim > 1024 || head_dim % 2 != 0))
    throw Error(FI4J_ERR_UNSUPPORTED, "head_dim " + std::to_string(head_dim) +
                                          " is not supported by the CPU backend (even, 2..1024)");
}

namespace {

/// "<prefix><field>[i]", for messages.
std::string at(const char* prefix, const char* field, long long i) {
  return std::string(prefix) + field + "[" + std::to_string(i) + "]";
}

}  // namespace

void check_page_table_host(const PagedKv& kv, int64_t num_indices, const char* prefix,
                           const char* num_indices_name) {
  const int32_t* indptr = kv.kv_indptr;
  if (indptr[0] != 0) fail_arg(at(prefix, "kv_indptr", 0), "0", indptr[0]);
  for (int b = 0; b < kv.batch_size; ++b)
    if (indptr[b + 1] < indptr[b])
      fail_arg(at(prefix, "kv_indptr", b + 1),
               ">= " + at(prefix, "kv_indptr", b) + " (" + std::to_string(indptr[b]) + ")", indptr[b + 1]);
  if (indptr[kv.batch_size] > num_indices)
    fail_arg(at(prefix, "kv_indptr", kv.batch_size),
             "<= " + std::string(num_indices_name) + " (" + std::to_string(num_indices) + ")", indptr[kv.batch_size]);
  for (int b = 0; b < kv.batch_size; ++b) {
    const int last = kv.kv_last_page_len[b];
    if (indptr[b + 1] == indptr[b]) {
      if (last != 0) fail_arg(at(prefix, "kv_last_page_len", b), "0 for a request with no pages", last);
    } else if (last < 0 || last > kv.page_size) {
      fail_arg(at(prefix, "kv_last_page_len", b), "in [0, " + std::to_string(kv.page_size) + "]", last);
    }
  }
  for (int64_t i = 0; i < indptr[kv.batch_size]; ++i)
    if (kv.kv_indices[i] < 0 || kv.kv_indices[i] >= kv.num_pages)
      fail_arg(at(prefix, "kv_indices", i), "in [0, " + std::to_string(kv.num_pages) + ")", kv.kv_indices[i]);
}

PagedKv to_paged_kv(const fi4j_paged_kv& c) {
  PagedKv kv{};
  kv.k = c.k;
  kv.v = c.v;
  kv.page_stride = c.page_stride;
  kv.token_stride = c.token_stride;
  kv.head_stride = c.head_stride;
  kv.num_pages = c.num_pages;
  kv.page_size = c.page_size;
  kv.num_kv_heads = c.num_kv_heads;
  kv.head_dim = c.head_dim;
  kv.kv_indptr = static_cast<const int32_t*>(c.kv_indptr);
  kv.kv_indices = static_cast<const int32_t*>(c.kv_indices);
  kv.kv_last_page_len = static_cast<const int32_t*>(c.kv_last_page_len);
  kv.batch_size = c.batch_size;
  kv.single_kv_len = 0;
  return kv;
}

AttentionVariant make_variant(const fi4j_attention_options& o, int head_dim) {
  AttentionVariant v{};
  if (!std::isfinite(o.sm_scale)) fail_arg("options.sm_scale", "finite", o.sm_scale);
  v.sm_scale = o.sm_scale > 0.f ? o.sm_scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (!(o.logits_soft_cap >= 0.f) || !std::isfinite(o.logits_soft_cap))
    fail_arg("options.logits_soft_cap", ">= 0 and finite (0 = off)", o.logits_soft_cap);
  v.logits_soft_cap = o.logits_soft_cap;
  v.window_left = o.window_left < 0 ? -1 : o.window_left;
  if (o.pos_encoding != FI4J_POS_NONE && o.pos_encoding != FI4J_POS_ROPE_LLAMA)
    fail_arg("options.pos_encoding", "NONE (0) or ROPE_LLAMA (1)", o.pos_encoding);
  v.pos_encoding = static_cast<PosEncoding>(o.pos_encoding);
  if (v.pos_encoding == PosEncoding::RopeLlama) {
    if (!(o.rope_scale > 0.f) || !std::isfinite(o.rope_scale)) fail_arg("options.rope_scale", "> 0", o.rope_scale);
    if (!(o.rope_theta > 0.f) || !std::isfinite(o.rope_theta)) fail_arg("options.rope_theta", "> 0", o.rope_theta);
  }
  v.rope_rcp_scale = o.rope_scale > 0.f ? 1.0f / o.rope_scale : 1.0f;
  v.rope_theta = o.rope_theta > 0.f ? o.rope_theta : 1e4f;
  return v;
}

}  // namespace fi4j
