// Standalone CUDA-event benchmark of batch decode on the PEERS.md shapes: bf16, page 16, NHD, head_dim 128.
//
// Build and run from the repository root (one line):
//   /usr/local/cuda/bin/nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -Icuda/include cuda/tests/decode_bench.cu cuda/kernels/attention/decode.cu cuda/kernels/attention/decode_tc.cu -o /tmp/decode_bench && /tmp/decode_bench
//
// For each shape (B x kv_len, H_qo/H_kv) and each configuration (CUDA-core or tensor-core path; no split, or a
// simple split-KV partition into equal page-aligned chunks: "s-" with the most chunks that keep
// num_work * H_kv <= 2 * SMs (one wave of the tensor-core kernel, two blocks per SM), "s+" with the fewest that
// reach num_work * H_kv >= 2 * SMs; both are one chunk per request once batch * H_kv >= 2 * SMs), it prints the
// median over kRuns timed runs of K+V bytes / time in TB/s. Inputs: random bf16 (never zeros), pages of each
// request scattered by a shuffled page table, K+V far larger than L2, and L2 flushed before every timed run,
// in one of two ways (first argument): "write" (default) clears a 256 MB buffer, as torch/triton do_bench do,
// which leaves up to an L2 of dirty lines whose write-back competes with the timed kernel; "read" reads the
// buffer instead, so the timed kernel starts with a clean L2. An optional second argument runs only the shapes whose
// name starts with it (e.g. "1x32768").
// Then the largest |difference| of any configuration's output from the CUDA-core no-split one, a sanity check (the
// harness is the correctness test), and "tc+s+ -m": the tc+s+ decode kernel alone, without its merge.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "fi4j/attention/decode_launch.cuh"
#include "fi4j/attention/launch.h"
#include "harness_util.cuh"


namespace {

#ifndef FI4J_BENCH_D
#define FI4J_BENCH_D 128
#endif
constexpr int kHeadDim = FI4J_BENCH_D;
constexpr int kPageSize = 16;
constexpr int kWarmup = 3;
constexpr int kRuns = 25;

/// Fills n bf16 values with a hash of (seed, index), uniform in [-2, 2).
__global__ void fill_bf16(__nv_bfloat16* p, size_t n, unsigned long long seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned long long x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    p[i] = __float2bfloat16_rn(static_cast<float>(x >> 40) * (4.f / 16777216.f) - 2.f);
  }
}

/// Reads n 16-byte words (the L2 flush that leaves only clean lines behind); the sink write keeps it alive.
__global__ void read_flush(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

template <typename T>
T* device_alloc(size_t n) {
  T* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  return p;
}

template <typename T>
T* device_upload(const std::vector<T>& h) {
  T* p = device_alloc<T>(h.size());
  CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

struct Shape {
  int batch, kv_len, qo_heads, kv_heads;
};

// A split-KV work list: every request cut into `chunks` chunks of whole pages.
struct Work {
  int32_t *request = nullptr, *start = nullptr, *end = nullptr, *indptr = nullptr;
  float *partial_o = nullptr, *partial_lse = nullptr;
  int num_work = 0;
  int chunks = 0;

  Work(const Shape& s, int target_blocks, bool round_up) {
    const int blocks = s.batch * s.kv_heads;
    chunks = std::max(1, round_up ? (target_blocks + blocks - 1) / blocks : target_blocks / blocks);
    const int chunk = (s.kv_len + chunks - 1) / chunks;
    const int chunk_len = (chunk + kPageSize - 1) / kPageSize * kPageSize;
    std::vector<int32_t> req, st, en, ip;
    for (int b = 0; b < s.batch; ++b) {
      ip.push_back(static_cast<int32_t>(req.size()));
      for (int t = 0; t < s.kv_len; t += chunk_len) {
        req.push_back(b);
        st.push_back(t);
        en.push_back(std::min(s.kv_len, t + chunk_len));
      }
    }
    ip.push_back(static_cast<int32_t>(req.size()));
    num_work = static_cast<int>(req.size());
    chunks = num_work / s.batch;
    request = device_upload(req);
    start = device_upload(st);
    end = device_upload(en);
    indptr = device_upload(ip);
    partial_o = device_alloc<float>(static_cast<size_t>(num_work) * s.qo_heads * kHeadDim);
    partial_lse = device_alloc<float>(static_cast<size_t>(num_work) * s.qo_heads);
  }
  ~Work() {
    for (void* p : {static_cast<void*>(request), static_cast<void*>(start), static_cast<void*>(end),
                    static_cast<void*>(indptr), static_cast<void*>(partial_o), static_cast<void*>(partial_lse)})
      CUDA_CHECK(cudaFree(p));
  }
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  fi4j::DecodeWork get() const {
    fi4j::DecodeWork w{};
    w.request = request;
    w.kv_start = start;
    w.kv_end = end;
    w.merge_indptr = indptr;
    w.num_work = num_work;
    w.partial_o = partial_o;
    w.partial_lse = partial_lse;
    return w;
  }
};

float bf16_to_float(uint16_t u) {
  const uint32_t bits = static_cast<uint32_t>(u) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const bool read_mode = argc > 1 && std::strcmp(argv[1], "read") == 0;
  const char* const only = argc > 2 ? argv[2] : nullptr;  // run only the shapes whose name starts with this
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %d MB)\n", prop.name, prop.major, prop.minor, sms,
              prop.l2CacheSize >> 20);

  const Shape shapes[] = {{1, 32768, 32, 8},  {16, 4096, 32, 8}, {64, 4096, 32, 8},  {128, 2048, 32, 8},
                          {256, 1024, 32, 8}, {64, 8192, 32, 8}, {64, 4096, 32, 32}, {64, 4096, 64, 8},
                          {64, 512, 32, 8},   {256, 256, 32, 8}};
  // L2 flush: writing a buffer of several L2 sizes evicts the previous run's K/V.
  const size_t flush_bytes = std::max<size_t>(256u << 20, 4 * static_cast<size_t>(prop.l2CacheSize));
  void* flush = device_alloc<unsigned char>(flush_bytes);
  unsigned* sink = device_alloc<unsigned>(1);
  CUDA_CHECK(cudaMemset(flush, 0x5a, flush_bytes));
  std::printf("L2 flush before each run: %s\n", read_mode ? "read 256 MB (clean L2)" : "write 256 MB (dirty L2)");
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::mt19937 rng(12345);

  std::printf("%-18s %-7s %8s %8s %8s %8s %8s %8s %10s %9s\n", "shape", "chunks", "cc", "cc+s-", "cc+s+", "tc", "tc+s-",
              "tc+s+", "max|diff|", "tc+s+ -m");
  for (const Shape& s : shapes) {
    char name[32];
    std::snprintf(name, sizeof name, "%dx%d %d/%d", s.batch, s.kv_len, s.qo_heads, s.kv_heads);
    if (only != nullptr && std::strncmp(name, only, std::strlen(only)) != 0) continue;
    const int pages_per_req = (s.kv_len + kPageSize - 1) / kPageSize;
    const int num_pages = s.batch * pages_per_req;
    const size_t page_elems = static_cast<size_t>(kPageSize) * s.kv_heads * kHeadDim;
    const size_t cache_elems = static_cast<size_t>(num_pages) * page_elems;
    auto* k = device_alloc<__nv_bfloat16>(cache_elems);
    auto* v = device_alloc<__nv_bfloat16>(cache_elems);
    const size_t qo_elems = static_cast<size_t>(s.batch) * s.qo_heads * kHeadDim;
    auto* q = device_alloc<__nv_bfloat16>(qo_elems);
    auto* o = device_alloc<__nv_bfloat16>(qo_elems);
    auto* lse = device_alloc<float>(static_cast<size_t>(s.batch) * s.qo_heads);
    fill_bf16<<<1024, 256>>>(k, cache_elems, 1);
    fill_bf16<<<1024, 256>>>(v, cache_elems, 2);
    fill_bf16<<<1024, 256>>>(q, qo_elems, 3);
    CUDA_CHECK(cudaGetLastError());
    std::vector<int32_t> indices(num_pages), indptr(s.batch + 1), last(s.batch);
    std::iota(indices.begin(), indices.end(), 0);
    std::shuffle(indices.begin(), indices.end(), rng);
    for (int b = 0; b <= s.batch; ++b) indptr[b] = b * pages_per_req;
    for (int b = 0; b < s.batch; ++b) last[b] = s.kv_len - (pages_per_req - 1) * kPageSize;
    int32_t* d_indices = device_upload(indices);
    int32_t* d_indptr = device_upload(indptr);
    int32_t* d_last = device_upload(last);

    fi4j::DecodeParams p{};
    p.dtype = fi4j::DType::BF16;
    p.q = q;
    p.q_stride_n = static_cast<int64_t>(s.qo_heads) * kHeadDim;
    p.q_stride_h = kHeadDim;
    p.o = o;
    p.o_stride_n = p.q_stride_n;
    p.o_stride_h = kHeadDim;
    p.lse = lse;
    p.num_qo_heads = s.qo_heads;
    p.kv.k = k;
    p.kv.v = v;
    p.kv.page_stride = static_cast<int64_t>(page_elems);
    p.kv.token_stride = static_cast<int64_t>(s.kv_heads) * kHeadDim;
    p.kv.head_stride = kHeadDim;
    p.kv.num_pages = num_pages;
    p.kv.page_size = kPageSize;
    p.kv.num_kv_heads = s.kv_heads;
    p.kv.head_dim = kHeadDim;
    p.kv.kv_indptr = d_indptr;
    p.kv.kv_indices = d_indices;
    p.kv.kv_last_page_len = d_last;
    p.kv.batch_size = s.batch;
    p.variant.sm_scale = 1.f / std::sqrt(static_cast<float>(kHeadDim));
    p.variant.logits_soft_cap = 0.f;
    p.variant.window_left = -1;
    p.variant.pos_encoding = fi4j::PosEncoding::None;
    p.variant.rope_rcp_scale = 1.f;
    p.variant.rope_theta = 1e4f;

    // The tensor-core kernel keeps 4 blocks per SM resident at D = 64, 2 otherwise (decode_tc.cuh).
    const int per_sm = kHeadDim == 64 ? 4 : 2;
    const Work split2(s, per_sm * sms, false), split4(s, per_sm * sms, true);
    const double bytes = 2.0 * s.batch * s.kv_len * s.kv_heads * kHeadDim * sizeof(__nv_bfloat16);
    // Median TB/s of `launch` over kRuns timed runs, each after an L2 flush.
    auto time_tbps = [&](auto launch) {
      for (int i = 0; i < kWarmup; ++i) CUDA_CHECK(launch());
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<float> ms(kRuns);
      for (int i = 0; i < kRuns; ++i) {
        if (read_mode) {
          read_flush<<<4 * sms, 512>>>(static_cast<const uint4*>(flush), flush_bytes / 16, sink);
          CUDA_CHECK(cudaGetLastError());
        } else {
          CUDA_CHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, nullptr));
        }
        CUDA_CHECK(cudaEventRecord(start, nullptr));
        CUDA_CHECK(launch());
        CUDA_CHECK(cudaEventRecord(stop, nullptr));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
      }
      std::sort(ms.begin(), ms.end());
      return bytes / (ms[kRuns / 2] * 1e-3) / 1e12;
    };
    std::vector<uint16_t> reference(qo_elems), out(qo_elems);
    double max_diff = 0;
    double tbps[6];
    int col = 0;
    for (fi4j::DecodePath path : {fi4j::DecodePath::CudaCores, fi4j::DecodePath::TensorCores}) {
      for (const Work* w : {static_cast<const Work*>(nullptr), &split2, &split4}) {
        p.path = path;
        p.work = w != nullptr ? w->get() : fi4j::DecodeWork{};
        tbps[col++] = time_tbps([&] { return fi4j::launch_batch_decode(p, nullptr); });
        CUDA_CHECK(cudaMemcpy(out.data(), o, qo_elems * 2, cudaMemcpyDeviceToHost));
        if (col == 1) reference = out;
        for (size_t i = 0; i < qo_elems; ++i) {
          const double d = std::fabs(static_cast<double>(bf16_to_float(out[i])) - bf16_to_float(reference[i]));
          max_diff = std::isnan(d) ? INFINITY : std::max(max_diff, d);
        }
      }
    }
    // The split tensor-core decode alone, without its merge: tc+s+ minus this is what the merge adds.
    p.path = fi4j::DecodePath::TensorCores;
    p.work = split4.get();
    const double no_merge = time_tbps([&] { return fi4j::decode::launch_tensor_cores(p, split4.num_work, nullptr); });
    char chunks[16];
    std::snprintf(chunks, sizeof chunks, "%d/%d", split2.chunks, split4.chunks);
    std::printf("%-18s %-7s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %10.2e %9.3f\n", name, chunks, tbps[0], tbps[1],
                tbps[2], tbps[3], tbps[4], tbps[5], max_diff, no_merge);
    std::fflush(stdout);
    for (void* ptr : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(q), static_cast<void*>(o),
                      static_cast<void*>(lse), static_cast<void*>(d_indices), static_cast<void*>(d_indptr),
                      static_cast<void*>(d_last)})
      CUDA_CHECK(cudaFree(ptr));
  }
  CUDA_CHECK(cudaFree(flush));
  CUDA_CHECK(cudaFree(sink));
  CUDA_CHECK(cudaGetLastError());
  return 0;
}
