// Ahead-of-time instantiations of the tensor-core batch prefill kernel (prefill.cuh) and its launcher.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include <atomic>
#include <type_traits>

#include "fi4j/decode_launch.cuh"
#include "fi4j/prefill.cuh"
#include "fi4j/prefill_launch.h"

namespace fi4j {

namespace {

template <typename T, int D, int kM, int kW, bool kCap, bool kRope>
cudaError_t launch_config(const PrefillParams& p, cudaStream_t stream) {
  const auto kernel = prefill::batch_prefill_kernel<T, D, kM, kW, kCap, kRope>;
  constexpr int kSmem = prefill::smem_bytes<D, kM, kW, kRope>();
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = decode::opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  constexpr int kRows = prefill::Geometry<D, kM, kW>::kRowsTile;
  const long long tiles = p.plan.num_work > 0 ? p.plan.num_work : prefill::max_row_tiles(p, kRows);
  if (tiles > 0x7fffffffLL) return cudaErrorNotSupported;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(p.num_kv_heads));
  kernel<<<grid, 32 * kW, kSmem, stream>>>(p);
  if (p.plan.num_work == 0) return cudaGetLastError();
  const cudaError_t err2 = cudaGetLastError();
  if (err2 != cudaSuccess) return err2;
  prefill::batch_prefill_merge_kernel<T><<<grid, prefill::kMergeThreads, 0, stream>>>(p, kRows);
  return cudaGetLastError();
}

template <typename T, int D, bool kCap>
cudaError_t launch_shape(const PrefillParams& p, int cta_tile_q, cudaStream_t stream) {
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  if (rope) return launch_config<T, D, 1, 4, kCap, true>(p, stream);
  const prefill::TileShape shape = prefill::tile_shape(D, false, cta_tile_q);
  if constexpr (D <= 128) {
    if (shape.row_tiles == 2) return launch_config<T, D, 2, 8, kCap, false>(p, stream);
  }
  if (shape.warps == 8) return launch_config<T, D, 1, 8, kCap, false>(p, stream);
  return launch_config<T, D, 1, 4, kCap, false>(p, stream);
}

template <typename T, int D>
cudaError_t launch_variant(const PrefillParams& p, int cta_tile_q, cudaStream_t stream) {
  return p.variant.logits_soft_cap > 0.f ? launch_shape<T, D, true>(p, cta_tile_q, stream)
                                         : launch_shape<T, D, false>(p, cta_tile_q, stream);
}

template <typename T>
cudaError_t launch_dim(const PrefillParams& p, int cta_tile_q, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64:
      return launch_variant<T, 64>(p, cta_tile_q, stream);
    case 128:
      return launch_variant<T, 128>(p, cta_tile_q, stream);
    case 256:
      return launch_variant<T, 256>(p, cta_tile_q, stream);
    default:
      return cudaErrorNotSupported;
  }
}

template <int D>
int smem_of(prefill::TileShape shape, bool rope) {
  if (rope) return prefill::smem_bytes<D, 1, 4, true>();
  if constexpr (D <= 128) {
    if (shape.row_tiles == 2) return prefill::smem_bytes<D, 2, 8, false>();
  }
  if (shape.warps == 8) return prefill::smem_bytes<D, 1, 8, false>();
  return prefill::smem_bytes<D, 1, 4, false>();
}

}  // namespace

int prefill_cta_tile_q(int head_dim, bool rope, int cta_tile_q) {
  return prefill::tile_shape(head_dim, rope, cta_tile_q).rows();
}

int prefill_smem_bytes(int head_dim, bool rope, int cta_tile_q) {
  const prefill::TileShape shape = prefill::tile_shape(head_dim, rope, cta_tile_q);
  switch (head_dim) {
    case 64: return smem_of<64>(shape, rope);
    case 128: return smem_of<128>(shape, rope);
    case 256: return smem_of<256>(shape, rope);
    default: return 0;
  }
}

int prefill_choose_cta_tile_q(int head_dim, bool rope, long long max_rows, int smem_limit) {
  if (rope || max_rows <= 64) return 64;
  for (int rows : {256, 128})
    if (prefill_cta_tile_q(head_dim, rope, rows) == rows && prefill_smem_bytes(head_dim, rope, rows) <= smem_limit)
      return rows;
  return 64;
}

cudaError_t launch_batch_prefill(const PrefillParams& p, cudaStream_t stream) {
  if (p.variant.pos_encoding != PosEncoding::None && p.variant.pos_encoding != PosEncoding::RopeLlama)
    return cudaErrorNotSupported;
  if (p.mask_mode != MaskMode::None && p.mask_mode != MaskMode::Causal && p.mask_mode != MaskMode::Custom)
    return cudaErrorNotSupported;
  if (p.kv_storage != KvStorage::Ragged && p.kv_storage != KvStorage::Paged) return cudaErrorNotSupported;
  if (p.num_kv_heads <= 0 || p.num_qo_heads <= 0 || p.num_qo_heads % p.num_kv_heads != 0)
    return cudaErrorNotSupported;
  if (p.kv_storage == KvStorage::Paged && p.paged.kv_indptr == nullptr) return cudaErrorNotSupported;
  if (p.dtype != DType::F16 && p.dtype != DType::BF16) return cudaErrorNotSupported;
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) return cudaErrorNotSupported;
  if (p.nnz_qo <= 0 || (p.qo_indptr != nullptr && p.batch_size <= 0)) return cudaSuccess;
    // Query rows per block: the caller's choice (prefill_choose_cta_tile_q), else 64 for a single request that fits
  // one 64-row tile and 256 (or what the head dim allows) otherwise.
  int cta_tile_q = p.plan.cta_tile_q;
  if (cta_tile_q == 0)
    cta_tile_q = p.qo_indptr == nullptr &&
                         static_cast<long long>(p.nnz_qo) * (p.num_qo_heads / p.num_kv_heads) <= 64 ? 64 : 256;
  // A split plan's work items are row tiles of the planned block size: run unsplit when this call's block size
  // differs (RoPE, which the plan does not know, runs 64-row blocks).
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  if (p.plan.num_work > 0 && (p.plan.workspace == nullptr ||
                              prefill_cta_tile_q(p.head_dim, rope, cta_tile_q) != p.plan.cta_tile_q)) {
    PrefillParams unsplit = p;
    unsplit.plan.num_work = 0;
    return unsplit.dtype == DType::F16 ? launch_dim<__half>(unsplit, cta_tile_q, stream)
                                       : launch_dim<__nv_bfloat16>(unsplit, cta_tile_q, stream);
  }
  return p.dtype == DType::F16 ? launch_dim<__half>(p, cta_tile_q, stream)
                               : launch_dim<__nv_bfloat16>(p, cta_tile_q, stream);
}

}  // namespace fi4j
