// Shared helpers of the standalone CUDA harnesses (decode_harness, prefill_harness, decode_bench): a checked CUDA
// call, fp16/bf16 bit conversions and an owning device buffer. Test code only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fi4j/attention/params.h"

/// Runs a CUDA runtime call; on failure prints where and why and exits with status 2.
#define CUDA_CHECK(call)                                                                                  \
  do {                                                                                                    \
    const cudaError_t err_ = (call);                                                                      \
    if (err_ != cudaSuccess) {                                                                            \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(2);                                                                                       \
    }                                                                                                     \
  } while (0)

namespace fi4j_test {

/// x rounded to the 16-bit type t (F16 or BF16), as raw bits.
inline uint16_t to_bits(float x, fi4j::DType t) {
  if (t == fi4j::DType::F16) return static_cast<__half_raw>(__float2half_rn(x)).x;
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(x)).x;
}

/// The value of raw 16-bit bits of type t.
inline double from_bits(uint16_t u, fi4j::DType t) {
  if (t == fi4j::DType::F16) {
    __half_raw r;
    r.x = u;
    return __half2float(__half(r));
  }
  __nv_bfloat16_raw r;
  r.x = u;
  return __bfloat162float(__nv_bfloat16(r));
}

/// An owning device array of count T: upload/download of whole host vectors, poison() fills 0xff bytes (NaN as
/// fp16, bf16 and fp32).
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  explicit DeviceBuffer(size_t n) : count(n) {
    if (n > 0) CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(T)));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr != nullptr) CUDA_CHECK(cudaFree(ptr));
  }
  void upload(const std::vector<T>& h) {
    if (count > 0) CUDA_CHECK(cudaMemcpy(ptr, h.data(), count * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(count);
    if (count > 0) CUDA_CHECK(cudaMemcpy(h.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() {
    if (count > 0) CUDA_CHECK(cudaMemset(ptr, 0xff, count * sizeof(T)));
  }
};

}  // namespace fi4j_test
