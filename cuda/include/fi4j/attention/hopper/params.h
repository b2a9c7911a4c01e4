// Parameters of the Hopper prefill kernel: what the caller passes (raw device pointers, element strides, sizes)
// and what the kernel receives (the same plus three tensor maps encoded by the launcher).
//
// Semantics (SPEC.md): request b owns query rows qo_indptr[b] .. qo_indptr[b+1]-1 of q/o and key rows
// kv_indptr[b] .. kv_indptr[b+1]-1 of k/v (null indptrs: one request of nnz_qo / nnz_kv rows). Query row i of a
// request sits at position pos_q(i) = i + kv_len - qo_len; causal allows keys j <= pos_q(i). Query head h reads
// KV head h / (num_qo_heads / num_kv_heads). lse[row * num_qo_heads + h] = log2(sum_j exp(sm_scale * q.k_j));
// rows that see no key get o = 0 and lse = -inf.
#pragma once

#include <cuda.h>
#include <stdint.h>

namespace fi4j {
namespace hopper {

/// Caller-facing arguments. Element (row, head, d) of q is q[row * q_stride_n + head * q_stride_h + d]; k, v, o
/// alike. The copy engine needs 16-byte aligned base pointers and row / head strides that are multiples of 8
/// elements; o alike (it is written in 16-byte units). sm_scale must be > 0.
struct PrefillSm90Args {
  const void* q;
  int64_t q_stride_n;
  int64_t q_stride_h;
  const void* k;
  int64_t k_stride_n;
  int64_t k_stride_h;
  const void* v;
  int64_t v_stride_n;
  int64_t v_stride_h;
  void* o;
  int64_t o_stride_n;
  int64_t o_stride_h;
  float* lse;                 // [nnz_qo, num_qo_heads] or nullptr
  const int32_t* qo_indptr;   // [batch_size + 1] (device) or nullptr
  const int32_t* kv_indptr;   // [batch_size + 1] (device) or nullptr
  int32_t batch_size;         // 1 when the indptrs are null
  int32_t nnz_qo;
  int32_t nnz_kv;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  float sm_scale;
  int32_t causal;             // bottom-right aligned
};

/// What the kernel gets by value (__grid_constant__): the tensor maps must stay in parameter space.
struct PrefillSm90KernelParams {  // 64-byte aligned through its CUtensorMap members
  CUtensorMap tma_q;  // dims (D, num_qo_heads, nnz_qo), box (64, 1, 64)
  CUtensorMap tma_k;  // dims (D, num_kv_heads, nnz_kv), box (64, 1, kN)
  CUtensorMap tma_v;
  void* o;
  int64_t o_stride_n;
  int64_t o_stride_h;
  float* lse;
  const int32_t* qo_indptr;
  const int32_t* kv_indptr;
  int32_t batch_size;
  int32_t nnz_qo;
  int32_t nnz_kv;
  int32_t num_qo_heads;
  int32_t group;       // num_qo_heads / num_kv_heads
  float scale_log2;    // sm_scale * log2(e)
  int32_t causal;
};

}  // namespace hopper
}  // namespace fi4j
