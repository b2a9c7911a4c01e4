// Standalone GPU test of the batch decode and paged-KV append kernels against a float64 CPU reference.
// Each decode case runs the CUDA-core and the tensor-core path, each without a split and with a random split-KV
// partition (plus the same partition with the batch reversed, which must give bit-identical results), and checks
// that the two paths agree.
//
// Build and run from the repository root (one line):
//   /usr/local/cuda/bin/nvcc -std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -Icuda/include cuda/tests/decode_harness.cu cuda/kernels/attention/decode.cu cuda/kernels/attention/decode_tc.cu cuda/kernels/attention/append.cu -o /tmp/harness && /tmp/harness
// Prints one line per case and "N passed, M failed"; exits non-zero on any failure or CUDA error.
//
// Every output buffer (including stride padding) is poisoned with 0xff bytes (NaN in fp16, bf16 and fp32) before
// a run: each element the kernel owes must come back finite and within tolerance, each padding element must come
// back untouched. Append compares the whole cache bit for bit with the expected one, so a write anywhere else
// (a skipped token, a neighbouring slot) fails the case.
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

#include "fi4j/attention/launch.h"
#include "harness_util.cuh"

using fi4j::DType;


namespace {

using fi4j_test::DeviceBuffer;
using fi4j_test::from_bits;
using fi4j_test::to_bits;

const char* dtype_name(DType t) { return t == DType::F16 ? "f16" : "bf16"; }

constexpr uint16_t kPoison16 = 0xffff;  // NaN as fp16 and as bf16
constexpr int kRowPad = 8;              // extra elements per padded row / page (keeps 16-byte alignment)

// ---------------------------------------------------------------------------------------------------------------
// Paged cache construction

enum class Layout { NHD, HND };

struct CacheShape {
  DType dtype = DType::F16;
  int head_dim = 128;
  int page_size = 16;
  int num_kv_heads = 1;
  Layout layout = Layout::NHD;
  bool combined = false;   // one tensor [pages, 2, ...]: V at K + one page's K
  bool padded = false;     // page stride larger than the page (non-contiguous pages)
  bool single = false;     // single-request mode: kv_indptr == nullptr, all tokens in page 0
};

// Host copy of a paged cache plus its page table. Element (page, slot, head, d) of K is
// k[page * page_stride + slot * token_stride + head * head_stride + d], V alike at v_offset in its own buffer
// (separate tensors) or in the same one (combined).
struct HostCache {
  CacheShape shape;
  std::vector<int> lens;
  int num_pages = 0;
  int64_t page_stride = 0, token_stride = 0, head_stride = 0;
  int64_t v_offset = 0;  // where V starts inside its buffer
  std::vector<uint16_t> k, v;  // v empty when combined
  std::vector<int32_t> indptr, indices, last;

  int64_t offset(int page, int slot, int head) const {
    return page * page_stride + slot * token_stride + head * head_stride;
  }
  const std::vector<uint16_t>& v_buffer() const { return shape.combined ? k : v; }
  // Page id of token t of request b, or -1 when the page table points outside the cache (the token is skipped).
  int page_of(int b, int t) const {
    if (shape.single) return 0;
    const int id = indices[indptr[b] + t / shape.page_size];
    return (id >= 0 && id < num_pages) ? id : -1;
  }
};

HostCache build_cache(const CacheShape& s, const std::vector<int>& lens, std::mt19937& rng) {
  HostCache c;
  c.shape = s;
  c.lens = lens;
  const int P = s.page_size, H = s.num_kv_heads, D = s.head_dim;
  if (s.single) {
    c.num_pages = 1;
  } else {
    c.indptr.push_back(0);
    int total = 0;
    for (int L : lens) {
      const int np = (L + P - 1) / P;
      total += np;
      c.indptr.push_back(total);
      c.last.push_back(np == 0 ? 0 : L - P * (np - 1));
    }
    c.num_pages = total + 3;  // spare pages nobody owns: they must stay untouched
    std::vector<int32_t> perm(c.num_pages);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    c.indices.assign(perm.begin(), perm.begin() + total);
  }
  const int64_t page_elems = static_cast<int64_t>(P) * H * D;
  c.page_stride = (s.combined ? 2 * page_elems : page_elems) + (s.padded ? kRowPad : 0);
  c.token_stride = s.layout == Layout::NHD ? static_cast<int64_t>(H) * D : D;
  c.head_stride = s.layout == Layout::NHD ? D : static_cast<int64_t>(P) * D;
  c.v_offset = s.combined ? page_elems : 0;
  std::uniform_real_distribution<float> val(-2.f, 2.f);
  c.k.resize(static_cast<size_t>(c.num_pages) * c.page_stride);
  for (auto& x : c.k) x = to_bits(val(rng), s.dtype);
  if (!s.combined) {
    c.v.resize(c.k.size());
    for (auto& x : c.v) x = to_bits(val(rng), s.dtype);
  }
  return c;
}

// Device copy of a HostCache and the PagedKv that describes it.
struct DeviceCache {
  DeviceBuffer<uint16_t> k, v;
  DeviceBuffer<int32_t> indptr, indices, last;
  fi4j::PagedKv kv{};

  explicit DeviceCache(const HostCache& c)
      : k(c.k.size()), v(c.v.size()), indptr(c.indptr.size()), indices(c.indices.size()), last(c.last.size()) {
    k.upload(c.k);
    v.upload(c.v);
    indptr.upload(c.indptr);
    indices.upload(c.indices);
    last.upload(c.last);
    kv.k = k.ptr;
    kv.v = c.shape.combined ? static_cast<const void*>(k.ptr + c.v_offset) : v.ptr;
    kv.page_stride = c.page_stride;
    kv.token_stride = c.token_stride;
    kv.head_stride = c.head_stride;
    kv.num_pages = c.num_pages;
    kv.page_size = c.shape.page_size;
    kv.num_kv_heads = c.shape.num_kv_heads;
    kv.head_dim = c.shape.head_dim;
    kv.batch_size = static_cast<int32_t>(c.lens.size());
    if (c.shape.single) {
      kv.kv_indptr = nullptr;
      kv.kv_indices = nullptr;
      kv.kv_last_page_len = nullptr;
      kv.single_kv_len = c.lens[0];
    } else {
      kv.kv_indptr = indptr.ptr;
      kv.kv_indices = indices.ptr;
      kv.kv_last_page_len = last.ptr;
      kv.single_kv_len = 0;
    }
  }
};

std::string shape_name(const CacheShape& s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s D=%d P=%d %s%s%s%s", dtype_name(s.dtype), s.head_dim, s.page_size,
                s.layout == Layout::NHD ? "NHD" : "HND", s.combined ? "+combined" : "", s.padded ? "+padded" : "",
                s.single ? " single" : "");
  return buf;
}

std::string lens_name(const std::vector<int>& lens) {
  std::string r = "[";
  for (size_t i = 0; i < lens.size(); ++i) r += (i ? "," : "") + std::to_string(lens[i]);
  return r + "]";
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

struct DecodeCase {
  CacheShape shape;
  int num_qo_heads = 1;
  std::vector<int> lens;
  float sm_scale = 0.f;  // 0: 1/sqrt(D)
  float soft_cap = 0.f;
  int window_left = -1;
  bool rope = false;
  float rope_scale = 1.f;
  float rope_theta = 1e4f;
  bool with_lse = true;
  bool bad_page = false;  // corrupt one page id of a request: its tokens must be skipped
};

// Rotate-half RoPE of a head row at position pos, float64.
void rope_ref(std::vector<double>& x, double pos, double rcp_scale, double theta) {
  const int D = static_cast<int>(x.size()), half = D / 2;
  for (int f = 0; f < half; ++f) {
    const double freq = rcp_scale * std::pow(theta, -2.0 * f / D);
    const double c = std::cos(pos * freq), s = std::sin(pos * freq);
    const double lo = x[f], hi = x[f + half];
    x[f] = lo * c - hi * s;
    x[f + half] = hi * c + lo * s;
  }
}

// A split-KV partition of a batch: per request (in original numbering) its chunks [start, end), folded in this
// order. A request without chunks must come out as 0 and -inf.
using Chunks = std::vector<std::vector<std::pair<int, int>>>;

// Random partition: chunk cuts anywhere (not page- or tile-aligned), the last chunk may run past the request's
// end, chunks before the window start see nothing, and empty requests get zero or one (empty) chunk.
Chunks random_chunks(const std::vector<int>& lens, std::mt19937& rng) {
  auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Chunks chunks(lens.size());
  for (size_t b = 0; b < lens.size(); ++b) {
    const int L = lens[b];
    if (L == 0) {
      if (rnd(0, 1)) chunks[b].push_back({0, rnd(0, 5)});
      continue;
    }
    const int pieces = std::min(L, rnd(1, L >= 1000 ? 12 : 4));
    std::vector<int> cuts;
    for (int i = 1; i < pieces; ++i) cuts.push_back(rnd(1, L - 1));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    int prev = 0;
    for (int c : cuts) {
      chunks[b].push_back({prev, c});
      prev = c;
    }
    chunks[b].push_back({prev, L + (rnd(0, 2) == 0 ? rnd(1, 40) : 0)});
  }
  return chunks;
}

// Device work list of a partition for the batch order `order` (position i holds original request order[i]), with
// idle slots (request -1) before and after the items that the merge reads.
struct DeviceWork {
  DeviceBuffer<int32_t> request, start, end, merge_indptr;
  DeviceBuffer<float> partial_o, partial_lse;
  fi4j::DecodeWork work{};

  static std::vector<std::vector<int32_t>> build(const Chunks& chunks, const std::vector<int>& order, int lead_idle,
                                                 int trail_idle) {
    std::vector<int32_t> request(lead_idle, -1), start(lead_idle, 7), end(lead_idle, 9), indptr;
    for (size_t i = 0; i < order.size(); ++i) {
      indptr.push_back(static_cast<int32_t>(request.size()));
      for (const auto& c : chunks[order[i]]) {
        request.push_back(static_cast<int32_t>(i));
        start.push_back(c.first);
        end.push_back(c.second);
      }
    }
    indptr.push_back(static_cast<int32_t>(request.size()));
    for (int i = 0; i < trail_idle; ++i) {
      request.push_back(-1);
      start.push_back(0);
      end.push_back(100);
    }
    return {request, start, end, indptr};
  }

  DeviceWork(const std::vector<std::vector<int32_t>>& lists, int num_qo_heads, int head_dim)
      : request(lists[0].size()), start(lists[1].size()), end(lists[2].size()), merge_indptr(lists[3].size()),
        partial_o(lists[0].size() * num_qo_heads * head_dim), partial_lse(lists[0].size() * num_qo_heads) {
    request.upload(lists[0]);
    start.upload(lists[1]);
    end.upload(lists[2]);
    merge_indptr.upload(lists[3]);
    partial_o.poison();
    partial_lse.poison();
    work.request = request.ptr;
    work.kv_start = start.ptr;
    work.kv_end = end.ptr;
    work.merge_indptr = merge_indptr.ptr;
    work.num_work = static_cast<int32_t>(lists[0].size());
    work.partial_o = partial_o.ptr;
    work.partial_lse = partial_lse.ptr;
  }
};

// Output of one kernel run, in the batch order it ran with.
struct DecodeOutput {
  std::vector<uint16_t> o;
  std::vector<float> lse;
};

bool run_decode_case(const DecodeCase& dc, std::mt19937& rng, std::string& detail) {
  HostCache cache = build_cache(dc.shape, dc.lens, rng);
  const CacheShape& s = dc.shape;
  if (dc.bad_page) {
    // The first request with at least two pages gets an out-of-range id on its second page.
    for (size_t b = 0; b < dc.lens.size(); ++b) {
      if (cache.indptr[b + 1] - cache.indptr[b] >= 2) {
        cache.indices[cache.indptr[b] + 1] = cache.num_pages + 5;
        break;
      }
    }
  }
  const int B = static_cast<int>(dc.lens.size());
  const int Hq = dc.num_qo_heads, Hk = s.num_kv_heads, D = s.head_dim, g = Hq / Hk;
  const int pad = s.padded ? kRowPad : 0;
  const int64_t stride_h = D + pad, stride_n = Hq * stride_h + pad;
  const size_t qo_elems = static_cast<size_t>(B) * stride_n;
  std::uniform_real_distribution<float> val(-2.f, 2.f);
  std::vector<uint16_t> q(qo_elems, 0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hq; ++h)
      for (int d = 0; d < D; ++d) q[b * stride_n + h * stride_h + d] = to_bits(val(rng), s.dtype);
  const double sm_scale = dc.sm_scale > 0.f ? dc.sm_scale : 1.0 / std::sqrt(static_cast<double>(D));

  // ---- float64 reference, [B][Hq][D] and [B][Hq].
  std::vector<double> want_o(static_cast<size_t>(B) * Hq * D, 0.0), want_lse(static_cast<size_t>(B) * Hq, -INFINITY);
  {
    const std::vector<uint16_t>& vbuf = cache.v_buffer();
    std::vector<double> qv(D), kvec(D);
    std::vector<double> logits;
    std::vector<int> keys;
    for (int b = 0; b < B; ++b) {
      const int L = dc.lens[b], pos_q = L - 1;
      for (int h = 0; h < Hq; ++h) {
        const int kvh = h / g;
        for (int d = 0; d < D; ++d) qv[d] = from_bits(q[b * stride_n + h * stride_h + d], s.dtype);
        if (dc.rope) rope_ref(qv, pos_q, 1.0 / dc.rope_scale, dc.rope_theta);
        logits.clear();
        keys.clear();
        for (int j = 0; j < L; ++j) {
          if (dc.window_left >= 0 && j < pos_q - dc.window_left) continue;
          const int page = cache.page_of(b, j);
          if (page < 0) continue;
          const int64_t base = cache.offset(page, j % s.page_size, kvh);
          for (int d = 0; d < D; ++d) kvec[d] = from_bits(cache.k[base + d], s.dtype);
          if (dc.rope) rope_ref(kvec, j, 1.0 / dc.rope_scale, dc.rope_theta);
          double x = 0;
          for (int d = 0; d < D; ++d) x += qv[d] * kvec[d];
          x *= sm_scale;
          if (dc.soft_cap > 0.f) x = dc.soft_cap * std::tanh(x / dc.soft_cap);
          logits.push_back(x);
          keys.push_back(j);
        }
        if (logits.empty()) continue;
        double* const acc = &want_o[(static_cast<size_t>(b) * Hq + h) * D];
        const double m = *std::max_element(logits.begin(), logits.end());
        double sum = 0;
        for (size_t i = 0; i < logits.size(); ++i) {
          const double w = std::exp(logits[i] - m);
          sum += w;
          const int64_t base = cache.v_offset + cache.offset(cache.page_of(b, keys[i]), keys[i] % s.page_size, kvh);
          for (int d = 0; d < D; ++d) acc[d] += w * from_bits(vbuf[base + d], s.dtype);
        }
        for (int d = 0; d < D; ++d) acc[d] /= sum;
        want_lse[static_cast<size_t>(b) * Hq + h] = (m + std::log(sum)) / std::log(2.0);
      }
    }
  }

  DeviceCache dev(cache);
  DeviceBuffer<uint16_t> d_q(qo_elems), d_o(qo_elems);
  DeviceBuffer<float> d_lse(dc.with_lse ? static_cast<size_t>(B) * Hq : 0);
  d_q.upload(q);

  fi4j::DecodeParams base{};
  base.dtype = s.dtype;
  base.q = d_q.ptr;
  base.q_stride_n = stride_n;
  base.q_stride_h = stride_h;
  base.o = d_o.ptr;
  base.o_stride_n = stride_n;
  base.o_stride_h = stride_h;
  base.lse = dc.with_lse ? d_lse.ptr : nullptr;
  base.num_qo_heads = Hq;
  base.kv = dev.kv;
  base.variant.sm_scale = static_cast<float>(sm_scale);
  base.variant.logits_soft_cap = dc.soft_cap;
  base.variant.window_left = dc.window_left;
  base.variant.pos_encoding = dc.rope ? fi4j::PosEncoding::RopeLlama : fi4j::PosEncoding::None;
  base.variant.rope_rcp_scale = 1.f / dc.rope_scale;
  base.variant.rope_theta = dc.rope_theta;

  // Runs the kernel with poisoned outputs.
  auto run = [&](fi4j::DecodeParams p) {
    d_o.poison();
    d_lse.poison();
    CUDA_CHECK(fi4j::launch_batch_decode(p, nullptr));
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    return DecodeOutput{d_o.download(), d_lse.download()};
  };

  const double tol = s.dtype == DType::BF16 ? 1e-2 : 2e-3;
  const double lse_tol = 1e-3;
  int bad = 0;
  std::string errors;
  auto report = [&](const char* run_name, const char* what, int b, int h, int d, double got, double want) {
    if (bad++ < 5) {
      char buf[200];
      std::snprintf(buf, sizeof buf, " | %s %s b=%d h=%d d=%d got=%.6g want=%.6g", run_name, what, b, h, d, got,
                    want);
      errors += buf;
    }
  };
  // Checks an output against the reference; requests in `empty` (no split items) must be 0 and -inf.
  auto check = [&](const char* run_name, const DecodeOutput& out, const std::vector<bool>& empty, double& max_err,
                   double& max_lse_err) {
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < Hq; ++h) {
        const size_t row = static_cast<size_t>(b) * Hq + h;
        for (int d = 0; d < D; ++d) {
          const double want = empty[b] ? 0.0 : want_o[row * D + d];
          const double got = from_bits(out.o[b * stride_n + h * stride_h + d], s.dtype);
          const double err = std::fabs(got - want);
          if (!std::isfinite(got) || err > tol + tol * std::fabs(want)) report(run_name, "o", b, h, d, got, want);
          if (std::isfinite(err)) max_err = std::max(max_err, err);
        }
        if (dc.with_lse) {
          const double want = empty[b] ? -INFINITY : want_lse[row];
          const double got = out.lse[row];
          if (std::isinf(want)) {
            if (!(std::isinf(got) && got < 0)) report(run_name, "lse", b, h, -1, got, want);
          } else {
            const double err = std::fabs(got - want);
            if (!std::isfinite(got) || err > lse_tol + lse_tol * std::fabs(want))
              report(run_name, "lse", b, h, -1, got, want);
            if (std::isfinite(err)) max_lse_err = std::max(max_lse_err, err);
          }
        }
      }
    // Stride padding must still hold the poison: the kernels write nothing outside [B, Hq, D].
    for (size_t i = 0; i < qo_elems; ++i) {
      const int64_t in_row = static_cast<int64_t>(i) % stride_n;
      const bool owed = in_row < Hq * stride_h && in_row % stride_h < D;
      if (!owed && out.o[i] != kPoison16) report(run_name, "pad", -1, -1, static_cast<int>(i), out.o[i], kPoison16);
    }
  };

  const std::vector<bool> none_empty(B, false);
  double err_cc = 0, lse_cc = 0, err_tc = 0, lse_tc = 0, err_split = 0, lse_split = 0;
  fi4j::DecodeParams p = base;
  p.path = fi4j::DecodePath::CudaCores;
  const DecodeOutput cc = run(p);
  check("cc", cc, none_empty, err_cc, lse_cc);
  p.path = fi4j::DecodePath::TensorCores;
  const DecodeOutput tc = run(p);
  check("tc", tc, none_empty, err_tc, lse_tc);

  // The two paths compute the same function: relative L2 difference of o and LSE difference within 1e-3.
  double diff2 = 0, ref2 = 0, lse_diff = 0;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hq; ++h) {
      for (int d = 0; d < D; ++d) {
        const size_t i = b * stride_n + h * stride_h + d;
        const double x = from_bits(cc.o[i], s.dtype), y = from_bits(tc.o[i], s.dtype);
        diff2 += (x - y) * (x - y);
        ref2 += x * x;
      }
      if (dc.with_lse) {
        const double x = cc.lse[b * Hq + h], y = tc.lse[b * Hq + h];
        if (x != y) lse_diff = std::max(lse_diff, std::fabs(x - y) / (1.0 + std::fabs(x)));  // inf-inf: NaN
        if (std::isnan(lse_diff)) lse_diff = INFINITY;
      }
    }
  const double rel_diff = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (!(rel_diff <= 1e-3)) report("tc-vs-cc", "o rel L2", -1, -1, -1, rel_diff, 1e-3);
  if (!(lse_diff <= 1e-3)) report("tc-vs-cc", "lse", -1, -1, -1, lse_diff, 1e-3);

  // Split-KV on both paths: a random partition; then the same partition with the batch in reverse order, which
  // must give bit-identical results per request.
  const Chunks chunks = random_chunks(dc.lens, rng);
  std::vector<bool> empty(B);
  for (int b = 0; b < B; ++b) empty[b] = chunks[b].empty();
  std::vector<int> order(B), reversed(B);
  std::iota(order.begin(), order.end(), 0);
  std::reverse_copy(order.begin(), order.end(), reversed.begin());
  const int lead_idle = std::uniform_int_distribution<int>(0, 2)(rng);
  const int trail_idle = std::uniform_int_distribution<int>(0, 2)(rng);
  // Page table and queries in reverse request order (the cache itself is shared).
  std::vector<int32_t> rev_indptr{0}, rev_indices, rev_last;
  std::vector<uint16_t> rev_q(qo_elems, 0);
  if (!s.single) {
    for (int b : reversed) {
      rev_indices.insert(rev_indices.end(), cache.indices.begin() + cache.indptr[b],
                         cache.indices.begin() + cache.indptr[b + 1]);
      rev_indptr.push_back(static_cast<int32_t>(rev_indices.size()));
      rev_last.push_back(cache.last[b]);
    }
  }
  for (int i = 0; i < B; ++i)
    std::copy(q.begin() + reversed[i] * stride_n, q.begin() + (reversed[i] + 1) * stride_n, rev_q.begin() + i * stride_n);
  DeviceBuffer<int32_t> d_rev_indptr(rev_indptr.size()), d_rev_indices(rev_indices.size()), d_rev_last(rev_last.size());
  DeviceBuffer<uint16_t> d_rev_q(qo_elems);
  d_rev_indptr.upload(rev_indptr);
  d_rev_indices.upload(rev_indices);
  d_rev_last.upload(rev_last);
  d_rev_q.upload(rev_q);
  DeviceWork work(DeviceWork::build(chunks, order, lead_idle, trail_idle), Hq, D);
  DeviceWork rev_work(DeviceWork::build(chunks, reversed, trail_idle, lead_idle), Hq, D);
  int identical_mismatch = 0;
  for (fi4j::DecodePath path : {fi4j::DecodePath::CudaCores, fi4j::DecodePath::TensorCores}) {
    const char* name = path == fi4j::DecodePath::CudaCores ? "cc-split" : "tc-split";
    p = base;
    p.path = path;
    p.work = work.work;
    const DecodeOutput split = run(p);
    check(name, split, empty, err_split, lse_split);
    if (s.single) continue;  // one request: no other order
    p.q = d_rev_q.ptr;
    p.kv.kv_indptr = d_rev_indptr.ptr;
    p.kv.kv_indices = d_rev_indices.ptr;
    p.kv.kv_last_page_len = d_rev_last.ptr;
    p.work = rev_work.work;
    const DecodeOutput rev = run(p);
    for (int i = 0; i < B; ++i) {
      const int b = reversed[i];
      for (int h = 0; h < Hq; ++h) {
        if (!std::equal(rev.o.begin() + i * stride_n + h * stride_h, rev.o.begin() + i * stride_n + h * stride_h + D,
                        split.o.begin() + b * stride_n + h * stride_h) ||
            (dc.with_lse && std::memcmp(&rev.lse[i * Hq + h], &split.lse[b * Hq + h], sizeof(float)) != 0)) {
          if (identical_mismatch++ == 0) report(name, "reordered batch not bit-identical", b, h, -1, 0, 0);
        }
      }
    }
  }

  char buf[200];
  std::snprintf(buf, sizeof buf, " cc=%.1e/%.1e tc=%.1e/%.1e split=%.1e/%.1e tc-cc=%.1e/%.1e", err_cc, lse_cc, err_tc,
                lse_tc, err_split, lse_split, rel_diff, lse_diff);
  detail = buf + errors;
  return bad == 0;
}

std::string decode_case_name(const DecodeCase& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "decode %s heads=%d/%d lens=%s cap=%g win=%d rope=%s%s%s",
                shape_name(c.shape).c_str(), c.num_qo_heads, c.shape.num_kv_heads, lens_name(c.lens).c_str(),
                c.soft_cap, c.window_left,
                c.rope ? (std::to_string(c.rope_scale) + "/" + std::to_string(c.rope_theta)).c_str() : "off",
                c.with_lse ? "" : " no-lse", c.bad_page ? " bad-page" : "");
  return buf;
}

// ---------------------------------------------------------------------------------------------------------------
// Append

struct AppendCase {
  CacheShape shape;
  std::vector<int> lens;  // kv_len of each request after the append (the page table already covers it)
};

bool run_append_case(const AppendCase& ac, std::mt19937& rng, std::string& detail) {
  HostCache cache = build_cache(ac.shape, ac.lens, rng);
  const CacheShape& s = ac.shape;
  const int B = static_cast<int>(ac.lens.size()), H = s.num_kv_heads, D = s.head_dim, P = s.page_size;

  // Tokens (distinct (request, position) pairs): the tail of every request (a decode/prefill step), the last
  // slot of the page before the tail, and tokens the kernel must skip: bad request index, position past the end
  // or negative, and a token on a page whose id points outside the cache.
  std::vector<int32_t> batch_idx, pos;
  auto add = [&](int b, int t) {
    batch_idx.push_back(b);
    pos.push_back(t);
  };
  int bad_page_request = -1;
  for (int b = 0; b < B; ++b) {
    const int L = ac.lens[b];
    const int tail = std::min(L, 1 + b % 5);
    for (int t = L - tail; t < L; ++t) add(b, t);
    const int last_slot = (L - tail) / P * P - 1;
    if (last_slot >= 0) add(b, last_slot);
    if (!s.single && bad_page_request < 0 && cache.indptr[b + 1] - cache.indptr[b] >= 2 && L - tail > P) {
      bad_page_request = b;
      add(b, 0);  // page 0 of b gets an out-of-range id below
    }
  }
  add(-1, 0);
  add(B, 0);
  add(0, ac.lens[0]);
  add(0, -1);
  if (bad_page_request >= 0) cache.indices[cache.indptr[bad_page_request]] = cache.num_pages + 7;
  // The spec's rule, independently of the kernel: which tokens are written.
  std::vector<bool> valid(batch_idx.size());
  for (size_t n = 0; n < valid.size(); ++n) {
    const int b = batch_idx[n];
    valid[n] = b >= 0 && b < B && pos[n] >= 0 && pos[n] < ac.lens[b] && cache.page_of(b, pos[n]) >= 0;
  }

  const int nnz = static_cast<int>(batch_idx.size());
  const int64_t stride_h = D + kRowPad, stride_n = H * stride_h + kRowPad;  // padded source rows
  std::uniform_real_distribution<float> val(-2.f, 2.f);
  std::vector<uint16_t> keys(static_cast<size_t>(nnz) * stride_n, kPoison16), values(keys.size(), kPoison16);
  for (int n = 0; n < nnz; ++n)
    for (int h = 0; h < H; ++h)
      for (int d = 0; d < D; ++d) {
        keys[n * stride_n + h * stride_h + d] = to_bits(val(rng), s.dtype);
        values[n * stride_n + h * stride_h + d] = to_bits(val(rng), s.dtype);
      }

  DeviceCache dev(cache);
  // Expected cache: the original with the valid tokens written.
  std::vector<uint16_t> want_k = cache.k, want_v = cache.v;
  std::vector<uint16_t>& want_vbuf = s.combined ? want_k : want_v;
  for (int n = 0; n < nnz; ++n) {
    if (!valid[n]) continue;
    const int page = cache.page_of(batch_idx[n], pos[n]);
    for (int h = 0; h < H; ++h) {
      const int64_t dst = cache.offset(page, pos[n] % P, h);
      for (int d = 0; d < D; ++d) {
        want_k[dst + d] = keys[n * stride_n + h * stride_h + d];
        want_vbuf[cache.v_offset + dst + d] = values[n * stride_n + h * stride_h + d];
      }
    }
  }

  DeviceBuffer<uint16_t> d_keys(keys.size()), d_values(values.size());
  DeviceBuffer<int32_t> d_batch(batch_idx.size()), d_pos(pos.size());
  d_keys.upload(keys);
  d_values.upload(values);
  d_batch.upload(batch_idx);
  d_pos.upload(pos);
  fi4j::AppendParams p{};
  p.dtype = s.dtype;
  p.nnz = nnz;
  p.keys = d_keys.ptr;
  p.keys_stride_n = stride_n;
  p.keys_stride_h = stride_h;
  p.values = d_values.ptr;
  p.values_stride_n = stride_n;
  p.values_stride_h = stride_h;
  p.batch_indices = d_batch.ptr;
  p.positions = d_pos.ptr;
  p.k_cache = dev.k.ptr;
  p.v_cache = s.combined ? static_cast<void*>(dev.k.ptr + cache.v_offset) : dev.v.ptr;
  p.kv = dev.kv;
  CUDA_CHECK(fi4j::launch_append_paged_kv(p, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());

  int bad = 0;
  auto compare = [&](const char* what, const std::vector<uint16_t>& got, const std::vector<uint16_t>& want) {
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] != want[i] && bad++ < 5) {
        char buf[128];
        std::snprintf(buf, sizeof buf, " | %s[%zu] got=%04x want=%04x", what, i, got[i], want[i]);
        detail += buf;
      }
    }
  };
  compare("k", dev.k.download(), want_k);
  if (!s.combined) compare("v", dev.v.download(), want_v);
  char buf[64];
  std::snprintf(buf, sizeof buf, " nnz=%d (%d skipped)", nnz,
                static_cast<int>(std::count(valid.begin(), valid.end(), false)));
  detail = buf + detail;
  return bad == 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The sweep

struct Heads {
  int qo, kv;
};
// 1/1 MHA, 8/8, 8/1 (MQA), 16/2, 32/8, 16/1 (group 16: two passes on CUDA cores, one full row tile on tensor
// cores), 28/4 (group 7), 4/2 and 6/2 (groups 2 and 3: warps split rows and heads). Every case runs both paths,
// with and without a split.
const Heads kBaseHeads[] = {{1, 1}, {8, 8}, {8, 1}, {16, 2}, {32, 8}, {16, 1}, {28, 4}, {4, 2}, {6, 2}};

std::vector<DecodeCase> decode_cases(std::mt19937& rng) {
  std::vector<DecodeCase> cases;
  const DType dtypes[] = {DType::F16, DType::BF16};
  const int dims[] = {64, 128, 256};
  auto rand_len = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int index = 0;
  // Base sweep: lengths 1, P, P+1, 2P-1, an empty request, and two random ones (several tiles).
  for (DType dt : dtypes)
    for (int D : dims)
      for (int P : {1, 3, 16})
        for (const Heads& hd : kBaseHeads) {
          DecodeCase c;
          c.shape.dtype = dt;
          c.shape.head_dim = D;
          c.shape.page_size = P;
          c.shape.num_kv_heads = hd.kv;
          c.shape.layout = index % 2 ? Layout::HND : Layout::NHD;
          c.shape.combined = index % 5 == 0;
          c.num_qo_heads = hd.qo;
          c.lens = {1, P, P + 1, 2 * P - 1, 0, rand_len(2, 300), rand_len(300, 900)};
          cases.push_back(c);
          ++index;
        }
  // Variants, for every dtype and head dim.
  for (DType dt : dtypes)
    for (int D : dims) {
      auto make = [&](int P, Heads hd, Layout layout, std::vector<int> lens) {
        DecodeCase c;
        c.shape.dtype = dt;
        c.shape.head_dim = D;
        c.shape.page_size = P;
        c.shape.num_kv_heads = hd.kv;
        c.shape.layout = layout;
        c.num_qo_heads = hd.qo;
        c.lens = std::move(lens);
        return c;
      };
      const std::vector<int> mixed = {1, 17, 0, 64, 65, rand_len(100, 700)};
      DecodeCase c;
      // Soft cap 30, with sm_scale 1 so that logits reach the cap, and with the default scale.
      c = make(16, {8, 1}, Layout::NHD, mixed);
      c.soft_cap = 30.f;
      c.sm_scale = 1.f;
      cases.push_back(c);
      c = make(3, {28, 4}, Layout::HND, mixed);
      c.soft_cap = 30.f;
      cases.push_back(c);
      // Sliding windows 0, 5, 100.
      for (int w : {0, 5, 100}) {
        c = make(w == 5 ? 3 : 16, {32, 8}, w == 100 ? Layout::HND : Layout::NHD, {1, 5, 6, 7, 100, 101, 333, 0});
        c.window_left = w;
        cases.push_back(c);
      }
      // RoPE: theta 1e4 scale 1, and theta 5e5 scale 2.
      c = make(16, {8, 1}, Layout::NHD, mixed);
      c.rope = true;
      cases.push_back(c);
      c = make(3, {28, 4}, Layout::HND, mixed);
      c.rope = true;
      cases.push_back(c);
      c = make(16, {16, 2}, Layout::NHD, mixed);
      c.rope = true;
      c.rope_scale = 2.f;
      c.rope_theta = 5e5f;
      cases.push_back(c);
      // Everything at once.
      c = make(16, {32, 8}, Layout::HND, {1, 40, 0, 300, 129});
      c.rope = true;
      c.soft_cap = 30.f;
      c.sm_scale = 0.5f;
      c.window_left = 100;
      c.shape.combined = true;
      cases.push_back(c);
      // Long requests: many tiles, RoPE positions in the thousands.
      c = make(16, {8, 1}, Layout::NHD, {4000, 2500});
      c.rope = true;
      cases.push_back(c);
      c = make(16, {32, 8}, Layout::HND, {4100, 1, 3000});
      cases.push_back(c);
      // Single-request mode, NHD and HND, plain and with RoPE + window.
      for (int L : {1, 37, 700}) {
        c = make(L + 2, {8, 1}, L == 37 ? Layout::HND : Layout::NHD, {L});
        c.shape.single = true;
        cases.push_back(c);
      }
      c = make(1, {28, 4}, Layout::HND, {500});
      c.shape.page_size = 512;
      c.shape.single = true;
      c.rope = true;
      c.window_left = 64;
      cases.push_back(c);
      // Padded strides (q, o, pages) and no LSE.
      c = make(16, {16, 2}, Layout::NHD, mixed);
      c.shape.padded = true;
      c.with_lse = false;
      cases.push_back(c);
      c = make(3, {8, 8}, Layout::HND, mixed);
      c.shape.padded = true;
      c.shape.combined = true;
      cases.push_back(c);
      // A page id outside the cache: its tokens are skipped.
      c = make(16, {8, 1}, Layout::NHD, {100, 40, 0});
      c.bad_page = true;
      cases.push_back(c);
      // Group 24: three passes over the KV (CUDA cores), two row tiles (tensor cores).
      c = make(16, {24, 1}, Layout::NHD, {1, 200, 0});
      cases.push_back(c);
      // More tensor-core row-tile shapes: groups 5, 12 and 32 (two full row tiles), with soft cap, window, RoPE.
      c = make(16, {10, 2}, Layout::NHD, mixed);
      c.soft_cap = 30.f;
      cases.push_back(c);
      c = make(3, {12, 1}, Layout::HND, mixed);
      c.window_left = 37;
      cases.push_back(c);
      c = make(16, {32, 1}, Layout::NHD, {1, 300, 0, 77});
      c.rope = true;
      cases.push_back(c);
      // Long request with a window: random splits put whole chunks before the window start.
      c = make(16, {32, 8}, Layout::NHD, {3000, 17, 1500});
      c.window_left = 700;
      cases.push_back(c);
    }
  return cases;
}

std::vector<AppendCase> append_cases() {
  std::vector<AppendCase> cases;
  for (DType dt : {DType::F16, DType::BF16})
    for (int D : {64, 128, 256})
      for (int P : {1, 3, 16})
        for (int variant = 0; variant < 3; ++variant) {
          AppendCase c;
          c.shape.dtype = dt;
          c.shape.head_dim = D;
          c.shape.page_size = P;
          c.shape.num_kv_heads = variant == 2 ? 1 : 4;
          c.shape.layout = variant == 1 ? Layout::HND : Layout::NHD;
          c.shape.combined = variant == 2;
          c.shape.padded = variant == 1;
          c.lens = {5, 1, P, P + 1, 2 * P - 1, 0, 3 * P + 2, 40};
          cases.push_back(c);
        }
  for (Layout layout : {Layout::NHD, Layout::HND}) {
    AppendCase c;
    c.shape.dtype = DType::BF16;
    c.shape.head_dim = 128;
    c.shape.page_size = 64;
    c.shape.num_kv_heads = 2;
    c.shape.layout = layout;
    c.shape.single = true;
    c.lens = {50};
    cases.push_back(c);
  }
  return cases;
}

}  // namespace

int main() {
  int device_count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&device_count));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);

  std::mt19937 rng(20261125);
  int passed = 0, failed = 0;
  auto record = [&](bool ok, const std::string& name, const std::string& detail) {
    std::printf("%s %s%s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
    (ok ? passed : failed)++;
  };

  // The launchers refuse what has no kernel.
  {
    fi4j::DecodeParams p{};
    p.dtype = DType::F32;
    p.kv.head_dim = 128;
    p.kv.batch_size = 1;
    p.kv.num_kv_heads = 1;
    const bool ok1 = fi4j::launch_batch_decode(p, nullptr) == cudaErrorNotSupported;
    p.dtype = DType::F16;
    p.kv.head_dim = 96;
    const bool ok2 = fi4j::launch_batch_decode(p, nullptr) == cudaErrorNotSupported;
    fi4j::AppendParams a{};
    a.dtype = DType::F16;
    a.nnz = 1;
    a.kv.num_kv_heads = 1;
    a.kv.head_dim = 20;  // not whole 16-byte units (any multiple of 8 has the run-time-sized append kernel)
    const bool ok3 = fi4j::launch_append_paged_kv(a, nullptr) == cudaErrorNotSupported;
    record(ok1 && ok2 && ok3, "unsupported configurations return cudaErrorNotSupported", "");
  }

  for (const DecodeCase& c : decode_cases(rng)) {
    std::string detail;
    const bool ok = run_decode_case(c, rng, detail);
    record(ok, decode_case_name(c), detail);
  }
  for (const AppendCase& c : append_cases()) {
    std::string detail;
    const bool ok = run_append_case(c, rng, detail);
    record(ok, "append " + shape_name(c.shape) + " heads=" + std::to_string(c.shape.num_kv_heads) + " lens=" +
                   lens_name(c.lens),
           detail);
  }
  CUDA_CHECK(cudaGetLastError());
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
