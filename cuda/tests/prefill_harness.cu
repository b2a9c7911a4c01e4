// Standalone GPU test of the tensor-core batch prefill kernel (prefill.cuh) against a float64 CPU reference.
//
// Build and run from the repository root (one line):
//   /usr/local/cuda/bin/nvcc -std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -Icuda/include -Icpp/src cuda/tests/prefill_harness.cu cuda/kernels/attention/prefill.cu cpp/src/attention/prefill_plan.cpp -o /tmp/ph && /tmp/ph
// Prints one line per case, "N passed, M failed", then a timing section; exits non-zero on any failure.
//
// Random batches mix qo_len 0..300 (empty requests included), kv_len above and below qo_len (rows that see
// nothing must give o = 0, lse = -inf), GQA groups 1/4/7/8, NHD/HND, ragged and paged (page 1 and 16, shuffled
// pages, spare pages), causal / none / custom tree mask, sliding window, soft cap, RoPE. Output and LSE buffers
// (with row padding) are poisoned with 0xff (NaN) before the run: owed elements must come back finite and
// within tolerance (bf16 1e-2 abs + rel, fp16 2e-3, LSE 1e-3 abs + rel), padding must stay untouched.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fi4j/attention/prefill_launch.h"
#include "harness_util.cuh"
#include "attention/prefill_plan.h"  // cpp/src: the host split planner

using fi4j::DType;
using fi4j::KvStorage;
using fi4j::MaskMode;


namespace {

using fi4j_test::DeviceBuffer;
using fi4j_test::from_bits;
using fi4j_test::to_bits;

constexpr int kPad = 8;  // extra elements per padded q / o row (keeps 16-byte alignment)

struct Case {
  DType dtype = DType::BF16;
  int head_dim = 128;
  int num_kv_heads = 1;
  int group = 1;
  bool paged = false;
  int page_size = 16;
  bool hnd = false;
  MaskMode mask = MaskMode::None;
  int window_left = -1;
  float soft_cap = 0.f;
  bool rope = false;
  bool single = false;  // qo_indptr (and ragged kv_indptr) null: one request
  std::vector<int> qo_lens, kv_lens;
  int cta_tile_q = 0;  // PrefillPlanView::cta_tile_q: 0 (kernel's choice), 64 or 128
};

std::string describe(const Case& c) {
  char buf[256];
  int rows = 0, keys = 0;
  for (size_t b = 0; b < c.qo_lens.size(); ++b) rows += c.qo_lens[b], keys += c.kv_lens[b];
  std::snprintf(buf, sizeof(buf), "%s D=%d hq=%d hkv=%d %s%s%s %s win=%d cap=%g rope=%d tile=%d batch=%zu rows=%d keys=%d",
                c.dtype == DType::F16 ? "f16 " : "bf16", c.head_dim, c.group * c.num_kv_heads, c.num_kv_heads,
                c.paged ? "paged" : "ragged", c.paged ? (c.page_size == 1 ? "/p1" : "/p16") : "",
                c.hnd ? "/HND" : "/NHD",
                c.mask == MaskMode::None ? "none  " : c.mask == MaskMode::Causal ? "causal" : "custom",
                c.window_left, c.soft_cap, c.rope ? 1 : 0, c.cta_tile_q, c.qo_lens.size(), rows, keys);
  return buf;
}

// Rotate-half RoPE in double with the angle formed in float (pos * freq), as the kernels and the CPU oracle do.
void rope(std::vector<double>& x, int d, int pos, float rcp_scale, float theta) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const float freq = rcp_scale * std::pow(theta, -2.f * static_cast<float>(i) / static_cast<float>(d));
    const float angle = static_cast<float>(pos) * freq;
    const double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
    const double a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

bool run_case(const Case& c, std::mt19937& rng) {
  const DType dt = c.dtype;
  const int D = c.head_dim, hkv = c.num_kv_heads, g = c.group, hq = g * hkv;
  const int batch = static_cast<int>(c.qo_lens.size());
  std::vector<int32_t> qo_indptr(batch + 1, 0), kv_indptr(batch + 1, 0);
  for (int b = 0; b < batch; ++b) {
    qo_indptr[b + 1] = qo_indptr[b] + c.qo_lens[b];
    kv_indptr[b + 1] = kv_indptr[b] + c.kv_lens[b];
  }
  const int nnz = qo_indptr[batch], nnz_kv = kv_indptr[batch];
  std::uniform_real_distribution<float> val(-2.f, 2.f);

  // q and o: [nnz, hq, D] with padded rows.
  const int64_t q_sn = static_cast<int64_t>(hq) * D + kPad, q_sh = D;
  std::vector<uint16_t> q(static_cast<size_t>(std::max(nnz, 1)) * q_sn);
  for (auto& x : q) x = to_bits(val(rng), dt);

  // K / V storage. key_off(b, t, h): element offset of key t of request b, KV head h.
  std::vector<uint16_t> k, v;
  std::vector<int32_t> pg_indptr(batch + 1, 0), pg_indices, pg_last;
  int num_pages = 0;
  int64_t k_sn = 0, k_sh = 0, page_stride = 0, token_stride = 0, head_stride = 0;
  const int P = c.page_size;
  if (!c.paged) {
    const int64_t rows = std::max(nnz_kv, 1);
    if (c.hnd) {
      k_sn = D;
      k_sh = rows * D;
    } else {
      k_sn = static_cast<int64_t>(hkv) * D;
      k_sh = D;
    }
    k.resize(static_cast<size_t>(rows * hkv * D));
  } else {
    int total = 0;
    for (int b = 0; b < batch; ++b) {
      const int np = (c.kv_lens[b] + P - 1) / P;
      total += np;
      pg_indptr[b + 1] = total;
      pg_last.push_back(np == 0 ? 0 : c.kv_lens[b] - P * (np - 1));
    }
    num_pages = total + 3;
    std::vector<int32_t> perm(num_pages);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    pg_indices.assign(perm.begin(), perm.begin() + total);
    page_stride = static_cast<int64_t>(P) * hkv * D + kPad;
    token_stride = c.hnd ? D : static_cast<int64_t>(hkv) * D;
    head_stride = c.hnd ? static_cast<int64_t>(P) * D : D;
    k.resize(static_cast<size_t>(num_pages * page_stride));
  }
  v.resize(k.size());
  for (auto& x : k) x = to_bits(val(rng), dt);
  for (auto& x : v) x = to_bits(val(rng), dt);
  auto key_off = [&](int b, int t, int h) -> int64_t {
    if (!c.paged) return static_cast<int64_t>(kv_indptr[b] + t) * k_sn + static_cast<int64_t>(h) * k_sh;
    const int page = pg_indices[pg_indptr[b] + t / P];
    return page * page_stride + (t % P) * token_stride + h * head_stride;
  };

  // Custom mask: a random tree over the new tokens (each sees the prefix, its ancestors and itself) when
  // kv_len >= qo_len, random bits (some rows empty) otherwise.
  std::vector<uint8_t> mask_bits;
  std::vector<int32_t> mask_indptr(batch + 1, 0);
  std::vector<std::vector<uint8_t>> allowed_custom(batch);
  if (c.mask == MaskMode::Custom) {
    for (int b = 0; b < batch; ++b) {
      const int ql = c.qo_lens[b], kl = c.kv_lens[b];
      std::vector<uint8_t>& a = allowed_custom[b];
      a.assign(static_cast<size_t>(ql) * kl, 0);
      if (kl >= ql) {
        const int prefix = kl - ql;
        std::vector<int> parent(ql, -1);
        for (int i = 1; i < ql; ++i) parent[i] = static_cast<int>(rng() % i) - (rng() % 4 == 0 ? i : 0);
        for (int i = 0; i < ql; ++i) {
          for (int j = 0; j < prefix; ++j) a[static_cast<size_t>(i) * kl + j] = 1;
          for (int n = i; n >= 0; n = parent[n]) a[static_cast<size_t>(i) * kl + prefix + n] = 1;
        }
      } else {
        for (int i = 0; i < ql; ++i) {
          const bool empty = rng() % 5 == 0;
          for (int j = 0; j < kl; ++j) a[static_cast<size_t>(i) * kl + j] = !empty && rng() % 2;
        }
      }
      const int bytes = static_cast<int>((a.size() + 7) / 8);
      mask_indptr[b + 1] = mask_indptr[b] + bytes + static_cast<int>(rng() % 3);  // gaps between requests
    }
    mask_bits.assign(static_cast<size_t>(std::max(mask_indptr[batch], 1)), 0xA5);
    for (int b = 0; b < batch; ++b) {
      std::fill(mask_bits.begin() + mask_indptr[b], mask_bits.begin() + mask_indptr[b] + (allowed_custom[b].size() + 7) / 8, 0);
      for (size_t e = 0; e < allowed_custom[b].size(); ++e)
        if (allowed_custom[b][e]) mask_bits[mask_indptr[b] + e / 8] |= static_cast<uint8_t>(1u << (e % 8));
    }
  }

  // Device buffers.
  DeviceBuffer<uint16_t> d_q(q.size()), d_o(q.size()), d_k(k.size()), d_v(v.size());
  DeviceBuffer<float> d_lse(static_cast<size_t>(std::max(nnz, 1)) * hq);
  DeviceBuffer<int32_t> d_qo(qo_indptr.size()), d_kv(kv_indptr.size()), d_pgp(pg_indptr.size()),
      d_pgi(std::max<size_t>(pg_indices.size(), 1)), d_pgl(std::max<size_t>(pg_last.size(), 1)),
      d_mi(mask_indptr.size());
  DeviceBuffer<uint8_t> d_mask(mask_bits.size());
  d_q.upload(q);
  d_k.upload(k);
  d_v.upload(v);
  d_qo.upload(qo_indptr);
  d_kv.upload(kv_indptr);
  d_pgp.upload(pg_indptr);
  if (!pg_indices.empty()) d_pgi.upload(pg_indices);
  if (!pg_last.empty()) d_pgl.upload(pg_last);
  d_mi.upload(mask_indptr);
  d_mask.upload(mask_bits);
  d_o.poison();
  d_lse.poison();

  fi4j::PrefillParams p{};
  p.dtype = dt;
  p.batch_size = batch;
  p.num_qo_heads = hq;
  p.num_kv_heads = hkv;
  p.head_dim = D;
  p.qo_indptr = c.single ? nullptr : d_qo.ptr;
  p.nnz_qo = nnz;
  p.q = d_q.ptr;
  p.q_stride_n = q_sn;
  p.q_stride_h = q_sh;
  p.o = d_o.ptr;
  p.o_stride_n = q_sn;
  p.o_stride_h = q_sh;
  p.lse = d_lse.ptr;
  p.kv_storage = c.paged ? KvStorage::Paged : KvStorage::Ragged;
  p.ragged = {d_k.ptr, k_sn, k_sh, d_v.ptr, k_sn, k_sh, c.single ? nullptr : d_kv.ptr, nnz_kv};
  p.paged.k = d_k.ptr;
  p.paged.v = d_v.ptr;
  p.paged.page_stride = page_stride;
  p.paged.token_stride = token_stride;
  p.paged.head_stride = head_stride;
  p.paged.num_pages = num_pages;
  p.paged.page_size = P;
  p.paged.num_kv_heads = hkv;
  p.paged.head_dim = D;
  p.paged.kv_indptr = d_pgp.ptr;
  p.paged.kv_indices = d_pgi.ptr;
  p.paged.kv_last_page_len = d_pgl.ptr;
  p.paged.batch_size = batch;
  p.mask_mode = c.mask;
  p.mask = {d_mask.ptr, c.single ? nullptr : d_mi.ptr};
  p.variant.sm_scale = 1.f / std::sqrt(static_cast<float>(D));
  p.variant.logits_soft_cap = c.soft_cap;
  p.variant.window_left = c.window_left;
  p.variant.pos_encoding = c.rope ? fi4j::PosEncoding::RopeLlama : fi4j::PosEncoding::None;
  p.variant.rope_rcp_scale = 0.5f;
  p.variant.rope_theta = 10000.f;

  p.plan.cta_tile_q = c.cta_tile_q;
  const cudaError_t err = fi4j::launch_batch_prefill(p, nullptr);
  if (err != cudaSuccess) {
    std::printf("FAIL %s: launch returned %s\n", describe(c).c_str(), cudaGetErrorString(err));
    return false;
  }
  const cudaError_t sync_err = cudaDeviceSynchronize();
  if (sync_err != cudaSuccess) {  // a fault poisons the context: report the case and stop
    std::printf("FAIL %s: kernel error %s\n", describe(c).c_str(), cudaGetErrorString(sync_err));
    std::exit(2);
  }
  const std::vector<uint16_t> o = d_o.download();
  const std::vector<float> lse = d_lse.download();

  // Reference and comparison.
  const double atol = dt == DType::BF16 ? 1e-2 : 2e-3, rtol = atol, lse_tol = 1e-3;
  const double log2e = 1.4426950408889634;
  double max_err = 0.0, max_lse_err = 0.0;
  long long bad = 0, bad_lse = 0, bad_pad = 0;
  char first[200] = "";
  for (int b = 0; b < batch; ++b) {
    const int ql = c.qo_lens[b], kl = c.kv_lens[b];
    // Keys (rotated) and values per KV head, as double.
    std::vector<std::vector<double>> keys(hkv), vals(hkv);
    for (int h = 0; h < hkv; ++h) {
      keys[h].resize(static_cast<size_t>(kl) * D);
      vals[h].resize(static_cast<size_t>(kl) * D);
      std::vector<double> x(D);
      for (int t = 0; t < kl; ++t) {
        const int64_t off = key_off(b, t, h);
        for (int e = 0; e < D; ++e) x[e] = from_bits(k[off + e], dt);
        if (c.rope) rope(x, D, t, p.variant.rope_rcp_scale, p.variant.rope_theta);
        for (int e = 0; e < D; ++e) {
          keys[h][static_cast<size_t>(t) * D + e] = x[e];
          vals[h][static_cast<size_t>(t) * D + e] = from_bits(v[off + e], dt);
        }
      }
    }
    for (int i = 0; i < ql; ++i) {
      const int row = qo_indptr[b] + i;
      const int pos = i + kl - ql;
      for (int h = 0; h < hq; ++h) {
        const int kh = h / g;
        std::vector<double> x(D);
        for (int e = 0; e < D; ++e) x[e] = from_bits(q[row * q_sn + h * q_sh + e], dt);
        if (c.rope) rope(x, D, pos, p.variant.rope_rcp_scale, p.variant.rope_theta);
        std::vector<double> logit;
        std::vector<int> seen;
        double mx = -INFINITY;
        for (int j = 0; j < kl; ++j) {
          bool ok = true;
          if (c.mask == MaskMode::Causal) ok = j <= pos;
          if (c.mask == MaskMode::Custom) ok = allowed_custom[b][static_cast<size_t>(i) * kl + j] != 0;
          if (c.window_left >= 0 && j < pos - c.window_left) ok = false;
          if (!ok) continue;
          double dot = 0.0;
          for (int e = 0; e < D; ++e) dot += x[e] * keys[kh][static_cast<size_t>(j) * D + e];
          double l = dot * p.variant.sm_scale;
          if (c.soft_cap > 0.f) l = c.soft_cap * std::tanh(l / c.soft_cap);
          logit.push_back(l);
          seen.push_back(j);
          mx = std::max(mx, l);
        }
        std::vector<double> acc(D, 0.0);
        double den = 0.0;
        for (size_t n = 0; n < seen.size(); ++n) {
          const double w = std::exp(logit[n] - mx);
          den += w;
          for (int e = 0; e < D; ++e) acc[e] += w * vals[kh][static_cast<size_t>(seen[n]) * D + e];
        }
        for (int e = 0; e < D; ++e) {
          const double ref = den > 0.0 ? acc[e] / den : 0.0;
          const double got = from_bits(o[row * q_sn + h * q_sh + e], dt);
          const double diff = std::fabs(got - ref);
          if (!(diff <= atol + rtol * std::fabs(ref))) {
            if (bad++ == 0)
              std::snprintf(first, sizeof(first), "o[b=%d i=%d h=%d e=%d] = %g, want %g", b, i, h, e, got, ref);
          }
          if (std::isfinite(got)) max_err = std::max(max_err, diff);
        }
        const double ref_lse = den > 0.0 ? mx * log2e + std::log2(den) : -INFINITY;
        const double got_lse = lse[static_cast<size_t>(row) * hq + h];
        bool lse_ok;
        if (std::isinf(ref_lse)) {
          lse_ok = std::isinf(got_lse) && got_lse < 0;
        } else {
          const double diff = std::fabs(got_lse - ref_lse);
          lse_ok = diff <= lse_tol + lse_tol * std::fabs(ref_lse);
          if (std::isfinite(got_lse)) max_lse_err = std::max(max_lse_err, diff);
        }
        if (!lse_ok && bad_lse++ == 0 && bad == 0)
          std::snprintf(first, sizeof(first), "lse[b=%d i=%d h=%d] = %g, want %g", b, i, h, got_lse, ref_lse);
      }
    }
  }
  for (int row = 0; row < nnz; ++row)
    for (int e = 0; e < kPad; ++e)
      if (o[row * q_sn + hq * D + e] != 0xffff) ++bad_pad;
  const bool pass = bad == 0 && bad_lse == 0 && bad_pad == 0;
  std::printf("%s %s | max|do|=%.2e max|dlse|=%.2e%s%s\n", pass ? "ok  " : "FAIL", describe(c).c_str(), max_err,
              max_lse_err, pass ? "" : " | ", pass ? "" : first);
  if (!pass)
    std::printf("     bad o=%lld bad lse=%lld padding touched=%lld\n", bad, bad_lse, bad_pad);
  return pass;
}

// Random lengths: qo_len 0..300 with some empty requests; kv_len >= qo_len mostly, sometimes below (rows that
// see nothing under the causal mask) or zero.
void random_lengths(Case& c, int batch, std::mt19937& rng) {
  c.qo_lens.clear();
  c.kv_lens.clear();
  for (int b = 0; b < batch; ++b) {
    const int kind = static_cast<int>(rng() % 10);
    int ql = kind == 0 ? 0 : kind == 1 ? 1 : 1 + static_cast<int>(rng() % 300);
    int kl;
    const int kk = static_cast<int>(rng() % 8);
    if (kk == 0) kl = 0;
    else if (kk == 1) kl = static_cast<int>(rng() % (ql + 1));  // kv_len <= qo_len
    else kl = ql + static_cast<int>(rng() % 200);
    c.qo_lens.push_back(ql);
    c.kv_lens.push_back(kl);
  }
}

// Split-KV (few short queries against long caches): the host planner's work list in a device workspace, the split
// kernel and the merge, against the unsplit kernel on the same inputs (same math per key, so they agree to fp32
// rounding of the merge), and the time of both. Returns the number of failed cases.
int split_section() {
  std::printf("\nsplit-KV (bf16, 32 qo / 8 kv heads, D=128, ragged; plan on %s):\n", "this device");
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  struct Shape {
    std::vector<int> qo, kv;
    bool causal;
  };
  const Shape shapes[] = {{{16}, {32768}, true}, {{1, 4, 16, 2}, {8192, 16000, 3000, 700}, true},
                          {{128}, {16384}, false}, {{7, 64}, {20000, 9000}, true}};
  int failed = 0;
  for (const Shape& sh : shapes) {
    const int hq = 32, hkv = 8, D = 128, batch = static_cast<int>(sh.qo.size());
    std::vector<int32_t> qo_ip(batch + 1, 0), kv_ip(batch + 1, 0);
    for (int b = 0; b < batch; ++b) qo_ip[b + 1] = qo_ip[b] + sh.qo[b], kv_ip[b + 1] = kv_ip[b] + sh.kv[b];
    const int nnz_qo = qo_ip[batch], nnz_kv = kv_ip[batch];
    DeviceBuffer<uint16_t> q(static_cast<size_t>(nnz_qo) * hq * D), o(q.count), o2(q.count),
        k(static_cast<size_t>(nnz_kv) * hkv * D), v(k.count);
    DeviceBuffer<float> lse(static_cast<size_t>(nnz_qo) * hq), lse2(lse.count);
    DeviceBuffer<int32_t> d_qo(batch + 1), d_kv(batch + 1);
    d_qo.upload(qo_ip);
    d_kv.upload(kv_ip);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> val(-1.f, 1.f);
    std::vector<uint16_t> h(q.count);
    for (auto& x : h) x = to_bits(val(rng), DType::BF16);
    q.upload(h);
    h.resize(k.count);
    for (auto& x : h) x = to_bits(val(rng), DType::BF16);
    k.upload(h);
    for (auto& x : h) x = to_bits(val(rng), DType::BF16);
    v.upload(h);
    fi4j::PrefillParams p{};
    p.dtype = DType::BF16;
    p.batch_size = batch;
    p.num_qo_heads = hq;
    p.num_kv_heads = hkv;
    p.head_dim = D;
    p.qo_indptr = d_qo.ptr;
    p.nnz_qo = nnz_qo;
    p.q = q.ptr;
    p.q_stride_n = static_cast<int64_t>(hq) * D;
    p.q_stride_h = D;
    p.o = o.ptr;
    p.o_stride_n = p.q_stride_n;
    p.o_stride_h = D;
    p.lse = lse.ptr;
    p.kv_storage = KvStorage::Ragged;
    p.ragged = {k.ptr, static_cast<int64_t>(hkv) * D, D, v.ptr, static_cast<int64_t>(hkv) * D, D, d_kv.ptr, nnz_kv};
    p.mask_mode = sh.causal ? MaskMode::Causal : MaskMode::None;
    p.variant.sm_scale = 1.f / std::sqrt(static_cast<float>(D));
    p.variant.window_left = -1;
    p.variant.rope_rcp_scale = 1.f;
    p.variant.rope_theta = 1e4f;
    // The plan, as fi4j_batch_prefill_plan makes it.
    long long max_rows = 0;
    for (int b = 0; b < batch; ++b) max_rows = std::max<long long>(max_rows, 4LL * sh.qo[b]);
    int smem_limit = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&smem_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    const int cta = fi4j::prefill_choose_cta_tile_q(D, false, max_rows, smem_limit);
    std::vector<int32_t> kv_len(sh.kv.begin(), sh.kv.end());
    fi4j::PrefillSplitInput in;
    in.batch_size = batch;
    in.qo_indptr = qo_ip.data();
    in.kv_len = kv_len.data();
    in.group = hq / hkv;
    in.num_kv_heads = hkv;
    in.head_dim = D;
    in.rows_tile = cta;
    in.causal = sh.causal;
    in.num_sms = prop.multiProcessorCount;
    in.blocks_per_sm = cta == 64 ? 2 : 1;
    in.workspace_bytes = int64_t{128} << 20;
    const fi4j::PrefillSplitPlan plan = fi4j::plan_prefill_split(in);
    DeviceBuffer<unsigned char> ws(static_cast<size_t>(std::max<int64_t>(plan.bytes, 256)));
    if (plan.num_work() > 0) {
      const std::vector<unsigned char> image = fi4j::prefill_split_image(plan, hkv, cta, D);
      CUDA_CHECK(cudaMemcpy(ws.ptr, image.data(), image.size(), cudaMemcpyHostToDevice));
    }
    // Time the unsplit and the split launch (median of 20), then compare outputs.
    auto time_it = [&](const fi4j::PrefillParams& pp) {
      for (int w = 0; w < 3; ++w) CUDA_CHECK(fi4j::launch_batch_prefill(pp, nullptr));
      cudaEvent_t e0, e1;
      CUDA_CHECK(cudaEventCreate(&e0));
      CUDA_CHECK(cudaEventCreate(&e1));
      std::vector<float> t;
      for (int it = 0; it < 20; ++it) {
        CUDA_CHECK(cudaEventRecord(e0));
        CUDA_CHECK(fi4j::launch_batch_prefill(pp, nullptr));
        CUDA_CHECK(cudaEventRecord(e1));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0.f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms);
      }
      std::sort(t.begin(), t.end());
      CUDA_CHECK(cudaEventDestroy(e0));
      CUDA_CHECK(cudaEventDestroy(e1));
      return t[t.size() / 2];
    };
    fi4j::PrefillParams unsplit = p;
    unsplit.plan.cta_tile_q = cta;
    const float ms_unsplit = time_it(unsplit);
    fi4j::PrefillParams split = p;
    split.o = o2.ptr;
    split.lse = lse2.ptr;
    split.plan.cta_tile_q = cta;
    split.plan.num_work = plan.num_work();
    split.plan.workspace = ws.ptr;
    split.plan.workspace_bytes = plan.bytes;
    CUDA_CHECK(cudaMemset(o2.ptr, 0xff, o2.count * 2));  // poison: NaN
    const float ms_split = time_it(split);
    const std::vector<uint16_t> a = o.download(), b2 = o2.download();
    const std::vector<float> la = lse.download(), lb = lse2.download();
    double max_do = 0, max_dl = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = std::fabs(static_cast<double>(from_bits(a[i], DType::BF16)) - from_bits(b2[i], DType::BF16));
      max_do = std::isnan(d) ? INFINITY : std::max(max_do, d);
    }
    for (size_t i = 0; i < la.size(); ++i) {
      const double d = (std::isinf(la[i]) && la[i] == lb[i]) ? 0.0 : std::fabs(static_cast<double>(la[i]) - lb[i]);
      max_dl = std::isnan(d) ? INFINITY : std::max(max_dl, d);
    }
    const bool ok = plan.num_work() > 0 && max_do <= 1.6e-2 && max_dl <= 1e-3;
    failed += ok ? 0 : 1;
    std::string name;
    for (int b = 0; b < batch; ++b)
      name += (b ? "," : "") + std::to_string(sh.qo[b]) + "/" + std::to_string(sh.kv[b]);
    std::printf("%s qo/kv=[%s] %s tile=%d work=%d: unsplit %.3f ms, split %.3f ms (x%.2f) max|do|=%.2e max|dlse|=%.2e\n",
                ok ? "ok  " : "FAIL", name.c_str(), sh.causal ? "causal" : "non-causal", cta, plan.num_work(),
                ms_unsplit, ms_split, ms_unsplit / ms_split, max_do, max_dl);
  }
  return failed;
}

void timing() {
  std::printf("\ntiming (bf16, 32 qo / 8 kv heads, ragged NHD unless paged; tile = query rows per block):\n");
  struct Shape {
    int batch, len, D;
    bool causal, paged;
    int cta_tile_q;
  };
  const Shape shapes[] = {{1, 8192, 128, true, false, 0},   {1, 8192, 128, false, false, 0},
                          {1, 16384, 128, true, false, 0},  {4, 2048, 128, true, false, 0},
                          {4, 2048, 128, true, true, 0},    {1, 8192, 128, false, true, 0},
                          {1, 8192, 128, true, false, 128}, {1, 8192, 128, true, false, 64},
                          {1, 8192, 64, true, false, 0},    {1, 8192, 64, false, false, 0},
                          {1, 8192, 256, true, false, 0},   {1, 8192, 256, false, false, 0}};
  for (const Shape& s : shapes) {
    const int hq = 32, hkv = 8, D = s.D, nnz = s.batch * s.len, page = 16;
    DeviceBuffer<uint16_t> q(static_cast<size_t>(nnz) * hq * D), o(q.count), k(static_cast<size_t>(nnz) * hkv * D),
        v(k.count);
    DeviceBuffer<float> lse(static_cast<size_t>(nnz) * hq);
    DeviceBuffer<int32_t> indptr(s.batch + 1), page_indptr(s.batch + 1), last(s.batch),
        pages(static_cast<size_t>(nnz / page));
    std::vector<int32_t> ip(s.batch + 1), pip(s.batch + 1), lp(s.batch, page), pg(nnz / page);
    for (int b = 0; b <= s.batch; ++b) ip[b] = b * s.len, pip[b] = b * (s.len / page);
    std::mt19937 rng(7);
    for (size_t i = 0; i < pg.size(); ++i) pg[i] = static_cast<int32_t>(i);
    std::shuffle(pg.begin(), pg.end(), rng);
    indptr.upload(ip);
    page_indptr.upload(pip);
    last.upload(lp);
    pages.upload(pg);
    std::uniform_real_distribution<float> val(-1.f, 1.f);
    std::vector<uint16_t> h(q.count);
    for (auto& x : h) x = to_bits(val(rng), DType::BF16);
    q.upload(h);
    h.resize(k.count);
    for (auto& x : h) x = to_bits(val(rng), DType::BF16);
    k.upload(h);
    v.upload(h);
    fi4j::PrefillParams p{};
    p.dtype = DType::BF16;
    p.batch_size = s.batch;
    p.num_qo_heads = hq;
    p.num_kv_heads = hkv;
    p.head_dim = D;
    p.qo_indptr = indptr.ptr;
    p.nnz_qo = nnz;
    p.q = q.ptr;
    p.q_stride_n = static_cast<int64_t>(hq) * D;
    p.q_stride_h = D;
    p.o = o.ptr;
    p.o_stride_n = p.q_stride_n;
    p.o_stride_h = D;
    p.lse = lse.ptr;
    if (s.paged) {
      p.kv_storage = KvStorage::Paged;
      p.paged.k = k.ptr;
      p.paged.v = v.ptr;
      p.paged.page_stride = static_cast<int64_t>(page) * hkv * D;
      p.paged.token_stride = static_cast<int64_t>(hkv) * D;
      p.paged.head_stride = D;
      p.paged.num_pages = nnz / page;
      p.paged.page_size = page;
      p.paged.num_kv_heads = hkv;
      p.paged.head_dim = D;
      p.paged.kv_indptr = page_indptr.ptr;
      p.paged.kv_indices = pages.ptr;
      p.paged.kv_last_page_len = last.ptr;
      p.paged.batch_size = s.batch;
    } else {
      p.kv_storage = KvStorage::Ragged;
      p.ragged = {k.ptr, static_cast<int64_t>(hkv) * D, D, v.ptr, static_cast<int64_t>(hkv) * D, D, indptr.ptr, nnz};
    }
    p.mask_mode = s.causal ? MaskMode::Causal : MaskMode::None;
    p.variant.sm_scale = 1.f / std::sqrt(static_cast<float>(D));
    p.variant.window_left = -1;
    p.variant.rope_rcp_scale = 1.f;
    p.variant.rope_theta = 1e4f;
    p.plan.cta_tile_q = s.cta_tile_q;
    for (int w = 0; w < 3; ++w) CUDA_CHECK(fi4j::launch_batch_prefill(p, nullptr));
    CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    const int iters = 20;
    std::vector<float> times;
    for (int it = 0; it < iters; ++it) {
      CUDA_CHECK(cudaEventRecord(e0));
      CUDA_CHECK(fi4j::launch_batch_prefill(p, nullptr));
      CUDA_CHECK(cudaEventRecord(e1));
      CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    const float ms = times[iters / 2];
    double flops = 4.0 * s.len * s.len * hq * D * s.batch;
    if (s.causal) flops /= 2;
    std::printf("  %dx%-6d D=%-3d %-10s %-6s tile=%-3d %8.3f ms  %7.1f TFLOP/s\n", s.batch, s.len, D,
                s.causal ? "causal" : "non-causal", s.paged ? "paged" : "ragged",
                fi4j::prefill_cta_tile_q(D, false, s.cta_tile_q == 0 ? 256 : s.cta_tile_q), ms, flops / (ms * 1e-3) / 1e12);
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
  }
}

}  // namespace

int main() {
  std::mt19937 rng(12345);
  int passed = 0, failed = 0;
  const int dims[] = {64, 128, 256};
  const MaskMode masks[] = {MaskMode::None, MaskMode::Causal, MaskMode::Custom};
  const int groups[] = {1, 4, 8, 7};
  int k = 0;
  for (int D : dims)
    for (MaskMode mask : masks)
      for (int paged = 0; paged < 2; ++paged)
        for (int rep = 0; rep < 2; ++rep, ++k) {
          Case c;
          c.dtype = (k % 2 == 0) ? DType::BF16 : DType::F16;
          c.head_dim = D;
          c.group = groups[(k / 2 + rep) % 4];
          c.num_kv_heads = c.group >= 7 ? 1 : 2;
          c.paged = paged != 0;
          c.page_size = (k / 3) % 2 == 0 ? 16 : 1;
          c.hnd = (k / 5) % 2 == 1;
          c.mask = mask;
          c.window_left = k % 3 == 1 ? static_cast<int>(rng() % 40) : -1;
          c.soft_cap = k % 4 == 2 ? (k % 8 == 2 ? 0.8f : 30.f) : 0.f;
          c.rope = k % 3 == 2 || (rep == 1 && k % 5 == 0);
          random_lengths(c, 2 + static_cast<int>(rng() % 5), rng);
          const int tiles[] = {0, 64, 128, 256};  // every block shape (0: the launcher's default)
          c.cta_tile_q = tiles[(k + rep) % 4];
          (run_case(c, rng) ? passed : failed)++;
        }
  // Single request with null indptrs (ragged), and an all-empty-rows batch.
  for (int s = 0; s < 4; ++s) {
    Case c;
    c.dtype = s % 2 ? DType::F16 : DType::BF16;
    c.head_dim = 128;
    c.group = s < 2 ? 4 : 8;
    c.num_kv_heads = 2;
    c.single = true;
    c.mask = s % 2 ? MaskMode::Custom : MaskMode::Causal;
    c.rope = s == 3;
    c.window_left = s == 2 ? 17 : -1;
    c.qo_lens = {1 + static_cast<int>(rng() % 300)};
    c.kv_lens = {c.qo_lens[0] + static_cast<int>(rng() % 100) - (s == 1 ? c.qo_lens[0] / 2 : 0)};
    (run_case(c, rng) ? passed : failed)++;
  }
  {
    Case c;
    c.mask = MaskMode::Causal;
    c.group = 4;
    c.num_kv_heads = 2;
    c.qo_lens = {0, 37, 0, 100, 0};
    c.kv_lens = {5, 0, 0, 50, 0};  // request 1: no keys; request 3: the first 50 rows see nothing
    (run_case(c, rng) ? passed : failed)++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  const int split_failed = split_section();
  timing();
  return failed == 0 && split_failed == 0 ? 0 : 1;
}
