// Host launcher of the Hopper prefill kernel. Encodes the three tensor maps (cuTensorMapEncodeTiled, reached
// through the runtime's driver entry point so that nothing links libcuda), checks what the copy engine and the
// kernel require, and launches on the caller's stream. No allocation, no synchronisation: capturable in a graph.
// Returns cudaErrorInvalidValue for arguments the kernel cannot take (the library validates before this).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include "fi4j/attention/hopper/kernel.cuh"

namespace fi4j {
namespace hopper {

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

inline EncodeTiledFn encode_tiled_fn() {
  static EncodeTiledFn fn = []() -> EncodeTiledFn {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) !=
            cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      return nullptr;
    return reinterpret_cast<EncodeTiledFn>(f);
  }();
  return fn;
}

template <typename T>
constexpr CUtensorMapDataType tma_dtype();
template <>
constexpr CUtensorMapDataType tma_dtype<__nv_bfloat16>() {
  return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}
template <>
constexpr CUtensorMapDataType tma_dtype<__half>() {
  return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
}

/// A rank-3 map (D, heads, rows) of 16-bit elements with row / head strides in elements, box (64, 1, box_rows),
/// 128-byte swizzle, zero fill out of bounds.
template <typename T>
inline bool encode_map(CUtensorMap* map, const void* ptr, int d, int heads, int rows, int64_t stride_h,
                       int64_t stride_n, int box_rows) {
  const EncodeTiledFn fn = encode_tiled_fn();
  if (fn == nullptr) return false;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(d), static_cast<cuuint64_t>(heads),
                              static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(stride_h) * sizeof(T),
                                 static_cast<cuuint64_t>(stride_n) * sizeof(T)};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t estr[3] = {1, 1, 1};
  return fn(map, tma_dtype<T>(), 3, const_cast<void*>(ptr), dims, strides, box, estr,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

/// Shared memory the launch asks for, in bytes.
template <class Tile>
constexpr int prefill_sm90_smem_bytes() {
  return SmemLayout<Tile>::kAllocBytes;
}

/// Multiprocessors of the current device (cached per device ordinal).
inline int sm_count() {
  static int cached[64] = {0};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return 0;
  if (dev < 64 && cached[dev] > 0) return cached[dev];
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
  if (dev < 64) cached[dev] = n;
  return n;
}

/// kPersistent defaults to false: the one-block-per-item schedule is the one swept on the GPU; the persistent one
/// is faster on long single requests (run 2) but its multi-request fix awaits a GPU run (NOTES.md).
template <typename T, class Tile, bool kOverlap = true, bool kPingPong = true, bool kPersistent = false>
cudaError_t prefill_sm90_launch(const PrefillSm90Args& a, cudaStream_t stream) {
  constexpr int D = Tile::D;
  if (a.nnz_qo < 0 || a.nnz_kv < 0 || a.num_qo_heads <= 0 || a.num_kv_heads <= 0 ||
      a.num_qo_heads % a.num_kv_heads != 0 || !(a.sm_scale > 0.f) || a.o == nullptr)
    return cudaErrorInvalidValue;
  const bool batched = a.qo_indptr != nullptr;
  if (batched != (a.kv_indptr != nullptr) || (batched && a.batch_size <= 0)) return cudaErrorInvalidValue;
  if (a.nnz_qo == 0) return cudaSuccess;
  if (!aligned16(a.q) || !aligned16(a.o) || a.q_stride_n % 8 || a.q_stride_h % 8 || a.o_stride_n % 8 ||
      a.o_stride_h % 8)
    return cudaErrorInvalidValue;

  PrefillSm90KernelParams p{};
  if (!encode_map<T>(&p.tma_q, a.q, D, a.num_qo_heads, a.nnz_qo, a.q_stride_h, a.q_stride_n, 64))
    return cudaErrorInvalidValue;
  if (a.nnz_kv > 0) {
    if (!aligned16(a.k) || !aligned16(a.v) || a.k_stride_n % 8 || a.k_stride_h % 8 || a.v_stride_n % 8 ||
        a.v_stride_h % 8)
      return cudaErrorInvalidValue;
    if (!encode_map<T>(&p.tma_k, a.k, D, a.num_kv_heads, a.nnz_kv, a.k_stride_h, a.k_stride_n, Tile::kN) ||
        !encode_map<T>(&p.tma_v, a.v, D, a.num_kv_heads, a.nnz_kv, a.v_stride_h, a.v_stride_n, Tile::kN))
      return cudaErrorInvalidValue;
  } else {  // no keys anywhere: no block loads K/V, the maps only have to be valid
    p.tma_k = p.tma_q;
    p.tma_v = p.tma_q;
  }
  p.o = a.o;
  p.o_stride_n = a.o_stride_n;
  p.o_stride_h = a.o_stride_h;
  p.lse = a.lse;
  p.qo_indptr = a.qo_indptr;
  p.kv_indptr = a.kv_indptr;
  p.batch_size = batched ? a.batch_size : 1;
  p.nnz_qo = a.nnz_qo;
  p.nnz_kv = a.nnz_kv;
  p.num_qo_heads = a.num_qo_heads;
  p.group = a.num_qo_heads / a.num_kv_heads;
  p.scale_log2 = a.sm_scale * 1.4426950408889634f;
  p.causal = a.causal != 0;

  const long long tiles =
      (static_cast<long long>(a.nnz_qo) + Tile::kRows - 1) / Tile::kRows + (batched ? a.batch_size : 0);
  const long long items = tiles * a.num_qo_heads;
  if (tiles > 65535 || items > 2147483647LL) return cudaErrorInvalidValue;
  dim3 grid(a.num_qo_heads, static_cast<unsigned>(tiles));
  if (kPersistent) {
    const int sms = sm_count();
    if (sms <= 0) return cudaErrorInvalidDevice;
    grid = dim3(static_cast<unsigned>(items < sms ? items : sms));
  }
  constexpr int smem = prefill_sm90_smem_bytes<Tile>();
  auto kernel = prefill_sm90_kernel<T, Tile, kOverlap, kPingPong, kPersistent>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<grid, Tile::kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace hopper
}  // namespace fi4j
