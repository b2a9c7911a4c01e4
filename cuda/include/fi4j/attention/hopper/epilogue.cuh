// The consumer group's output: O normalised by the row sums, rounded to T, staged through the group's own Q space
// in shared memory (free once its last S = Q K^T has completed) and written to global memory as 16-byte rows,
// coalesced, only for rows that belong to the request. LSE by the first lane of each quad.
//
// store_output_direct (persistent blocks, whose Q space is already refilled for the next item): each lane writes
// its two-element pieces straight from the accumulators (a warp instruction covers 8 rows x 16 bytes; the halves
// of each 32-byte sector come from the neighbouring n8 block, merged in L2).
//
// Staging layout: [64 rows][D] of T, the 16-byte unit u of row r stored at unit (u & ~7) | ((u ^ r) & 7): the
// fragment writes (8 rows x 4 words per warp instruction) and the 16-byte reads are both free of bank conflicts.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fi4j/attention/hopper/ptx.cuh"
#include "fi4j/attention/hopper/scheduler.cuh"

namespace fi4j {
namespace hopper {

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

/// Writes the group's 64 x D output tile. `tid` is the thread's index within its group (0..127), `stage` the
/// shared-memory address of the group's staging space, `barrier_id` a named barrier for the group's 128 threads.
template <typename T, int D>
__device__ __forceinline__ void store_output(const PrefillSm90KernelParams& p, const BlockWork& w, int group_row0,
                                             int tid, uint32_t stage, int barrier_id, float (&o)[D / 2],
                                             const float (&inv)[2], const float (&lse)[2]) {
  constexpr int kUnits = D / 8;  // 16-byte units per row
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int g = lane / 4;
  const int t = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = 16 * warp + g + 8 * r;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int u = (j & ~7) | ((j ^ row) & 7);
      const uint32_t v = pack2<T>(o[4 * j + 2 * r] * inv[r], o[4 * j + 2 * r + 1] * inv[r]);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(stage + row * (D * 2) + u * 16 + t * 4), "r"(v) : "memory");
    }
  }
  if (p.lse != nullptr && t == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = group_row0 + 16 * warp + g + 8 * r;
      if (row < w.qo_len) p.lse[static_cast<int64_t>(w.q_start + row) * p.num_qo_heads + w.head] = lse[r];
    }
  }
  named_sync(barrier_id, 128);
  T* const out = static_cast<T*>(p.o);
#pragma unroll 4
  for (int idx = tid; idx < 64 * kUnits; idx += 128) {
    const int row = idx / kUnits;
    const int u = idx % kUnits;
    if (group_row0 + row >= w.qo_len) continue;
    const int pu = (u & ~7) | ((u ^ row) & 7);
    uint4 v;
    asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(stage + row * (D * 2) + pu * 16)
                 : "memory");
    T* dst = out + static_cast<int64_t>(w.q_start + group_row0 + row) * p.o_stride_n +
             static_cast<int64_t>(w.head) * p.o_stride_h + u * 8;
    *reinterpret_cast<uint4*>(dst) = v;
  }
}

template <typename T, int D>
__device__ __forceinline__ void store_output_direct(const PrefillSm90KernelParams& p, const BlockWork& w, int row0,
                                                    float (&o)[D / 2], const float (&inv)[2], const float (&lse)[2]) {
  const int t = threadIdx.x % 4;
  T* const out = static_cast<T*>(p.o);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + 8 * r;
    if (row >= w.qo_len) continue;
    T* const dst = out + static_cast<int64_t>(w.q_start + row) * p.o_stride_n +
                   static_cast<int64_t>(w.head) * p.o_stride_h + 2 * t;
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<uint32_t*>(dst + 8 * j) = pack2<T>(o[4 * j + 2 * r] * inv[r], o[4 * j + 2 * r + 1] * inv[r]);
    if (p.lse != nullptr && t == 0) p.lse[static_cast<int64_t>(w.q_start + row) * p.num_qo_heads + w.head] = lse[r];
  }
}

}  // namespace hopper
}  // namespace fi4j
