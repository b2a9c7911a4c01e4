// Split-KV merge: folds the partial states of each request's work items into its output, with the spec's
// cascade formula (base-2 LSEs). A long request's items are spread over lanes of threads (up to 16 at D = 64, 8 at
// D = 128) that combine by shuffles (one long request is otherwise a chain of ~64 dependent folds on a couple of blocks: ~10 us at
// D = 64 on an H100); the fold order depends only on the request's own item count, so a request split the same
// way gives bit-identical output wherever it sits in the batch.
#pragma once

#include "fi4j/attention/decode_geometry.h"
#include "fi4j/attention/params.h"
#include "fi4j/attention/softmax_state.cuh"
#include "fi4j/common/vec.cuh"

namespace fi4j {
namespace decode_merge {

/// Items one lane loads together before it folds them: the fold is a dependent chain, the loads are not. Lanes
/// hold 1-4 items for up to 64 items per request (4 at 64 items and D = 64).
constexpr int kBatch = 4;

/// The work of one merge block, for grid (batch_size, any count of head blocks: block y takes the y-th of
/// gridDim.y equal runs of query heads), kThreads threads. A request's n items are dealt to item_lanes(D, n)
/// lanes (item i to lane i % lanes), each lane folds its items in order, then the lanes combine by a
/// butterfly over warp shuffles; the order depends on n and D only, so a request split the same way gives
/// bit-identical output wherever it sits in the batch and whatever grid the host chose. A request with no items
/// gets 0 and -inf; items whose LSE is -inf (they saw nothing) weigh 0, and their partial o (written as 0) never
/// turns into NaN; an item whose LSE is NaN (it saw a NaN logit) makes the merged row NaN (its weight 2^(NaN - m) is
/// NaN, SoftmaxState::merge). Inlined into merge_kernel and into the run-time compiled entry.
template <typename T, int D>
__device__ __forceinline__ void merge_block(const DecodeParams& p) {
  constexpr int kCols = lane_threads(D);
  // The item list comes from the plan, which the stream finished before the decode grid started: read it before
  // waiting, so its load latency overlaps the decode's tail.
  const int b = blockIdx.x;
  const int begin = __ldg(p.work.merge_indptr + b);
  const int end = __ldg(p.work.merge_indptr + b + 1);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Launched with programmatic stream serialization: wait until the decode grid has finished and its partial
  // states are visible.
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
  const int lanes = item_lanes(D, end - begin);
  const int per_pass = heads_per_pass(D, lanes);
  const int run = (p.num_qo_heads + static_cast<int>(gridDim.y) - 1) / static_cast<int>(gridDim.y);
  const int h_begin = static_cast<int>(blockIdx.y) * run;
  const int h_end = min(p.num_qo_heads, h_begin + run);
  // thread = (slot * kCols + c) * lanes + j: the lanes of one output unit are `lanes` aligned threads of a warp
  const int t = static_cast<int>(threadIdx.x);
  const int slot = t / (kCols * lanes);
  const int c = (t / lanes) % kCols;
  const int j = t % lanes;
  const int64_t stride = static_cast<int64_t>(p.num_qo_heads);

  // Block-uniform loop (every thread runs the same passes and shuffles).
  for (int h0 = h_begin; h0 < h_end; h0 += per_pass) {
    const int head = h0 + slot;
    const bool active = slot < per_pass && head < h_end;
    // Each item is a state with m = lse, d = 1 and o = its normalised output: the fold keeps the running sums
    // relative to the running maximum (SoftmaxState::merge), which is the cascade formula.
    SoftmaxState<8> acc;
    acc.init();
    if (active) {
      for (int i0 = begin + j; i0 < end; i0 += kBatch * lanes) {
        float lse[kBatch];
        float4 lo[kBatch], hi[kBatch];
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {
          // Past the end: an empty state (predicated, no load), which changes nothing, bit for bit.
          const int i = i0 + k * lanes;
          lse[k] = neg_inf();
          lo[k] = hi[k] = make_float4(0.f, 0.f, 0.f, 0.f);
          if (i < end) {
            const int64_t row = static_cast<int64_t>(i) * stride + head;
            const float4* const src = reinterpret_cast<const float4*>(p.work.partial_o + row * D + c * kVecElems);
            lo[k] = src[0];
            hi[k] = src[1];
            lse[k] = p.work.partial_lse[row];
          }
        }
#pragma unroll
        for (int k = 0; k < kBatch; ++k) {
          const float o2[8] = {lo[k].x, lo[k].y, lo[k].z, lo[k].w, hi[k].x, hi[k].y, hi[k].z, hi[k].w};
          acc.merge(lse[k], lse[k] == neg_inf() ? 0.f : 1.f, o2);
        }
      }
    }
    for (int s = 1; s < lanes; s *= 2) acc.merge_from_lane(s);
    if (active && j == 0) {
      const float inv = acc.d != 0.f ? 1.f / acc.d : 0.f;  // d == 0: no item saw a key; NaN d: a NaN item
      float out[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) out[e] = acc.o[e] * inv;
      T* const dst = static_cast<T*>(p.o) + static_cast<int64_t>(b) * p.o_stride_n +
                     static_cast<int64_t>(head) * p.o_stride_h + c * kVecElems;
      st_global_v16(dst, Vec8<T>::from_float(out));
      if (c == 0 && p.lse != nullptr)
        p.lse[static_cast<int64_t>(b) * stride + head] = acc.d != 0.f ? acc.m + log2f(acc.d) : neg_inf();
    }
  }
}

/// Merge kernel of the ahead-of-time set (see merge_block).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) merge_kernel(const __grid_constant__ DecodeParams p) {
  merge_block<T, D>(p);
}

}  // namespace decode_merge
}  // namespace fi4j
