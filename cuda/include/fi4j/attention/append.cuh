// Append new K/V tokens into a paged cache: a pure 16-byte copy through the cache strides.
// fp16 and bf16 are both 16-bit, so one instantiation per head dim serves both.
#pragma once

#include "fi4j/attention/paged_kv.cuh"
#include "fi4j/attention/params.h"
#include "fi4j/common/vec.cuh"

namespace fi4j {
namespace append {

constexpr int kThreads = 256;

/// One thread per (token, KV head, 16-byte chunk), chunk fastest so that a warp writes whole rows. Grid-stride,
/// so any grid size covers any nnz. Tokens with a bad request index, a position outside [0, kv_len) of their
/// request or a page id outside [0, num_pages) are skipped: no write lands outside the request's pages.
/// D = 0: the head dim is read at run time (kv.head_dim, a multiple of 8), for head dims outside the
/// instantiated set.
template <int D>
__global__ void __launch_bounds__(kThreads) append_paged_kv_kernel(const __grid_constant__ AppendParams p) {
  static_assert(D % kVecElems == 0, "head_dim must be whole 16-byte chunks");
  const int kChunks = D > 0 ? D / kVecElems : p.kv.head_dim / kVecElems;
  const PagedKv& kv = p.kv;
  const int num_heads = kv.num_kv_heads;
  const int64_t total = static_cast<int64_t>(p.nnz) * num_heads * kChunks;
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; item < total;
       item += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int chunk = static_cast<int>(item % kChunks);
    const int64_t token_head = item / kChunks;
    const int head = static_cast<int>(token_head % num_heads);
    const int n = static_cast<int>(token_head / num_heads);

    const int b = __ldg(p.batch_indices + n);
    if (b < 0 || b >= kv.batch_size) continue;
    const int pos = __ldg(p.positions + n);
    int kv_len, page_base;
    request_extent(kv, b, kv_len, page_base);
    if (pos < 0 || pos >= kv_len) continue;
    const int page_id = raw_page_id(kv, page_base, pos / kv.page_size);
    if (!page_in_range(kv, page_id)) continue;

    const int64_t dst = cache_offset(kv, page_id, pos % kv.page_size, head) + chunk * kVecElems;
    const unsigned short* const k_row = static_cast<const unsigned short*>(p.keys) +
                                        static_cast<int64_t>(n) * p.keys_stride_n +
                                        static_cast<int64_t>(head) * p.keys_stride_h + chunk * kVecElems;
    const unsigned short* const v_row = static_cast<const unsigned short*>(p.values) +
                                        static_cast<int64_t>(n) * p.values_stride_n +
                                        static_cast<int64_t>(head) * p.values_stride_h + chunk * kVecElems;
    st_global_v16(static_cast<unsigned short*>(p.k_cache) + dst, ld_global_v16(k_row));
    st_global_v16(static_cast<unsigned short*>(p.v_cache) + dst, ld_global_v16(v_row));
  }
}

}  // namespace append
}  // namespace fi4j
