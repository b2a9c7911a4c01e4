// Pseudo-random fill of device buffers, for benchmarks and tests that need large non-zero inputs without a
// host round trip. Values depend only on (seed, index), so a fill is reproducible on any device.
#include <algorithm>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fi4j/common/fill.h"

namespace fi4j {
namespace {

/// SplitMix64 finaliser: a well-mixed 64-bit hash of (seed, index).
__device__ __forceinline__ unsigned long long mix64(unsigned long long x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__global__ void fill_random_kernel(T* __restrict__ out, long long n, unsigned long long seed, float scale) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const unsigned long long h = mix64(seed ^ mix64(static_cast<unsigned long long>(i)));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = from_float<T>((2.f * u - 1.f) * scale);
  }
}

template <typename T>
cudaError_t launch(void* ptr, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  const int threads = 256;
  const long long blocks = std::min<long long>((n + threads - 1) / threads, 1 << 16);
  fill_random_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(static_cast<T*>(ptr), n, seed, scale);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fill_random(void* ptr, DType dtype, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  switch (dtype) {
    case DType::F16: return launch<__half>(ptr, n, seed, scale, stream);
    case DType::BF16: return launch<__nv_bfloat16>(ptr, n, seed, scale, stream);
    case DType::F32: return launch<float>(ptr, n, seed, scale, stream);
    default: return cudaErrorNotSupported;
  }
}

}  // namespace fi4j
