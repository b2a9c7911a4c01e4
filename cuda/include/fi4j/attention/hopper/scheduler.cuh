// Which work a block does. A work item is (query head, row-tile slot y): kRows query rows of one request against
// that head. Row-tile slots are numbered request by request, and within a request from the last tile (the most
// keys under a causal mask) to the first; items are ordered slot-major, head-minor (item = y * num_qo_heads +
// head), so the heads sharing a KV head run side by side (K/V shared through L2) and the longest items come first.
// The slot count is an upper bound (ceil(nnz_qo / kRows) + batch_size): surplus slots find no tile.
//   One block per item: grid (num_qo_heads, slots), blockIdx.x = head, blockIdx.y = y.
//   Persistent: grid (min(#SMs, items)); block c takes items c, c + gridDim.x, ... until a slot finds no tile.
#pragma once

#include <stdint.h>

#include "fi4j/attention/hopper/params.h"

namespace fi4j {
namespace hopper {

struct BlockWork {
  int head;
  int kv_head;
  int q_start;   // first row of the request in q / o
  int qo_len;
  int kv_start;  // first row of the request in k / v
  int kv_len;
  int m0;        // first query row of the block within the request
  int n_tiles;   // K/V tiles the block visits: tiles 0 .. n_tiles-1, processed last first
};

__device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }

/// Finds request and row tile of row-tile slot y. Warp-uniform (every warp computes the same answer, so no
/// block barrier is needed before the warp groups take their roles).
template <int kRows>
__device__ __forceinline__ bool find_row_tile(const PrefillSm90KernelParams& p, int y, int& request, int& tile) {
  if (p.qo_indptr == nullptr) {
    const int tiles = ceil_div(p.nnz_qo, kRows);
    request = 0;
    tile = tiles - 1 - y;
    return y < tiles;
  }
  const int lane = threadIdx.x % 32;
  int running = 0;
  for (int base = 0; base < p.batch_size; base += 32) {
    const int b = base + lane;
    int n = 0;
    if (b < p.batch_size) n = ceil_div(max(__ldg(p.qo_indptr + b + 1) - __ldg(p.qo_indptr + b), 0), kRows);
    int incl = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int x = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += x;
    }
    const int excl = running + incl - n;
    const unsigned hit = __ballot_sync(0xffffffffu, n > 0 && y >= excl && y < excl + n);
    if (hit != 0u) {
      const int src = __ffs(hit) - 1;
      request = base + src;
      tile = __shfl_sync(0xffffffffu, n - 1 - (y - excl), src);
      return true;
    }
    running += __shfl_sync(0xffffffffu, incl, 31);
    if (running > y) break;
  }
  return false;
}

template <int kRows, int kN>
__device__ __forceinline__ bool make_block_work(const PrefillSm90KernelParams& p, int head, int y, BlockWork& w) {
  int b, tile;
  if (!find_row_tile<kRows>(p, y, b, tile)) return false;
  w.head = head;
  w.kv_head = w.head / p.group;
  if (p.qo_indptr != nullptr) {
    w.q_start = __ldg(p.qo_indptr + b);
    w.qo_len = __ldg(p.qo_indptr + b + 1) - w.q_start;
  } else {
    w.q_start = 0;
    w.qo_len = p.nnz_qo;
  }
  if (p.kv_indptr != nullptr) {
    w.kv_start = __ldg(p.kv_indptr + b);
    w.kv_len = max(__ldg(p.kv_indptr + b + 1) - w.kv_start, 0);
  } else {
    w.kv_start = 0;
    w.kv_len = p.nnz_kv;
  }
  w.m0 = tile * kRows;
  int n_end = w.kv_len;
  if (p.causal) {
    const int last_row = min(w.m0 + kRows, w.qo_len) - 1;
    n_end = min(n_end, last_row + w.kv_len - w.qo_len + 1);
  }
  w.n_tiles = n_end > 0 ? ceil_div(n_end, kN) : 0;
  return true;
}

}  // namespace hopper
}  // namespace fi4j
