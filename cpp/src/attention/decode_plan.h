// Host planner of batch decode: partitions long KV into chunks (split-KV) when requests x KV heads cannot fill
// the GPU, and lays out the workspace that holds the work list and the partial states.
#pragma once

#include <cstdint>
#include <vector>

namespace fi4j {

/// Byte offsets of the pieces of a decode workspace with `max_work` work items.
struct DecodeWorkspaceLayout {
  int64_t request = 0;
  int64_t kv_start = 0;
  int64_t kv_end = 0;
  int64_t merge_indptr = 0;
  int64_t int_bytes = 0;  // the int section [0, int_bytes) is what plan() uploads
  int64_t partial_o = 0;
  int64_t partial_lse = 0;
  int64_t total = 0;
};

DecodeWorkspaceLayout decode_workspace_layout(int64_t max_work, int64_t batch_size, int64_t num_qo_heads,
                                              int64_t head_dim);

struct DecodePlanInput {
  int batch_size;
  int num_qo_heads;
  int num_kv_heads;
  int head_dim;
  int page_size;
  int window_left;
  const int32_t* kv_indptr;
  const int32_t* kv_last_page_len;
  int split_mode;   // fi4j_split_mode
  int fixed_chunk;
  int path;         // fi4j_decode_path
  int graph_slots;  // > 0: graph mode
  int num_sms;      // 0 for the CPU backend (never splits)
  int compute_capability;  // major*10+minor (0 for the CPU)
  int64_t workspace_bytes;
};

struct DecodePlanResult {
  int num_work = 0;
  int path = 0;
  int chunk_size = 0;
  int64_t workspace_bytes = 0;
  std::vector<int32_t> int_section;  // request | kv_start | kv_end | merge_indptr, as laid out
};

/// Validates the host page-table arrays and plans; throws fi4j::Error on bad input or a too-small workspace.
DecodePlanResult plan_decode(const DecodePlanInput& in);

}  // namespace fi4j
