// Plain parameter struct of prefill attention, shared by the CUDA kernels and the CPU reference backend.
// No host API, no allocation: raw pointers, element strides and sizes, validated by cpp/src/attention/prefill_ops.cpp
// before any kernel sees them.
#pragma once

#include "fi4j/attention/params.h"

#ifdef __CUDACC_RTC__
typedef unsigned char uint8_t;
#endif

namespace fi4j {

/// Which keys a query row may see (values match fi4j_mask_mode). The window applies on top of each.
enum class MaskMode : int32_t { None = 0, Causal = 1, Custom = 2 };

/// Where K/V live (values match fi4j_kv_storage).
enum class KvStorage : int32_t { Ragged = 0, Paged = 1 };

/// Ragged K/V: request b's keys are rows kv_indptr[b] .. kv_indptr[b+1]-1. Element (row, head, d) of K is
/// k[row*k_stride_n + head*k_stride_h + d] (NHD and HND are both expressed by the strides); V alike with its own.
/// kv_indptr == nullptr: a single request (batch_size 1) of nnz_kv rows.
struct RaggedKv {
  const void* k;
  int64_t k_stride_n;
  int64_t k_stride_h;
  const void* v;
  int64_t v_stride_n;
  int64_t v_stride_h;
  const int32_t* kv_indptr;  // [batch_size + 1] or nullptr
  int32_t nnz_kv;
};

/// A packed custom mask: request b's qo_len x kv_len booleans, row-major, little-endian bits (element o is
/// bit o % 8 of byte o / 8) starting at byte indptr[b] of bits. indptr == nullptr: one request at byte 0.
struct CustomMask {
  const uint8_t* bits;
  const int32_t* indptr;  // [batch_size + 1] byte offsets, or nullptr
};

/// What the plan left for the run. The CPU reference ignores it; the CUDA step defines what the workspace holds.
struct PrefillPlanView {
  int32_t num_work;    // 0: no split; else work items of the split-KV layout below, in the workspace
  int32_t cta_tile_q;  // query rows per block, 0: not planned
  void* workspace;
  int64_t workspace_bytes;
};

/// Split-KV prefill workspace (byte offsets, each 256-aligned), for num_work items over row tiles of rows_tile
/// packed rows. Work item w covers request work_request[w], row tile work_tile[w] and keys [work_kv_lo[w],
/// work_kv_hi[w]); the items of one row tile are consecutive and form group g = items group_indptr[g] ..
/// group_indptr[g+1]-1 (num_groups groups, stored as one int32 at offset 0). Item w of KV head h writes rows
/// [rows_tile] x head_dim fp32 outputs (normalised) at partial_o + ((w * num_kv_heads + h) * rows_tile + row) *
/// head_dim and their base-2 LSE at partial_lse + (w * num_kv_heads + h) * rows_tile + row.
struct PrefillSplitLayout {
  int64_t work_request, work_tile, work_kv_lo, work_kv_hi, group_indptr, partial_o, partial_lse, total;
};

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FI4J_PREFILL_HD __host__ __device__
#else
#define FI4J_PREFILL_HD
#endif

/// v rounded up to a multiple of 256.
FI4J_PREFILL_HD inline int64_t prefill_align256(int64_t v) { return (v + 255) / 256 * 256; }

/// The split workspace layout (host and device).
FI4J_PREFILL_HD inline PrefillSplitLayout prefill_split_layout(int64_t num_work, int64_t num_kv_heads,
                                                               int64_t rows_tile, int64_t head_dim) {
  PrefillSplitLayout l{};
  l.work_request = 256;
  l.work_tile = l.work_request + prefill_align256(4 * num_work);
  l.work_kv_lo = l.work_tile + prefill_align256(4 * num_work);
  l.work_kv_hi = l.work_kv_lo + prefill_align256(4 * num_work);
  l.group_indptr = l.work_kv_hi + prefill_align256(4 * num_work);
  l.partial_o = l.group_indptr + prefill_align256(4 * (num_work + 1));
  l.partial_lse = l.partial_o + prefill_align256(4 * num_work * num_kv_heads * rows_tile * head_dim);
  l.total = l.partial_lse + prefill_align256(4 * num_work * num_kv_heads * rows_tile);
  return l;
}

/// Batch prefill (single prefill = batch of one with null indptrs). For request b, query row i of
/// qo_len = qo_indptr[b+1] - qo_indptr[b] rows and key j of kv_len keys:
///   pos_q(i) = i + kv_len - qo_len; allowed(j) = (Custom ? mask bit (i*kv_len + j)
///              : Causal ? j <= pos_q(i) : true) && (window_left < 0 || j >= pos_q(i) - window_left).
/// Query head h reads KV head h / (num_qo_heads / num_kv_heads). Rows with nothing allowed: o = 0, lse = -inf.
/// RoPE (variant.pos_encoding RopeLlama): query row i at position pos_q(i), key j at position j.
struct PrefillParams {
  DType dtype;  // q, k, v, o share it
  int32_t batch_size;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  const int32_t* qo_indptr;  // [batch_size + 1], or nullptr: one request of nnz_qo rows
  int32_t nnz_qo;
  const void* q;             // [nnz_qo, num_qo_heads, head_dim]
  int64_t q_stride_n;
  int64_t q_stride_h;
  void* o;                   // like q
  int64_t o_stride_n;
  int64_t o_stride_h;
  float* lse;                // [nnz_qo, num_qo_heads] contiguous, base 2, or nullptr
  KvStorage kv_storage;
  RaggedKv ragged;           // when kv_storage == Ragged
  PagedKv paged;             // when kv_storage == Paged (single_kv_len unused)
  MaskMode mask_mode;
  CustomMask mask;           // when mask_mode == Custom
  AttentionVariant variant;
  PrefillPlanView plan;
};

}  // namespace fi4j
