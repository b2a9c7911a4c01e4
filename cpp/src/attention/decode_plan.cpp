#include "attention/decode_plan.h"

#include <algorithm>
#include <string>

#include "fi4j/attention/kernel_set.h"
#include "flashinfer4j/flashinfer4j.h"
#include "core/status.h"

namespace fi4j {

namespace {
/// Resident decode blocks per SM: the CUDA-core kernel is built for 4 (__launch_bounds__), the tensor-core kernel
/// fits 2 at head_dim 128 (registers). Measured on an H100: 16 x 4096 32/8 ran at 2.76 TB/s with 256 blocks
/// (2 per SM) and 2.61 with 384.
constexpr int64_t kBlocksPerSmCudaCores = 4;
constexpr int64_t kBlocksPerSmTensorCores = 2;
/// At head_dim 64 the tensor-core kernel is built for 4 resident blocks (decode_tc.cuh, FI4J_TC_MINBLOCKS_D64).
constexpr int64_t kBlocksPerSmTensorCoresD64 = 4;
/// Shortest chunk worth a block of its own: below this the merge and the block start cost more than they save.
constexpr int64_t kMinChunk = 256;
/// Chunks are whole multiples of the largest KV tile (64 tokens at head_dim 64), so no tile is cut short.
constexpr int64_t kChunkGranule = 64;
/// Groups from this size on use the tensor-core path by default; on sm_90 and later every group does (H100:
/// 3.09 TB/s against 2.99 at 64 x 4096 32/32).
constexpr int kTensorCoreMinGroup = 4;
constexpr int kTensorCoreAllGroupsFromCc = 90;

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
}  // namespace

DecodeWorkspaceLayout decode_workspace_layout(int64_t max_work, int64_t batch_size, int64_t num_qo_heads,
                                              int64_t head_dim) {
  DecodeWorkspaceLayout l;
  l.request = 0;
  l.kv_start = l.request + 4 * max_work;
  l.kv_end = l.kv_start + 4 * max_work;
  l.merge_indptr = l.kv_end + 4 * max_work;
  l.int_bytes = l.merge_indptr + 4 * (batch_size + 1);
  l.partial_o = align_up(l.int_bytes, 256);
  l.partial_lse = align_up(l.partial_o + 4 * max_work * num_qo_heads * head_dim, 256);
  l.total = align_up(l.partial_lse + 4 * max_work * num_qo_heads, 256);
  return l;
}

DecodePlanResult plan_decode(const DecodePlanInput& in) {
  require(in.batch_size >= 0, "batch_size", ">= 0", in.batch_size);
  require(in.page_size >= 1, "page_size", ">= 1", in.page_size);
  require(in.num_kv_heads >= 1, "num_kv_heads", ">= 1", in.num_kv_heads);
  require(in.num_qo_heads >= 1 && in.num_qo_heads % in.num_kv_heads == 0, "num_qo_heads",
          "a positive multiple of num_kv_heads (" + std::to_string(in.num_kv_heads) + ")", in.num_qo_heads);
  require(in.split_mode >= FI4J_SPLIT_AUTO && in.split_mode <= FI4J_SPLIT_FIXED, "split_mode", "AUTO, NEVER or FIXED",
          in.split_mode);
  if (in.split_mode == FI4J_SPLIT_FIXED) require(in.fixed_chunk >= 1, "fixed_chunk", ">= 1", in.fixed_chunk);
  require(in.path >= FI4J_PATH_AUTO && in.path <= FI4J_PATH_TENSOR_CORES, "path", "AUTO, CUDA_CORES or TENSOR_CORES",
          in.path);
  require(in.graph_slots >= 0, "graph_slots", ">= 0", in.graph_slots);
  if (in.batch_size > 0 && (!in.kv_indptr || !in.kv_last_page_len))
    fail_arg("kv_indptr_host / kv_last_page_len_host", "non-null", "null");

  // Query range of each request: [first, len) after the sliding window.
  std::vector<int64_t> first(in.batch_size), len(in.batch_size);
  int64_t total = 0;
  if (in.batch_size > 0 && in.kv_indptr[0] != 0) fail_arg("kv_indptr[0]", "0", in.kv_indptr[0]);
  for (int b = 0; b < in.batch_size; ++b) {
    const int64_t pages = static_cast<int64_t>(in.kv_indptr[b + 1]) - in.kv_indptr[b];
    if (pages < 0)
      fail_arg("kv_indptr[" + std::to_string(b + 1) + "]", ">= kv_indptr[" + std::to_string(b) + "]",
               in.kv_indptr[b + 1]);
    const int last = in.kv_last_page_len[b];
    if (last < 0 || last > in.page_size || (pages == 0 && last != 0))
      fail_arg("kv_last_page_len[" + std::to_string(b) + "]",
               pages == 0 ? std::string("0 for a request with no pages") : "in [0, " + std::to_string(in.page_size) + "]",
               last);
    len[b] = pages == 0 ? 0 : in.page_size * (pages - 1) + last;
    first[b] = in.window_left >= 0 ? std::max<int64_t>(0, len[b] - 1 - in.window_left) : 0;
    total += len[b] - first[b];
  }

  DecodePlanResult r;
  const int group = in.num_qo_heads / in.num_kv_heads;
  const bool tc_default = group >= kTensorCoreMinGroup || in.compute_capability >= kTensorCoreAllGroupsFromCc;
  // The tensor-core kernel exists for the ahead-of-time head dims only; run-time compiled head dims use CUDA cores.
  const bool tc_available = attention_kernels::head_dim_aot(in.head_dim);
  r.path = in.path == FI4J_PATH_AUTO ? (tc_default && tc_available ? FI4J_PATH_TENSOR_CORES : FI4J_PATH_CUDA_CORES)
                                     : in.path;
  const bool cpu = in.num_sms == 0;
  if (cpu) {
    if (in.graph_slots > 0) throw Error(FI4J_ERR_UNSUPPORTED, "CUDA-graph mode needs a CUDA device, got the CPU backend");
    r.path = FI4J_PATH_CUDA_CORES;  // the reference has one path and never splits
    return r;
  }
  const bool graph = in.graph_slots > 0;
  if (graph && in.graph_slots < in.batch_size)
    fail_arg("graph_slots", ">= batch_size (" + std::to_string(in.batch_size) + ")", in.graph_slots);

  auto items_for = [&](int64_t chunk) {
    int64_t n = 0;
    for (int b = 0; b < in.batch_size; ++b) n += (len[b] - first[b] + chunk - 1) / chunk;
    return n;
  };
  const int64_t capacity_of_workspace = [&] {
    // largest work count whose layout fits the workspace
    int64_t lo = 0, hi = 1;
    while (decode_workspace_layout(hi, in.batch_size, in.num_qo_heads, in.head_dim).total <= in.workspace_bytes &&
           hi < (int64_t{1} << 30))
      hi *= 2;
    while (lo + 1 < hi) {
      int64_t mid = (lo + hi) / 2;
      if (decode_workspace_layout(mid, in.batch_size, in.num_qo_heads, in.head_dim).total <= in.workspace_bytes)
        lo = mid;
      else
        hi = mid;
    }
    return lo;
  }();

  int64_t chunk = 0;
  int64_t slots = 0;
  if (in.split_mode == FI4J_SPLIT_FIXED) {
    chunk = in.fixed_chunk;
    slots = items_for(chunk);
    if (graph && slots > in.graph_slots)
      fail_arg("fixed_chunk", "large enough for the " + std::to_string(in.graph_slots) + " graph slots (needs " +
                                  std::to_string(slots) + " work items)", in.fixed_chunk);
  } else if (in.split_mode == FI4J_SPLIT_AUTO || graph) {
    const int64_t per_sm = r.path != FI4J_PATH_TENSOR_CORES ? kBlocksPerSmCudaCores
                           : in.head_dim == 64               ? kBlocksPerSmTensorCoresD64
                                                             : kBlocksPerSmTensorCores;
    const int64_t target_blocks = static_cast<int64_t>(in.num_sms) * per_sm;
    // At D = 64 a batch that fills 2 blocks per SM is not split further: splitting it to 4 per SM cost more in
    // merges than it gained (H100, 64 x 4096 32/8: 2.90 TB/s unsplit, 2.81 split in two).
    const int64_t fill_blocks = static_cast<int64_t>(in.num_sms) *
                                (r.path == FI4J_PATH_TENSOR_CORES ? kBlocksPerSmTensorCores : kBlocksPerSmCudaCores);
    const bool fills = static_cast<int64_t>(in.batch_size) * in.num_kv_heads >= fill_blocks;
    if (!fills || graph) {
      const int64_t desired_items = std::max<int64_t>(in.batch_size, (target_blocks + in.num_kv_heads - 1) / in.num_kv_heads);
      chunk = std::max(kMinChunk, align_up((total + desired_items - 1) / std::max<int64_t>(desired_items, 1), kChunkGranule));
      const int64_t limit = graph ? std::min<int64_t>(in.graph_slots, capacity_of_workspace) : capacity_of_workspace;
      while (items_for(chunk) > limit && chunk < (int64_t{1} << 31)) chunk *= 2;
      slots = items_for(chunk);
      // one chunk per request is no split at all: skip the merge (graph mode always keeps its fixed layout)
      if (!graph && slots <= in.batch_size) chunk = slots = 0;
    }
  }
  if (graph) slots = in.graph_slots;
  if (slots == 0) return r;

  const DecodeWorkspaceLayout l = decode_workspace_layout(slots, in.batch_size, in.num_qo_heads, in.head_dim);
  if (l.total > in.workspace_bytes)
    fail_arg("workspace_bytes", ">= " + std::to_string(l.total) + " for " + std::to_string(slots) + " work items",
             in.workspace_bytes);
  r.num_work = static_cast<int>(slots);
  r.chunk_size = static_cast<int>(chunk);
  r.workspace_bytes = l.total;
  r.int_section.assign(static_cast<size_t>(l.int_bytes / 4), 0);
  int32_t* request = r.int_section.data() + l.request / 4;
  int32_t* kv_start = r.int_section.data() + l.kv_start / 4;
  int32_t* kv_end = r.int_section.data() + l.kv_end / 4;
  int32_t* merge_indptr = r.int_section.data() + l.merge_indptr / 4;
  int64_t w = 0;
  for (int b = 0; b < in.batch_size; ++b) {
    merge_indptr[b] = static_cast<int32_t>(w);
    for (int64_t s = first[b]; s < len[b]; s += chunk, ++w) {
      request[w] = b;
      kv_start[w] = static_cast<int32_t>(s);
      kv_end[w] = static_cast<int32_t>(std::min(len[b], s + chunk));
    }
  }
  merge_indptr[in.batch_size] = static_cast<int32_t>(w);
  for (; w < slots; ++w) {  // idle graph slots
    request[w] = -1;
    kv_start[w] = kv_end[w] = 0;
  }
  return r;
}

}  // namespace fi4j
