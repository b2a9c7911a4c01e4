#include "cpu/cpu_reference.h"
#include "cpu/cpu_parallel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "core/half.h"

namespace fi4j {
namespace cpu {

namespace {

int64_t kv_len_of(const PagedKv& kv, int b) {
  if (!kv.kv_indptr) return kv.single_kv_len;
  int64_t pages = kv.kv_indptr[b + 1] - kv.kv_indptr[b];
  if (pages == 0) return 0;
  return static_cast<int64_t>(kv.page_size) * (pages - 1) + kv.kv_last_page_len[b];
}

/// Element offset of (token t of request b, head h, dim 0) in the cache.
int64_t token_offset(const PagedKv& kv, int b, int64_t t, int h) {
  int64_t page = kv.kv_indptr ? kv.kv_indices[kv.kv_indptr[b] + t / kv.page_size] : 0;
  int64_t slot = kv.kv_indptr ? t % kv.page_size : t;
  return page * kv.page_stride + slot * kv.token_stride + static_cast<int64_t>(h) * kv.head_stride;
}

/// Rotate-half RoPE of x (length d) at position pos, in place. Angles computed in float as the kernels do.
void apply_rope(float* x, int d, float pos, const AttentionVariant& v) {
  int half = d / 2;
  for (int i = 0; i < half; ++i) {
    float freq = v.rope_rcp_scale * std::pow(v.rope_theta, -2.0f * static_cast<float>(i) / static_cast<float>(d));
    float angle = pos * freq;
    double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
    float a = x[i], b = x[i + half];
    x[i] = static_cast<float>(a * c - b * s);
    x[i + half] = static_cast<float>(b * c + a * s);
  }
}

/// acc / denom, and 0 when no key was seen (denom == 0). A NaN denominator (a NaN or inf - inf logit) is not
/// "nothing seen": it makes the output NaN, as in every reference softmax and in the kernels' finalisers.
inline double normalise(double acc, double denom) { return denom != 0.0 ? acc / denom : 0.0; }

}  // namespace

void batch_decode(const DecodeParams& p) {
  const PagedKv& kv = p.kv;
  const int d = kv.head_dim;
  const int group = p.num_qo_heads / kv.num_kv_heads;
  const int dt = static_cast<int>(p.dtype);
  const AttentionVariant& var = p.variant;
  const bool rope = var.pos_encoding == PosEncoding::RopeLlama;
  const float log2e = 1.4426950408889634f;

  parallel_for(static_cast<long long>(kv.batch_size) * p.num_qo_heads, [&](long long item) {
    const int b = static_cast<int>(item / p.num_qo_heads);
    const int h = static_cast<int>(item % p.num_qo_heads);
    const int kvh = h / group;
    const int64_t len = kv_len_of(kv, b);
    const int64_t pos_q = len - 1;
    int64_t first = 0;
    if (var.window_left >= 0) first = std::max<int64_t>(0, pos_q - var.window_left);

    std::vector<float> q(d), k(d), logits;
    for (int i = 0; i < d; ++i) q[i] = load_as_float(p.q, dt, b * p.q_stride_n + h * p.q_stride_h + i);
    if (rope) apply_rope(q.data(), d, static_cast<float>(pos_q), var);

    logits.reserve(static_cast<size_t>(std::max<int64_t>(0, len - first)));
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int64_t t = first; t < len; ++t) {
      int64_t off = token_offset(kv, b, t, kvh);
      for (int i = 0; i < d; ++i) k[i] = load_as_float(kv.k, dt, off + i);
      if (rope) apply_rope(k.data(), d, static_cast<float>(t), var);
      float dot = 0.f;
      for (int i = 0; i < d; ++i) dot += q[i] * k[i];
      float x = dot * var.sm_scale;
      if (var.logits_soft_cap > 0.f) x = var.logits_soft_cap * std::tanh(x / var.logits_soft_cap);
      logits.push_back(x);
      max_logit = std::max(max_logit, x);
    }

    // As the kernels: a NaN logit leaves max_logit (std::max drops it, as fmaxf does) but makes its weight, the
    // denominator and the output NaN; no key seen (or only -inf logits) subtracts 0 instead of -inf.
    const float base = max_logit == -std::numeric_limits<float>::infinity() ? 0.f : max_logit;
    std::vector<double> acc(d, 0.0);
    double denom = 0.0;
    for (size_t n = 0; n < logits.size(); ++n) {
      double w = std::exp2(static_cast<double>(logits[n] - base) * log2e);
      denom += w;
      int64_t off = token_offset(kv, b, first + static_cast<int64_t>(n), kvh);
      for (int i = 0; i < d; ++i) acc[i] += w * load_as_float(kv.v, dt, off + i);
    }
    for (int i = 0; i < d; ++i) {
      float out = static_cast<float>(normalise(acc[i], denom));
      store_from_float(p.o, dt, b * p.o_stride_n + h * p.o_stride_h + i, out);
    }
    if (p.lse) {
      p.lse[static_cast<int64_t>(b) * p.num_qo_heads + h] =
          denom != 0.0 ? static_cast<float>(static_cast<double>(max_logit) * log2e + std::log2(denom))
                      : -std::numeric_limits<float>::infinity();
    }
  });
}

void append_paged_kv(const AppendParams& p) {
  const PagedKv& kv = p.kv;
  const int d = kv.head_dim;
  const int es = (p.dtype == DType::F32 || p.dtype == DType::I32) ? 4 : 2;
  parallel_for(p.nnz, [&](long long n) {
    const int b = p.batch_indices[n];
    const int64_t pos = p.positions[n];
    if (b < 0 || b >= kv.batch_size || pos < 0 || pos >= kv_len_of(kv, b)) return;  // validated before
    for (int h = 0; h < kv.num_kv_heads; ++h) {
      int64_t dst = token_offset(kv, b, pos, h);
      const char* ks = static_cast<const char*>(p.keys) + (n * p.keys_stride_n + h * p.keys_stride_h) * es;
      const char* vs = static_cast<const char*>(p.values) + (n * p.values_stride_n + h * p.values_stride_h) * es;
      std::memcpy(static_cast<char*>(p.k_cache) + dst * es, ks, static_cast<size_t>(d) * es);
      std::memcpy(static_cast<char*>(p.v_cache) + dst * es, vs, static_cast<size_t>(d) * es);
    }
  });
}

}  // namespace cpu
}  // namespace fi4j
