// Standalone check of run-time compiled decode and prefill on a GPU machine without Java (not part of CI):
//   cmake -S . -B /tmp/fi4j-build -DFI4J_BUILD_JIT_SMOKE=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
//       -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc && cmake --build /tmp/fi4j-build -j 16 --target fi4j_jit_smoke
//   /tmp/fi4j-build/fi4j_jit_smoke [cache-dir]
// Warms up head dims 96 and 192 (prints compile/load times), then runs batch decode through the C API on device 0
// (bf16/fp16, GQA groups 1/4/8, soft cap, RoPE, with and without split-KV) and compares it with the CPU
// reference backend; then warms up prefill at 96 and 192 and runs batch prefill (ragged and paged, masks none /
// causal / custom, GQA groups 1/4/8, soft cap, RoPE, window) against the CPU reference.
// The last line is "jit smoke: N passed, N failed"; the exit code is 0 when all passed.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "flashinfer4j/flashinfer4j.h"

namespace {

int g_failed = 0, g_passed = 0;

bool ok(int status, const char* what) {
  if (status == FI4J_OK) return true;
  std::printf("  %s failed (%d): %s\n", what, status, fi4j_last_error());
  return false;
}

std::vector<uint16_t> to16(const std::vector<float>& f, int dtype) {
  std::vector<uint16_t> out(f.size());
  fi4j_convert_host(f.data(), FI4J_F32, out.data(), dtype, static_cast<int64_t>(f.size()));
  return out;
}

std::vector<float> to32(const std::vector<uint16_t>& h, int dtype) {
  std::vector<float> out(h.size());
  fi4j_convert_host(h.data(), dtype, out.data(), FI4J_F32, static_cast<int64_t>(h.size()));
  return out;
}

struct Case {
  int dtype, head_dim, group;
  bool cap, rope, split;
};

void* to_device(const void* host, int64_t bytes) {
  void* d = nullptr;
  if (!ok(fi4j_malloc(0, bytes > 0 ? bytes : 16, &d), "fi4j_malloc")) std::exit(2);
  if (bytes > 0 && !ok(fi4j_memcpy(0, d, FI4J_DEVICE_CPU, host, bytes), "fi4j_memcpy")) std::exit(2);
  return d;
}

void run_case(const Case& c, uint64_t seed) {
  const int page = 16, hkv = 2, hqo = hkv * c.group, d = c.head_dim;
  const std::vector<int> lens = {1, 37, 300, 0, 1000};
  const int batch = static_cast<int>(lens.size());
  std::vector<int32_t> indptr(batch + 1, 0), last(batch), indices;
  for (int b = 0; b < batch; ++b) {
    const int pages = (lens[b] + page - 1) / page;
    indptr[b + 1] = indptr[b] + pages;
    last[b] = pages == 0 ? 0 : lens[b] - (pages - 1) * page;
  }
  const int num_pages = indptr[batch];
  for (int i = 0; i < num_pages; ++i) indices.push_back((i * 7 + 3) % num_pages);  // scrambled page order
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> kf(static_cast<size_t>(num_pages) * page * hkv * d), vf(kf.size()),
      qf(static_cast<size_t>(batch) * hqo * d);
  for (auto& x : kf) x = u(rng);
  for (auto& x : vf) x = u(rng);
  for (auto& x : qf) x = u(rng);
  const auto k16 = to16(kf, c.dtype), v16 = to16(vf, c.dtype), q16 = to16(qf, c.dtype);

  fi4j_decode_args a{};
  a.num_qo_heads = hqo;
  a.dtype = c.dtype;
  a.q_stride_n = static_cast<int64_t>(hqo) * d;
  a.q_stride_h = d;
  a.o_stride_n = a.q_stride_n;
  a.o_stride_h = d;
  a.kv.page_stride = static_cast<int64_t>(page) * hkv * d;  // NHD
  a.kv.token_stride = static_cast<int64_t>(hkv) * d;
  a.kv.head_stride = d;
  a.kv.num_pages = num_pages;
  a.kv.page_size = page;
  a.kv.num_kv_heads = hkv;
  a.kv.head_dim = d;
  a.kv.dtype = c.dtype;
  a.kv.batch_size = batch;
  a.kv.num_indices = num_pages;
  a.options.logits_soft_cap = c.cap ? 30.f : 0.f;
  a.options.window_left = -1;
  a.options.pos_encoding = c.rope ? FI4J_POS_ROPE_LLAMA : FI4J_POS_NONE;
  a.options.rope_scale = 1.f;
  a.options.rope_theta = 1e4f;

  // CPU reference
  std::vector<uint16_t> o_cpu(qf.size());
  std::vector<float> lse_cpu(static_cast<size_t>(batch) * hqo);
  fi4j_decode_args ac = a;
  ac.q = q16.data();
  ac.o = o_cpu.data();
  ac.lse = lse_cpu.data();
  ac.kv.k = k16.data();
  ac.kv.v = v16.data();
  ac.kv.kv_indptr = indptr.data();
  ac.kv.kv_indices = indices.data();
  ac.kv.kv_last_page_len = last.data();
  ac.path = FI4J_PATH_CUDA_CORES;
  char label[200];
  std::snprintf(label, sizeof label, "%s d=%d g=%d cap=%d rope=%d split=%d", c.dtype == FI4J_BF16 ? "bf16" : "f16",
                d, c.group, c.cap, c.rope, c.split);
  if (!ok(fi4j_batch_decode(FI4J_DEVICE_CPU, &ac, nullptr), "CPU decode")) {
    ++g_failed;
    return;
  }

  // CUDA
  fi4j_decode_args ag = a;
  ag.q = to_device(q16.data(), q16.size() * 2);
  void* o_dev = nullptr;
  fi4j_malloc(0, static_cast<int64_t>(qf.size()) * 2, &o_dev);
  fi4j_memset(0, o_dev, 0xff, static_cast<int64_t>(qf.size()) * 2);  // poison: unwritten outputs show as NaN
  void* lse_dev = nullptr;
  fi4j_malloc(0, static_cast<int64_t>(lse_cpu.size()) * 4, &lse_dev);
  fi4j_memset(0, lse_dev, 0xff, static_cast<int64_t>(lse_cpu.size()) * 4);
  ag.o = o_dev;
  ag.lse = lse_dev;
  ag.kv.k = to_device(k16.data(), k16.size() * 2);
  ag.kv.v = to_device(v16.data(), v16.size() * 2);
  ag.kv.kv_indptr = to_device(indptr.data(), indptr.size() * 4);
  ag.kv.kv_indices = to_device(indices.data(), indices.size() * 4);
  ag.kv.kv_last_page_len = to_device(last.data(), last.size() * 4);
  const int64_t ws_bytes = 64ll << 20;
  void* ws = nullptr;
  fi4j_malloc(0, ws_bytes, &ws);
  fi4j_decode_plan plan{};
  plan.batch_size = batch;
  plan.num_qo_heads = hqo;
  plan.num_kv_heads = hkv;
  plan.head_dim = d;
  plan.page_size = page;
  plan.window_left = -1;
  plan.kv_indptr_host = indptr.data();
  plan.kv_last_page_len_host = last.data();
  plan.split_mode = c.split ? FI4J_SPLIT_FIXED : FI4J_SPLIT_NEVER;
  plan.fixed_chunk = 64;
  plan.path = FI4J_PATH_AUTO;
  bool good = ok(fi4j_batch_decode_plan(0, &plan, ws, ws_bytes, nullptr), "plan");
  if (good) {
    ag.num_work = plan.num_work;
    ag.path = plan.chosen_path;
    ag.workspace = ws;
    ag.workspace_bytes = ws_bytes;
    good = ok(fi4j_batch_decode(0, &ag, nullptr), "CUDA decode") && ok(fi4j_device_synchronize(0), "synchronize");
  }
  double max_err = 0, max_lse_err = 0;
  if (good) {
    std::vector<uint16_t> o_gpu(qf.size());
    std::vector<float> lse_gpu(lse_cpu.size());
    fi4j_memcpy(FI4J_DEVICE_CPU, o_gpu.data(), 0, o_dev, static_cast<int64_t>(o_gpu.size()) * 2);
    fi4j_memcpy(FI4J_DEVICE_CPU, lse_gpu.data(), 0, lse_dev, static_cast<int64_t>(lse_gpu.size()) * 4);
    const auto og = to32(o_gpu, c.dtype), oc = to32(o_cpu, c.dtype);
    const double tol = c.dtype == FI4J_BF16 ? 1e-2 : 2e-3;
    for (size_t i = 0; i < og.size(); ++i) {
      const double err = std::fabs(og[i] - oc[i]);
      if (!(err <= tol + tol * std::fabs(oc[i]))) good = false;
      if (!(err <= max_err)) max_err = err;  // NaN propagates
    }
    for (size_t i = 0; i < lse_gpu.size(); ++i) {
      if (std::isinf(lse_cpu[i]) && lse_gpu[i] == lse_cpu[i]) continue;
      const double err = std::fabs(lse_gpu[i] - lse_cpu[i]);
      if (!(err <= 1e-3 + 1e-3 * std::fabs(lse_cpu[i]))) good = false;
      if (!(err <= max_lse_err)) max_lse_err = err;
    }
  }
  std::printf("%s %-44s work=%d path=%d max|o err|=%.3g max|lse err|=%.3g\n", good ? "PASS" : "FAIL", label,
              plan.num_work, plan.chosen_path, max_err, max_lse_err);
  (good ? g_passed : g_failed)++;
  for (const void* p : {ag.q, const_cast<const void*>(ag.o), const_cast<const void*>(static_cast<void*>(ag.lse)),
                        ag.kv.k, ag.kv.v, ag.kv.kv_indptr, ag.kv.kv_indices, ag.kv.kv_last_page_len,
                        const_cast<const void*>(ws)})
    fi4j_free(0, const_cast<void*>(p));
}


struct PrefillCase {
  int dtype, head_dim, group;
  bool cap, rope, paged;
  int mask;  // fi4j_mask_mode
  int window;
};

void run_prefill_case(const PrefillCase& c, uint64_t seed) {
  const int hkv = 2, hqo = hkv * c.group, d = c.head_dim, page = 16;
  const std::vector<int> qo_lens = {1, 37, 0, 130, 300}, kv_lens = {17, 37, 5, 200, 300};
  const int batch = static_cast<int>(qo_lens.size());
  std::vector<int32_t> qo_indptr(batch + 1, 0), kv_indptr(batch + 1, 0);
  for (int b = 0; b < batch; ++b) {
    qo_indptr[b + 1] = qo_indptr[b] + qo_lens[b];
    kv_indptr[b + 1] = kv_indptr[b] + kv_lens[b];
  }
  const int nnz_qo = qo_indptr[batch], nnz_kv = kv_indptr[batch];
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> qf(static_cast<size_t>(nnz_qo) * hqo * d), kf(static_cast<size_t>(nnz_kv) * hkv * d),
      vf(kf.size());
  for (auto& x : qf) x = u(rng);
  for (auto& x : kf) x = u(rng);
  for (auto& x : vf) x = u(rng);
  const auto q16 = to16(qf, c.dtype), k16 = to16(kf, c.dtype), v16 = to16(vf, c.dtype);

  // Paged copy of K/V: NHD pages, each request's pages scattered over the pool.
  std::vector<int32_t> page_indptr(batch + 1, 0), last(batch), indices;
  for (int b = 0; b < batch; ++b) {
    const int pages = (kv_lens[b] + page - 1) / page;
    page_indptr[b + 1] = page_indptr[b] + pages;
    last[b] = pages == 0 ? 0 : kv_lens[b] - (pages - 1) * page;
  }
  const int num_pages = page_indptr[batch];
  for (int i = 0; i < num_pages; ++i) indices.push_back((i * 7 + 3) % num_pages);
  const size_t page_elems = static_cast<size_t>(page) * hkv * d;
  std::vector<uint16_t> kc(num_pages * page_elems), vc(kc.size());
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < kv_lens[b]; ++j) {
      const size_t src = static_cast<size_t>(kv_indptr[b] + j) * hkv * d;
      const size_t dst = indices[page_indptr[b] + j / page] * page_elems + static_cast<size_t>(j % page) * hkv * d;
      std::copy(k16.begin() + src, k16.begin() + src + hkv * d, kc.begin() + dst);
      std::copy(v16.begin() + src, v16.begin() + src + hkv * d, vc.begin() + dst);
    }

  // Custom mask: random bits (p = 0.7), packed per request.
  std::vector<uint8_t> bits;
  std::vector<int32_t> bit_indptr(batch + 1, 0);
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < qo_lens[b] * kv_lens[b]; ++i) bits.push_back(u(rng) < 0.4f ? 1 : 0);
    bit_indptr[b + 1] = static_cast<int32_t>(bits.size());
  }
  std::vector<uint8_t> packed(bits.size() / 8 + batch + 1);
  std::vector<int32_t> mask_indptr(batch + 1);
  if (!ok(fi4j_segment_packbits(bits.data(), bit_indptr.data(), batch, packed.data(),
                                static_cast<int64_t>(packed.size()), mask_indptr.data()),
          "fi4j_segment_packbits")) {
    ++g_failed;
    return;
  }

  fi4j_prefill_args a{};
  a.dtype = c.dtype;
  a.batch_size = batch;
  a.num_qo_heads = hqo;
  a.num_kv_heads = hkv;
  a.head_dim = d;
  a.nnz_qo = nnz_qo;
  a.q_stride_n = static_cast<int64_t>(hqo) * d;
  a.q_stride_h = d;
  a.o_stride_n = a.q_stride_n;
  a.o_stride_h = d;
  a.kv_storage = c.paged ? FI4J_KV_PAGED : FI4J_KV_RAGGED;
  a.k_stride_n = static_cast<int64_t>(hkv) * d;
  a.k_stride_h = d;
  a.v_stride_n = a.k_stride_n;
  a.v_stride_h = d;
  a.nnz_kv = nnz_kv;
  a.paged_kv.page_stride = static_cast<int64_t>(page_elems);
  a.paged_kv.token_stride = static_cast<int64_t>(hkv) * d;
  a.paged_kv.head_stride = d;
  a.paged_kv.num_pages = num_pages;
  a.paged_kv.page_size = page;
  a.paged_kv.num_kv_heads = hkv;
  a.paged_kv.head_dim = d;
  a.paged_kv.dtype = c.dtype;
  a.paged_kv.batch_size = batch;
  a.paged_kv.num_indices = num_pages;
  a.mask_mode = c.mask;
  a.custom_mask_bytes = mask_indptr[batch];
  a.options.logits_soft_cap = c.cap ? 30.f : 0.f;
  a.options.window_left = c.window;
  a.options.pos_encoding = c.rope ? FI4J_POS_ROPE_LLAMA : FI4J_POS_NONE;
  a.options.rope_scale = 1.f;
  a.options.rope_theta = 1e4f;

  char label[200];
  std::snprintf(label, sizeof label, "%s d=%d g=%d cap=%d rope=%d %s mask=%d window=%d",
                c.dtype == FI4J_BF16 ? "bf16" : "f16", d, c.group, c.cap, c.rope, c.paged ? "paged" : "ragged", c.mask,
                c.window);

  // CPU reference: host memory, no plan.
  std::vector<uint16_t> o_cpu(qf.size());
  std::vector<float> lse_cpu(static_cast<size_t>(nnz_qo) * hqo);
  fi4j_prefill_args ac = a;
  ac.qo_indptr = qo_indptr.data();
  ac.q = q16.data();
  ac.o = o_cpu.data();
  ac.lse = lse_cpu.data();
  ac.k = k16.data();
  ac.v = v16.data();
  ac.kv_indptr = kv_indptr.data();
  ac.paged_kv.k = kc.data();
  ac.paged_kv.v = vc.data();
  ac.paged_kv.kv_indptr = page_indptr.data();
  ac.paged_kv.kv_indices = indices.data();
  ac.paged_kv.kv_last_page_len = last.data();
  ac.custom_mask = packed.data();
  ac.mask_indptr = mask_indptr.data();
  if (!ok(fi4j_batch_prefill(FI4J_DEVICE_CPU, &ac, nullptr), "CPU prefill")) {
    ++g_failed;
    return;
  }

  // CUDA: plan on host arrays, run on device copies.
  fi4j_prefill_args ag = a;
  std::vector<void*> owned;
  auto dev = [&](const void* host, int64_t bytes) {  // host nullptr: allocate only
    void* p = nullptr;
    if (host != nullptr) {
      p = to_device(host, bytes);
    } else if (!ok(fi4j_malloc(0, bytes > 0 ? bytes : 16, &p), "fi4j_malloc")) {
      std::exit(2);
    }
    owned.push_back(p);
    return p;
  };
  ag.qo_indptr = dev(qo_indptr.data(), qo_indptr.size() * 4);
  ag.q = dev(q16.data(), q16.size() * 2);
  ag.o = dev(nullptr, static_cast<int64_t>(qf.size()) * 2);
  ag.lse = dev(nullptr, static_cast<int64_t>(lse_cpu.size()) * 4);
  fi4j_memset(0, ag.o, 0xff, static_cast<int64_t>(qf.size()) * 2);  // poison: unwritten outputs show as NaN
  fi4j_memset(0, ag.lse, 0xff, static_cast<int64_t>(lse_cpu.size()) * 4);
  ag.k = dev(k16.data(), k16.size() * 2);
  ag.v = dev(v16.data(), v16.size() * 2);
  ag.kv_indptr = dev(kv_indptr.data(), kv_indptr.size() * 4);
  ag.paged_kv.k = dev(kc.data(), kc.size() * 2);
  ag.paged_kv.v = dev(vc.data(), vc.size() * 2);
  ag.paged_kv.kv_indptr = dev(page_indptr.data(), page_indptr.size() * 4);
  ag.paged_kv.kv_indices = dev(indices.data(), indices.size() * 4);
  ag.paged_kv.kv_last_page_len = dev(last.data(), last.size() * 4);
  ag.custom_mask = dev(packed.data(), mask_indptr[batch]);
  ag.mask_indptr = dev(mask_indptr.data(), mask_indptr.size() * 4);
  const int64_t ws_bytes = 16ll << 20;
  void* ws = dev(nullptr, ws_bytes);
  fi4j_prefill_plan plan{};
  plan.batch_size = batch;
  plan.num_qo_heads = hqo;
  plan.num_kv_heads = hkv;
  plan.head_dim = d;
  plan.page_size = c.paged ? page : 0;
  plan.mask_mode = c.mask;
  plan.window_left = c.window;
  plan.qo_indptr_host = qo_indptr.data();
  plan.kv_len_host = kv_lens.data();
  bool good = ok(fi4j_batch_prefill_plan(0, &plan, ws, ws_bytes, nullptr), "prefill plan");
  if (good) {
    ag.num_work = plan.num_work;
    ag.cta_tile_q = plan.cta_tile_q;
    ag.workspace = ws;
    ag.workspace_bytes = ws_bytes;
    good = ok(fi4j_batch_prefill(0, &ag, nullptr), "CUDA prefill") && ok(fi4j_device_synchronize(0), "synchronize");
  }
  double max_err = 0, max_lse_err = 0;
  if (good) {
    std::vector<uint16_t> o_gpu(qf.size());
    std::vector<float> lse_gpu(lse_cpu.size());
    fi4j_memcpy(FI4J_DEVICE_CPU, o_gpu.data(), 0, ag.o, static_cast<int64_t>(o_gpu.size()) * 2);
    fi4j_memcpy(FI4J_DEVICE_CPU, lse_gpu.data(), 0, ag.lse, static_cast<int64_t>(lse_gpu.size()) * 4);
    const auto og = to32(o_gpu, c.dtype), oc = to32(o_cpu, c.dtype);
    const double tol = c.dtype == FI4J_BF16 ? 1e-2 : 2e-3;
    for (size_t i = 0; i < og.size(); ++i) {
      const double err = std::fabs(og[i] - oc[i]);
      if (!(err <= tol + tol * std::fabs(oc[i]))) good = false;
      if (!(err <= max_err)) max_err = err;
    }
    for (size_t i = 0; i < lse_gpu.size(); ++i) {
      if (std::isinf(lse_cpu[i]) && lse_gpu[i] == lse_cpu[i]) continue;
      const double err = std::fabs(lse_gpu[i] - lse_cpu[i]);
      if (!(err <= 1e-3 + 1e-3 * std::fabs(lse_cpu[i]))) good = false;
      if (!(err <= max_lse_err)) max_lse_err = err;
    }
  }
  std::printf("%s prefill %-56s cta_tile_q=%d max|o err|=%.3g max|lse err|=%.3g\n", good ? "PASS" : "FAIL", label,
              plan.cta_tile_q, max_err, max_lse_err);
  (good ? g_passed : g_failed)++;
  for (void* p : owned) fi4j_free(0, p);
}

}  // namespace

int main(int argc, char** argv) {
  int count = 0;
  if (fi4j_device_count(&count) != FI4J_OK || count == 0) {
    std::printf("no CUDA device: %s\n", fi4j_no_device_reason());
    return 2;
  }
  int available = 0;
  fi4j_jit_available(&available);
  if (!available) {
    std::printf("NVRTC unavailable: %s\n", fi4j_jit_unavailable_reason());
    return 2;
  }
  std::string dir = argc > 1 ? argv[1] : "/tmp/fi4j-jit-smoke-" + std::to_string(getpid());
  fi4j_jit_set_cache_dir(dir.c_str());
  std::printf("cache dir %s\n", fi4j_jit_cache_dir());

  // Warm-up: the first prepare compiles (or finds the disk cache), the second finds the loaded module.
  for (int d : {96, 192}) {
    for (int pass = 0; pass < 2; ++pass) {
      fi4j_kernel_config cfg{FI4J_OP_DECODE, FI4J_BF16, d, 0, FI4J_POS_NONE, FI4J_PATH_AUTO};
      fi4j_kernel_prepare_info info{};
      if (!ok(fi4j_kernel_prepare(0, &cfg, &info), "fi4j_kernel_prepare")) {
        ++g_failed;
        continue;
      }
      std::printf("prepare d=%d pass %d: route=%d origin=%d loaded=%d compile %.1f ms, total %.1f ms, key %s\n", d,
                  pass, info.route, info.origin, info.loaded, info.compile_ms, info.total_ms, info.key);
    }
  }

  uint64_t seed = 1;
  for (int dtype : {FI4J_BF16, FI4J_F16}) {
    for (int d : {96, 192}) {
      for (int group : {1, 4, 8}) {
        run_case({dtype, d, group, false, false, false}, seed++);
        run_case({dtype, d, group, false, false, true}, seed++);
      }
      run_case({dtype, d, 4, true, false, true}, seed++);
      run_case({dtype, d, 1, false, true, false}, seed++);
      run_case({dtype, d, 8, true, true, true}, seed++);
    }
  }
  // Other head dims, and an ahead-of-time one as the control.
  for (int d : {16, 80, 160, 240, 128}) run_case({FI4J_BF16, d, 4, true, true, true}, seed++);

  // Prefill: warm-up, then batch prefill over the variants; an ahead-of-time head dim as the control.
  for (int d : {96, 192}) {
    for (int pass = 0; pass < 2; ++pass) {
      fi4j_kernel_config cfg{FI4J_OP_PREFILL, FI4J_BF16, d, 0, FI4J_POS_NONE, FI4J_PATH_AUTO};
      fi4j_kernel_prepare_info info{};
      if (!ok(fi4j_kernel_prepare(0, &cfg, &info), "fi4j_kernel_prepare (prefill)")) {
        ++g_failed;
        continue;
      }
      std::printf("prepare prefill d=%d pass %d: route=%d origin=%d loaded=%d compile %.1f ms, total %.1f ms, key %s\n",
                  d, pass, info.route, info.origin, info.loaded, info.compile_ms, info.total_ms, info.key);
    }
  }
  for (int dtype : {FI4J_BF16, FI4J_F16}) {
    for (int d : {96, 192}) {
      for (int group : {1, 4, 8}) {
        run_prefill_case({dtype, d, group, false, false, false, FI4J_MASK_CAUSAL, -1}, seed++);
        run_prefill_case({dtype, d, group, false, false, true, FI4J_MASK_NONE, -1}, seed++);
        run_prefill_case({dtype, d, group, true, false, group == 4, FI4J_MASK_CUSTOM, -1}, seed++);
      }
      run_prefill_case({dtype, d, 4, true, true, false, FI4J_MASK_CAUSAL, -1}, seed++);
      run_prefill_case({dtype, d, 8, false, true, true, FI4J_MASK_CUSTOM, 50}, seed++);
    }
  }
  for (int d : {80, 48, 160, 240, 128}) run_prefill_case({FI4J_BF16, d, 4, true, true, true, FI4J_MASK_CAUSAL, 40}, seed++);
  for (int d : {80, 112}) run_prefill_case({FI4J_F16, d, 8, true, false, false, FI4J_MASK_CAUSAL, -1}, seed++);

  int64_t files = 0, bytes = 0;
  fi4j_jit_cache_stats(&files, &bytes);
  std::printf("cache: %lld files, %lld bytes\n", static_cast<long long>(files), static_cast<long long>(bytes));
  std::printf("jit smoke: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
