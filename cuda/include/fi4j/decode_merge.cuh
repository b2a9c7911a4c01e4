// Split-KV merge: folds the partial states of each request's work items into its output, with the spec's
// cascade formula (base-2 LSEs). Items are folded strictly in the order merge_indptr lists them, by one thread
// per (request, query head, 8 output dims), so a request split the same way gives bit-identical output wherever
// it sits in the batch.
#pragma once

#include "fi4j/decode_geometry.h"
#include "fi4j/params.h"
#include "fi4j/softmax_state.cuh"
#include "fi4j/vec.cuh"

namespace fi4j {
namespace decode_merge {

/// Items whose loads are issued together before they are folded: the fold is a dependent chain, the loads are
/// not, so batching them hides the memory latency of long merge lists (a 32K-token request has ~30 items):
/// the merge then costs a few L2 round trips, not one per item.
constexpr int kBatch = 16;

/// The work of one merge block, for grid (batch_size, ceil(num_qo_heads / heads_per_block(D))), kThreads
/// threads. A request with no items gets 0 and -inf; items whose LSE is -inf (they saw nothing) weigh 0, and their
/// partial o (written as 0) never turns into NaN. Inlined into merge_kernel and into the run-time compiled entry.
template <typename T, int D>
__device__ __forceinline__ void merge_block(const DecodeParams& p) {
  constexpr int kChunks = D / kVecElems;
  constexpr int kHeads = heads_per_block(D);
  const int b = blockIdx.x;
  const int head = blockIdx.y * kHeads + static_cast<int>(threadIdx.x) / kChunks;
  const int c = static_cast<int>(threadIdx.x) % kChunks;
  if (kHeads * kChunks < kThreads && static_cast<int>(threadIdx.x) >= kHeads * kChunks) return;
  if (head >= p.num_qo_heads) return;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Launched with programmatic stream serialization: wait until the decode grid has finished and its partial
  // states are visible.
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
  const int begin = __ldg(p.work.merge_indptr + b);
  const int end = __ldg(p.work.merge_indptr + b + 1);
  const int64_t stride = static_cast<int64_t>(p.num_qo_heads);

  // Each item is a state with m = lse, d = 1 and o = its normalised output: the fold keeps the running sums
  // relative to the running maximum (SoftmaxState::merge), which is the cascade formula applied left to right.
  SoftmaxState<8> acc;
  acc.init();
  for (int i0 = begin; i0 < end; i0 += kBatch) {
    float lse[kBatch];
    float4 lo[kBatch], hi[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = i0 + j;
      if (i < end) {
        const int64_t row = static_cast<int64_t>(i) * stride + head;
        lse[j] = p.work.partial_lse[row];
        const float4* const src = reinterpret_cast<const float4*>(p.work.partial_o + row * D + c * kVecElems);
        lo[j] = src[0];
        hi[j] = src[1];
      } else {
        lse[j] = neg_inf();  // folding an empty state changes nothing, bit for bit
        lo[j] = hi[j] = make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const float o2[8] = {lo[j].x, lo[j].y, lo[j].z, lo[j].w, hi[j].x, hi[j].y, hi[j].z, hi[j].w};
      acc.merge(lse[j], lse[j] == neg_inf() ? 0.f : 1.f, o2);
    }
  }
  const float inv = acc.d > 0.f ? 1.f / acc.d : 0.f;
  float out[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) out[e] = acc.o[e] * inv;
  T* const dst = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.o_stride_n +
                 static_cast<int64_t>(head) * p.o_stride_h + c * kVecElems;
  st_global_v16(dst, Vec8<T>::from_float(out));
  if (c == 0 && p.lse != nullptr) p.lse[static_cast<int64_t>(b) * stride + head] = acc.d > 0.f ? acc.m + log2f(acc.d) : neg_inf();
}

/// Merge kernel of the ahead-of-time set (see merge_block).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) merge_kernel(const __grid_constant__ DecodeParams p) {
  merge_block<T, D>(p);
}

}  // namespace decode_merge
}  // namespace fi4j
