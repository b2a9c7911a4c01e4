// What one decode thread block attends and where its result goes, shared by the CUDA-core and tensor-core
// kernels. Without a split (work.num_work == 0) block x serves request x over its whole window and writes o and
// lse; with a split it serves work item x (a token chunk of one request) and writes the item's partial state,
// which the merge kernel (decode_merge.cuh) folds into o and lse.
#pragma once

#include "fi4j/attention/paged_kv.cuh"
#include "fi4j/attention/params.h"
#include "fi4j/common/vec.cuh"

namespace fi4j {
namespace decode {

#ifndef FI4J_DECODE_HEAD_MAJOR
#define FI4J_DECODE_HEAD_MAJOR 1
#endif

/// Maps the launch grid (items, num_kv_heads) to (item, kv_head) with the KV head varying fastest in launch
/// order, so that the blocks resident at one time read all heads of the same pages (NHD pages interleave the
/// heads of a token, so neighbouring DRAM bytes are fetched together) instead of a few heads of many requests.
__device__ __forceinline__ void block_coords(int& item, int& kv_head) {
#if FI4J_DECODE_HEAD_MAJOR
  const unsigned linear = blockIdx.y * gridDim.x + blockIdx.x;
  item = static_cast<int>(linear / gridDim.y);
  kv_head = static_cast<int>(linear % gridDim.y);
#else
  item = static_cast<int>(blockIdx.x);
  kv_head = static_cast<int>(blockIdx.y);
#endif
}

/// The token range one block attends. Tokens [lo, hi) of request `request` (already intersected with the
/// sliding window and with the work item's chunk); positions for the window and RoPE are those of the whole
/// request (the query sits at pos_q = kv_len - 1), never chunk-relative.
struct DecodeItem {
  int item;       // blockIdx.x: request (no split) or work item (split)
  int request;    // -1 for an idle work slot (nothing is read; its partial state is written empty)
  int kv_len;
  int page_base;  // offset of the request's first page in kv_indices
  int lo;
  int hi;         // hi >= lo
  int pos_q;
};

/// Resolves block x of the grid into its token range.
__device__ __forceinline__ DecodeItem resolve_item(const DecodeParams& p, int x) {
  DecodeItem it;
  it.item = x;
  int start = 0, end = 0x7fffffff;
  if (p.work.num_work > 0) {
    // Three independent loads (every slot's entries exist), not a chain: block start-up is on the critical path
    // of short items.
    it.request = __ldg(p.work.request + x);
    start = __ldg(p.work.kv_start + x);
    end = __ldg(p.work.kv_end + x);
  } else {
    it.request = x;
  }
  if (it.request < 0) {
    it.kv_len = it.page_base = 0;
  } else {
    request_extent(p.kv, it.request, it.kv_len, it.page_base);
  }
  it.pos_q = it.kv_len - 1;
  const int first = p.variant.window_left >= 0 ? max(0, it.pos_q - p.variant.window_left) : 0;
  it.lo = max(first, start);
  it.hi = max(it.lo, min(it.kv_len, end));
  return it;
}

/// Lets the grid launched next on the stream with programmatic stream serialization (the split-KV merge) start
/// its launch now; it still waits for this whole grid to finish before it reads anything this grid writes
/// (griddepcontrol.wait).
/// Called first thing in every decode block, so the merge's launch latency overlaps the decode's last wave.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/// Writes eight consecutive output values (dims [c*8, c*8+8)) of query head qo_head, already normalised, and,
/// when with_lse, the head's base-2 LSE: into o / lse (no split) or into the item's fp32 partial state (split).
/// An empty state is written as zeros and -inf.
template <typename T>
__device__ __forceinline__ void write_result(const DecodeParams& p, const DecodeItem& it, int qo_head, int c,
                                             const float (&out)[8], bool with_lse, float lse) {
  if (p.work.num_work > 0) {
    const int64_t row = static_cast<int64_t>(it.item) * p.num_qo_heads + qo_head;
    float4* const dst = reinterpret_cast<float4*>(p.work.partial_o + row * p.kv.head_dim + c * kVecElems);
    dst[0] = make_float4(out[0], out[1], out[2], out[3]);
    dst[1] = make_float4(out[4], out[5], out[6], out[7]);
    if (with_lse) p.work.partial_lse[row] = lse;
  } else {
    T* const dst = static_cast<T*>(p.o) + static_cast<int64_t>(it.request) * p.o_stride_n +
                   static_cast<int64_t>(qo_head) * p.o_stride_h + c * kVecElems;
    st_global_v16(dst, Vec8<T>::from_float(out));
    if (with_lse && p.lse != nullptr) p.lse[static_cast<int64_t>(it.request) * p.num_qo_heads + qo_head] = lse;
  }
}

}  // namespace decode
}  // namespace fi4j
