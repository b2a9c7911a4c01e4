#include "cpu/cpu_prefill.h"
#include "cpu/cpu_parallel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "core/half.h"

namespace fi4j {
namespace cpu {

namespace {

int64_t qo_start(const PrefillParams& p, int b) { return p.qo_indptr ? p.qo_indptr[b] : 0; }
int64_t qo_len(const PrefillParams& p, int b) {
  return p.qo_indptr ? p.qo_indptr[b + 1] - p.qo_indptr[b] : p.nnz_qo;
}

int64_t kv_len(const PrefillParams& p, int b) {
  if (p.kv_storage == KvStorage::Ragged) {
    const RaggedKv& r = p.ragged;
    return r.kv_indptr ? r.kv_indptr[b + 1] - r.kv_indptr[b] : r.nnz_kv;
  }
  const PagedKv& kv = p.paged;
  const int64_t pages = kv.kv_indptr[b + 1] - kv.kv_indptr[b];
  return pages == 0 ? 0 : static_cast<int64_t>(kv.page_size) * (pages - 1) + kv.kv_last_page_len[b];
}

/// Element offsets of (key t of request b, KV head h, dim 0) in K and in V.
void kv_offsets(const PrefillParams& p, int b, int64_t t, int h, int64_t* k_off, int64_t* v_off) {
  if (p.kv_storage == KvStorage::Ragged) {
    const RaggedKv& r = p.ragged;
    const int64_t row = (r.kv_indptr ? r.kv_indptr[b] : 0) + t;
    *k_off = row * r.k_stride_n + static_cast<int64_t>(h) * r.k_stride_h;
    *v_off = row * r.v_stride_n + static_cast<int64_t>(h) * r.v_stride_h;
    return;
  }
  const PagedKv& kv = p.paged;
  const int64_t page = kv.kv_indices[kv.kv_indptr[b] + t / kv.page_size];
  const int64_t off = page * kv.page_stride + (t % kv.page_size) * kv.token_stride +
                      static_cast<int64_t>(h) * kv.head_stride;
  *k_off = off;
  *v_off = off;  // V shares K's strides in a paged cache
}

/// Rotate-half RoPE of x (length d) at position pos, in place: angles formed in float as the kernels do,
/// the rotation in double (the decode reference's arithmetic).
void apply_rope(float* x, int d, float pos, const std::vector<float>& freq) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const float angle = pos * freq[i];
    const double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
    const float a = x[i], b = x[i + half];
    x[i] = static_cast<float>(a * c - b * s);
    x[i + half] = static_cast<float>(b * c + a * s);
  }
}

bool mask_bit(const PrefillParams& p, int b, int64_t element) {
  const int64_t byte = (p.mask.indptr ? p.mask.indptr[b] : 0) + element / 8;
  return (p.mask.bits[byte] >> (element % 8)) & 1u;
}

/// acc / denom, and 0 when no key was seen (denom == 0). A NaN denominator (a NaN or inf - inf logit) is not
/// "nothing seen": it makes the output NaN, as in every reference softmax and in the kernels' finalisers.
inline double normalise(double acc, double denom) { return denom != 0.0 ? acc / denom : 0.0; }

}  // namespace

void batch_prefill(const PrefillParams& p) {
  const int d = p.head_dim;
  const int hq = p.num_qo_heads;
  const int hkv = p.num_kv_heads;
  const int group = hq / hkv;
  const int dt = static_cast<int>(p.dtype);
  const AttentionVariant& var = p.variant;
  const bool rope = var.pos_encoding == PosEncoding::RopeLlama;
  const float log2e = 1.4426950408889634f;
  const int batch = p.batch_size;

  std::vector<float> freq(static_cast<size_t>(d / 2));
  for (int i = 0; i < d / 2; ++i)
    freq[i] = var.rope_rcp_scale * std::pow(var.rope_theta, -2.0f * static_cast<float>(i) / static_cast<float>(d));

  // Every key once as float (rotated when RoPE is on): request b's key t, head h at
  // keys[((key_base[b] + t) * hkv + h) * d], so the (row, head) items below share the conversion.
  std::vector<int64_t> key_base(static_cast<size_t>(batch) + 1, 0);
  for (int b = 0; b < batch; ++b) key_base[b + 1] = key_base[b] + kv_len(p, b);
  const int64_t total_keys = key_base[batch];
  std::vector<float> keys(static_cast<size_t>(total_keys * hkv * d));
  std::vector<int> key_request(static_cast<size_t>(total_keys));
  for (int b = 0; b < batch; ++b)
    std::fill(key_request.begin() + key_base[b], key_request.begin() + key_base[b + 1], b);
  parallel_for(total_keys * hkv, [&](long long item) {
    const int64_t key = item / hkv;
    const int h = static_cast<int>(item % hkv);
    const int b = key_request[static_cast<size_t>(key)];
    const int64_t t = key - key_base[b];
    int64_t k_off = 0, v_off = 0;
    kv_offsets(p, b, t, h, &k_off, &v_off);
    const void* k = p.kv_storage == KvStorage::Ragged ? p.ragged.k : p.paged.k;
    float* dst = &keys[static_cast<size_t>(item * d)];
    for (int i = 0; i < d; ++i) dst[i] = load_as_float(k, dt, k_off + i);
    if (rope) apply_rope(dst, d, static_cast<float>(t), freq);
  });

  const int64_t rows = p.qo_indptr ? p.qo_indptr[batch] : p.nnz_qo;
  const void* v_data = p.kv_storage == KvStorage::Ragged ? p.ragged.v : p.paged.v;
  parallel_for(rows * hq, [&](long long item) {
    const int64_t row = item / hq;
    const int h = static_cast<int>(item % hq);
    const int kvh = h / group;
    int b = 0;
    if (p.qo_indptr) {  // the last request whose first row is <= row (skips empty requests)
      b = static_cast<int>(std::upper_bound(p.qo_indptr, p.qo_indptr + batch + 1, row) - p.qo_indptr) - 1;
    }
    const int64_t i = row - qo_start(p, b);
    const int64_t len = kv_len(p, b);
    const int64_t pos_q = i + len - qo_len(p, b);

    int64_t first = 0, end = len;  // candidate keys [first, end) before the custom mask
    if (var.window_left >= 0) first = std::max<int64_t>(0, pos_q - var.window_left);
    if (p.mask_mode == MaskMode::Causal) end = std::min<int64_t>(len, pos_q + 1);

    std::vector<float> q(static_cast<size_t>(d));
    for (int x = 0; x < d; ++x) q[x] = load_as_float(p.q, dt, row * p.q_stride_n + h * p.q_stride_h + x);
    if (rope) apply_rope(q.data(), d, static_cast<float>(pos_q), freq);

    std::vector<int64_t> seen;
    std::vector<float> logits;
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int64_t t = first; t < end; ++t) {
      if (p.mask_mode == MaskMode::Custom && !mask_bit(p, b, i * len + t)) continue;
      const float* k = &keys[static_cast<size_t>(((key_base[b] + t) * hkv + kvh) * d)];
      float dot = 0.f;
      for (int x = 0; x < d; ++x) dot += q[x] * k[x];
      float logit = dot * var.sm_scale;
      if (var.logits_soft_cap > 0.f) logit = var.logits_soft_cap * std::tanh(logit / var.logits_soft_cap);
      seen.push_back(t);
      logits.push_back(logit);
      max_logit = std::max(max_logit, logit);
    }

    // As the kernels: a NaN logit leaves max_logit (std::max drops it, as fmaxf does) but makes its weight, the
    // denominator and the output NaN; no key seen (or only -inf logits) subtracts 0 instead of -inf.
    const float base = max_logit == -std::numeric_limits<float>::infinity() ? 0.f : max_logit;
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    double denom = 0.0;
    for (size_t n = 0; n < seen.size(); ++n) {
      const double w = std::exp2(static_cast<double>(logits[n] - base) * log2e);
      denom += w;
      int64_t k_off = 0, v_off = 0;
      kv_offsets(p, b, seen[n], kvh, &k_off, &v_off);
      for (int x = 0; x < d; ++x) acc[x] += w * load_as_float(v_data, dt, v_off + x);
    }
    for (int x = 0; x < d; ++x) {
      const float out = static_cast<float>(normalise(acc[x], denom));
      store_from_float(p.o, dt, row * p.o_stride_n + h * p.o_stride_h + x, out);
    }
    if (p.lse) {
      p.lse[row * hq + h] = denom != 0.0 ? static_cast<float>(static_cast<double>(max_logit) * log2e + std::log2(denom))
                                        : -std::numeric_limits<float>::infinity();
    }
  });
}

}  // namespace cpu
}  // namespace fi4j
