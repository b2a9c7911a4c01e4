// Page-table arithmetic shared by the kernels that read or write a paged KV cache.
#pragma once

#include "fi4j/attention/params.h"

namespace fi4j {

/// Token count of request b and the offset of its first page in kv_indices. An empty request (no pages) has
/// length 0; single-request mode (kv_indptr == nullptr) has single_kv_len tokens in page 0, clamped to the page.
__device__ __forceinline__ void request_extent(const PagedKv& kv, int b, int& kv_len, int& page_base) {
  if (kv.kv_indptr == nullptr) {
    page_base = 0;
    kv_len = min(kv.single_kv_len, kv.page_size);
  } else {
    page_base = __ldg(kv.kv_indptr + b);
    const int num_pages = __ldg(kv.kv_indptr + b + 1) - page_base;
    kv_len = num_pages > 0 ? kv.page_size * (num_pages - 1) + __ldg(kv.kv_last_page_len + b) : 0;
  }
  // A non-positive page size or length only comes from a broken caller; treat it as an empty request.
  if (kv.page_size <= 0 || kv_len < 0) kv_len = 0;
}

/// Id of page number page_idx of a request (page 0 in single-request mode), unchecked. Callers may load it
/// ahead of use and check it with page_in_range only when they consume it.
__device__ __forceinline__ int raw_page_id(const PagedKv& kv, int page_base, int page_idx) {
  return kv.kv_indptr == nullptr ? 0 : __ldg(kv.kv_indices + page_base + page_idx);
}

/// Whether a page id lies in [0, num_pages). A token on any other page is skipped, never read or written.
__device__ __forceinline__ bool page_in_range(const PagedKv& kv, int page_id) {
  return page_id >= 0 && page_id < kv.num_pages;
}

/// Division by a run-time divisor d >= 1 as a multiply-high, an add and a shift (exact for 0 <= n < 2^31): the
/// token -> (page, slot) split sits on the per-tile path, where a plain integer division costs ~20 instructions.
struct FastDivider {
  unsigned divisor;
  unsigned multiplier;
  unsigned shift;

  /// Precomputes the magic number: shift = ceil(log2 d), multiplier = floor(2^32 (2^shift - d) / d) + 1.
  __device__ __forceinline__ explicit FastDivider(int d) : divisor(static_cast<unsigned>(d)) {
    shift = 0;
    while ((1ull << shift) < divisor) ++shift;
    multiplier = static_cast<unsigned>(((1ull << 32) * ((1ull << shift) - divisor)) / divisor + 1);
  }
  /// n / d.
  __device__ __forceinline__ int div(int n) const {
    const unsigned u = static_cast<unsigned>(n);
    return static_cast<int>((__umulhi(u, multiplier) + u) >> shift);
  }
};

/// Element offset of (page id, slot, head) in a K or V cache described by kv's strides.
__device__ __forceinline__ int64_t cache_offset(const PagedKv& kv, int page_id, int slot, int head) {
  return static_cast<int64_t>(page_id) * kv.page_stride + static_cast<int64_t>(slot) * kv.token_stride +
         static_cast<int64_t>(head) * kv.head_stride;
}

}  // namespace fi4j
