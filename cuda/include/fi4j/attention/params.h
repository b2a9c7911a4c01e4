// Plain parameter structs of attention (decode, append; prefill's are in prefill_params.h), shared by the CUDA
// kernels and the CPU reference backend. No host API, no allocation: raw pointers, element strides and sizes.
// Validated by the caller (cpp/src/attention) before any kernel sees them.
#pragma once

#include "fi4j/common/dtype.h"

namespace fi4j {

/// Positional encoding applied inside attention (values match the C API).
enum class PosEncoding : int32_t { None = 0, RopeLlama = 1 };

/// A paged KV cache plus the page table that maps requests onto its pages.
/// Token t of request b is page kv_indices[kv_indptr[b] + t / page_size], slot t % page_size.
/// Element (page, slot, head, d) of K is k[page*page_stride + slot*token_stride + head*head_stride + d];
/// NHD, HND and the combined K/V tensor are all expressed by these strides (V shares them).
/// Single-request mode: kv_indptr == nullptr means one request of single_kv_len tokens stored in page 0
/// (page_size >= single_kv_len), which is how single decode over plain K/V tensors is expressed.
struct PagedKv {
  const void* k;
  const void* v;
  int64_t page_stride;
  int64_t token_stride;
  int64_t head_stride;
  int32_t num_pages;
  int32_t page_size;
  int32_t num_kv_heads;
  int32_t head_dim;
  const int32_t* kv_indptr;         // [batch_size + 1], device (or host for the CPU backend)
  const int32_t* kv_indices;        // [kv_indptr[batch_size]]
  const int32_t* kv_last_page_len;  // [batch_size]
  int32_t batch_size;
  int32_t single_kv_len;
};

/// Attention variant parameters common to decode and prefill.
struct AttentionVariant {
  float sm_scale;         // applied to q.k before the soft cap
  float logits_soft_cap;  // <= 0: off
  int32_t window_left;    // < 0: off; else keys j >= pos_q - window_left
  PosEncoding pos_encoding;
  float rope_rcp_scale;   // 1 / rope_scale
  float rope_theta;
};

/// Split-KV work partition made by the host planner. Work item i attends request request[i]'s tokens
/// [kv_start[i], kv_end[i]) (the window still applies inside) and writes a partial state:
/// partial_o[i, h, :] (normalised within the chunk, fp32) and partial_lse[i, h] (base 2, -inf when the chunk saw
/// nothing). The merge step folds the items merge_indptr[b] .. merge_indptr[b+1]-1 of request b, in order, into
/// o and lse. num_work == 0 means no split: one block per (request, KV head) writes o and lse directly.
/// An item with request[i] < 0 is an idle slot (graph mode pads the grid to a fixed size).
struct DecodeWork {
  const int32_t* request;       // [num_work]
  const int32_t* kv_start;      // [num_work]
  const int32_t* kv_end;        // [num_work]
  const int32_t* merge_indptr;  // [batch_size + 1]
  int32_t num_work;
  float* partial_o;             // [num_work, num_qo_heads, head_dim]
  float* partial_lse;           // [num_work, num_qo_heads]
};

/// Which decode kernel runs: CUDA cores (one lane group per token row) or tensor cores (the group's query heads
/// as the rows of an mma tile). Chosen on the host; both compute the same function.
enum class DecodePath : int32_t { CudaCores = 0, TensorCores = 1 };

/// Batch decode: one query row per request, attending to its whole (paged) KV.
struct DecodeParams {
  DType dtype;  // q, k, v, o share it in this version
  const void* q;        // [batch, num_qo_heads, head_dim]
  int64_t q_stride_n;   // elements between requests
  int64_t q_stride_h;   // elements between heads
  void* o;              // same shape as q
  int64_t o_stride_n;
  int64_t o_stride_h;
  float* lse;           // [batch, num_qo_heads] base-2 log-sum-exp, or nullptr
  int32_t num_qo_heads;
  PagedKv kv;
  AttentionVariant variant;
  DecodeWork work;
  DecodePath path;
};

/// Append new tokens into a paged cache. Token n goes to request batch_indices[n] at position positions[n].
/// Tokens whose (request, position) fall outside the request's pages are skipped by the kernels (the host
/// validates beforehand and reports them as errors; the skip is the last line of defence).
struct AppendParams {
  DType dtype;
  int32_t nnz;
  const void* keys;       // [nnz, num_kv_heads, head_dim]
  int64_t keys_stride_n;
  int64_t keys_stride_h;
  const void* values;
  int64_t values_stride_n;
  int64_t values_stride_h;
  const int32_t* batch_indices;  // [nnz]
  const int32_t* positions;      // [nnz]
  void* k_cache;                 // written through kv's strides
  void* v_cache;
  PagedKv kv;                    // kv.k / kv.v unused (const); k_cache / v_cache are the targets
};

}  // namespace fi4j
