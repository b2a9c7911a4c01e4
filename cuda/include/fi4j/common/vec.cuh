// 16-byte vector moves and fp16/bf16 <-> fp32 conversion of eight elements at a time.
// Device-only; compiles with nvcc and with NVRTC (no host or C++ standard headers).
//
// Under NVRTC (run-time compilation) the CUDA toolkit's cuda_fp16.h / cuda_bf16.h may not be at hand, so the two
// 16-bit types are plain storage structs here and the few conversions the kernels use are single PTX
// instructions (sm_80+). FI4J_NO_CUDA_FP16_HEADERS selects the same branch under nvcc, so that the run-time
// source can be checked with nvcc on a machine without NVRTC. Kernels name the types half_t and bfloat16_t.
#pragma once

#if defined(__CUDACC_RTC__) || defined(FI4J_NO_CUDA_FP16_HEADERS)
#define FI4J_OWN_16BIT_TYPES 1
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "fi4j/common/dtype.h"

namespace fi4j {

#if FI4J_OWN_16BIT_TYPES
struct alignas(2) half_t {
  unsigned short bits;
};
struct alignas(2) bfloat16_t {
  unsigned short bits;
};

/// Two packed 16-bit floats (low element first) to fp32.
__device__ __forceinline__ float2 f16x2_to_float2(unsigned w) {
  float2 r;
  asm("{.reg .b16 lo, hi;\n mov.b32 {lo, hi}, %2;\n cvt.f32.f16 %0, lo;\n cvt.f32.f16 %1, hi;}\n"
      : "=f"(r.x), "=f"(r.y)
      : "r"(w));
  return r;
}
/// fp32 pair to packed fp16 (low element first), round to nearest even.
__device__ __forceinline__ unsigned float2_to_f16x2(float lo, float hi) {
  unsigned w;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(w) : "f"(hi), "f"(lo));
  return w;
}
/// fp32 pair to packed bf16 (low element first), round to nearest even.
__device__ __forceinline__ unsigned float2_to_bf16x2(float lo, float hi) {
  unsigned w;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(w) : "f"(hi), "f"(lo));
  return w;
}
#else
using half_t = __half;
using bfloat16_t = __nv_bfloat16;
#endif

template <typename T>
struct Vec8;

template <>
struct Vec8<half_t> {
  /// Unpacks eight fp16 values to fp32.
  static __device__ __forceinline__ void to_float(const uint4& u, float (&f)[8]) {
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 t = pair_to_float(w[i]);
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
  /// Packs eight fp32 values to fp16, round to nearest even.
  static __device__ __forceinline__ uint4 from_float(const float (&f)[8]) {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#if FI4J_OWN_16BIT_TYPES
      w[i] = float2_to_f16x2(f[2 * i], f[2 * i + 1]);
#else
      const __half2 h = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
#endif
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
  /// Converts one packed pair (low element first) to fp32.
  static __device__ __forceinline__ float2 pair_to_float(unsigned w) {
#if FI4J_OWN_16BIT_TYPES
    return f16x2_to_float2(w);
#else
    return __half22float2(*reinterpret_cast<const __half2*>(&w));
#endif
  }
};

template <>
struct Vec8<bfloat16_t> {
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
#if FI4J_OWN_16BIT_TYPES
      w[i] = float2_to_bf16x2(f[2 * i], f[2 * i + 1]);
#else
      const __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
#endif
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
