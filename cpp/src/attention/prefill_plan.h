// Split-KV planning of batch prefill (host only, no CUDA): when the row tiles of a batch cannot fill the GPU
// (few requests with short queries and long caches: chunked prefill, appends, speculative verification), each
// tile's key range is cut into chunks processed by separate blocks and merged afterwards (prefill.cuh).
#pragma once

#include <cstdint>
#include <vector>

namespace fi4j {

struct PrefillSplitInput {
  int batch_size = 0;
  const int32_t* qo_indptr = nullptr;  // [batch_size + 1], host
  const int32_t* kv_len = nullptr;     // [batch_size], host
  int group = 1;                       // num_qo_heads / num_kv_heads
  int num_kv_heads = 1;
  int head_dim = 0;
  int rows_tile = 64;                  // packed query rows per block
  bool causal = false;
  int window_left = -1;
  int num_sms = 0;
  int blocks_per_sm = 1;               // resident blocks of that tile shape
  int64_t workspace_bytes = 0;
};

/// The work list (empty when splitting would not add blocks or does not fit the workspace): item w is request
/// request[w], row tile tile[w], keys [kv_lo[w], kv_hi[w]); the items of one tile are consecutive, group g spans
/// items group_indptr[g] .. group_indptr[g+1]-1. bytes: the workspace the layout needs (prefill_split_layout).
struct PrefillSplitPlan {
  std::vector<int32_t> request, tile, kv_lo, kv_hi, group_indptr;
  int64_t bytes = 0;
  int num_work() const { return static_cast<int>(request.size()); }
  int num_groups() const { return group_indptr.empty() ? 0 : static_cast<int>(group_indptr.size()) - 1; }
};

/// Shortest key chunk worth a block of its own.
constexpr int kPrefillMinChunk = 256;

PrefillSplitPlan plan_prefill_split(const PrefillSplitInput& in);

/// The bytes written to the start of the workspace (header with the group count, then the index arrays at their
/// prefill_split_layout offsets), up to the partial outputs.
std::vector<unsigned char> prefill_split_image(const PrefillSplitPlan& plan, int num_kv_heads, int rows_tile,
                                               int head_dim);

}  // namespace fi4j
