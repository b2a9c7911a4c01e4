// Warp-group matrix multiply (wgmma, sm_90a): shared-memory matrix descriptors for 128-byte-swizzled tiles, the
// issue / commit / wait protocol, and the register fence that keeps the compiler from touching accumulators while
// an asynchronous wgmma owns them.
//
// Operand storage (all tiles written by the tensor memory accelerator with CU_TENSOR_MAP_SWIZZLE_128B, each
// "panel" of 64 16-bit columns stored as rows of 128 bytes, 8-row atoms of 1024 bytes, panels 1024-byte aligned):
//   K-major (Q and K for S = Q K^T): a 16-column k-step kk of a [rows][D] tile lies in panel kk / 4 at byte
//     32 * (kk % 4) of each row; descriptor: start there, stride between 8-row atoms (SBO) 1024, LBO unused (1).
//   N-major (V for O += P V, transposed B): the k-step kk covers keys 16kk..16kk+15 = two 8-key atoms at
//     2048 * kk and 2048 * kk + 1024 of every panel (SBO 1024); N runs across panels, LBO = panel bytes.
// The accumulator of an m64nN wgmma: warp w of the group owns rows 16w..16w+15; lane (g = lane / 4,
// t = lane % 4) holds d[4j + 0..1] = rows g, columns 8j + 2t + {0,1} and d[4j + 2..3] = row g + 8, same columns.
#pragma once

#include <stdint.h>

#include "fi4j/attention/hopper/wgmma_ops.cuh"

namespace fi4j {
namespace hopper {

/// Descriptor of a 128-byte-swizzled shared-memory operand starting at `smem_addr` (16-byte aligned; the atom
/// it lies in 1024-byte aligned, so base_offset is 0).
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  uint64_t d = 0;
  d |= static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4);
  d |= static_cast<uint64_t>((lbo_bytes & 0x3FFFF) >> 4) << 16;
  d |= static_cast<uint64_t>((sbo_bytes & 0x3FFFF) >> 4) << 32;
  d |= static_cast<uint64_t>(1) << 62;  // layout type 1: 128-byte swizzle
  return d;
}

/// Orders this thread's register writes before the wgmma that reads them (once per batch of issues).
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

/// Closes the wgmma issued since the last commit into one group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

/// Waits until at most kPending committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

/// Pins accumulator registers at this point of the program: reads after a wgmma_wait cannot move above it.
template <int kN>
__device__ __forceinline__ void fence_regs(float (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int kN>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

}  // namespace hopper
}  // namespace fi4j
