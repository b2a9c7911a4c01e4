// 16-byte vector moves and fp16/bf16 <-> fp32 conversion of eight elements at a time.
// Device-only; compiles with nvcc and NVRTC (no host or C++ standard headers).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fi4j/params.h"

namespace fi4j {

/// Number of 16-bit elements in one 16-byte vector (a "chunk" of a head row).
constexpr int kVecElems = 8;

/// Element-type traits: how eight packed 16-bit values (one uint4) convert to and from fp32.
template <typename T>
struct Vec8;

template <>
struct Vec8<__half> {
  /// Unpacks eight fp16 values to fp32.
  static __device__ __forceinline__ void to_float(const uint4& u, float (&f)[8]) {
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 t = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
  /// Packs eight fp32 values to fp16, round to nearest even.
  static __device__ __forceinline__ uint4 from_float(const float (&f)[8]) {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const __half2 h = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
  /// Converts one packed pair (low element first) to fp32.
  static __device__ __forceinline__ float2 pair_to_float(unsigned w) {
    return __half22float2(*reinterpret_cast<const __half2*>(&w));
  }
};

template <>
struct Vec8<__nv_bfloat16> {
  /// Unpacks eight bf16 values to fp32 (exact).
  static __device__ __forceinline__ void to_float(const uint4& u, float (&f)[8]) {
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      // bf16 is the top half of an fp32: widening is a shift, no conversion instruction needed.
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
  /// Packs eight fp32 values to bf16, round to nearest even.
  static __device__ __forceinline__ uint4 from_float(const float (&f)[8]) {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
  /// Converts one packed pair (low element first) to fp32.
  static __device__ __forceinline__ float2 pair_to_float(unsigned w) {
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
};

/// Loads 16 bytes from global memory through the read-only path (p must be 16-byte aligned).
__device__ __forceinline__ uint4 ld_global_v16(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

/// Stores 16 bytes to global memory (p must be 16-byte aligned).
__device__ __forceinline__ void st_global_v16(void* p, const uint4& v) { *reinterpret_cast<uint4*>(p) = v; }

/// Loads 16 bytes from shared memory (p must be 16-byte aligned).
__device__ __forceinline__ uint4 ld_shared_v16(const void* p) { return *reinterpret_cast<const uint4*>(p); }

/// Starts an asynchronous 16-byte global->shared copy (sm_80+). When !pred nothing is read from global and the
/// 16 shared bytes are zero-filled, so masked rows hold finite values (0 * garbage could be NaN).
__device__ __forceinline__ void cp_async_v16(void* smem_dst, const void* gmem_src, bool pred) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = pred ? 16 : 0;
  // .cg: bypass L1, the data is used once from shared memory.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes)
               : "memory");
}

/// Closes the current group of cp.async copies.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

/// Waits until at most N of this thread's cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/// IEEE -infinity without <cmath>.
__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

}  // namespace fi4j
