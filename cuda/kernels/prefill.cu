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

template <typename T, int D, int kM, bool kCap, bool kRope>
cudaError_t launch_config(const PrefillParams& p, cudaStream_t stream) {
  const auto kernel = prefill::batch_prefill_kernel<T, D, kM, kCap, kRope>;
  constexpr int kSmem = prefill::smem_bytes<D, kM, kRope>();
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = decode::opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const long long tiles = prefill::max_row_tiles(p, prefill::Geometry<D, kM>::kRowsTile);
  if (tiles > 0x7fffffffLL) return cudaErrorNotSupported;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(p.num_kv_heads));
  kernel<<<grid, prefill::kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch_variant(const PrefillParams& p, int cta_tile_q, cudaStream_t stream) {
  const bool cap = p.variant.logits_soft_cap > 0.f;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  if (rope) return cap ? launch_config<T, D, 1, true, true>(p, stream) : launch_config<T, D, 1, false, true>(p, stream);
  if constexpr (D <= 128) {
    if (prefill::row_tiles_per_warp(D, false, cta_tile_q) == 2)
      return cap ? launch_config<T, D, 2, true, false>(p, stream) : launch_config<T, D, 2, false, false>(p, stream);
  }
  return cap ? launch_config<T, D, 1, true, false>(p, stream) : launch_config<T, D, 1, false, false>(p, stream);
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
int smem_of(int kM, bool rope) {
  if (rope) return prefill::smem_bytes<D, 1, true>();
  if constexpr (D <= 128) {
    if (kM == 2) return prefill::smem_bytes<D, 2, false>();
  }
  return prefill::smem_bytes<D, 1, false>();
}

}  // namespace

int prefill_cta_tile_q(int head_dim, bool rope, int cta_tile_q) {
  return 16 * prefill::kWarps * prefill::row_tiles_per_warp(head_dim, rope, cta_tile_q);
}

int prefill_smem_bytes(int head_dim, bool rope, int cta_tile_q) {
  const int kM = prefill::row_tiles_per_warp(head_dim, rope, cta_tile_q);
  switch (head_dim) {
    case 64: return smem_of<64>(kM, rope);
    case 128: return smem_of<128>(kM, rope);
    case 256: return smem_of<256>(kM, rope);
    default: return 0;
  }
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
    // Query rows per block: the plan's choice, else (single prefill, or not planned) 64 when the whole request fits
  // in one 64-row tile, else 128 where the configuration allows it.
  int cta_tile_q = p.plan.cta_tile_q;
  if (cta_tile_q == 0 && p.qo_indptr == nullptr)
    cta_tile_q = static_cast<long long>(p.nnz_qo) * (p.num_qo_heads / p.num_kv_heads) <= 16 * prefill::kWarps ? 64 : 128;
  return p.dtype == DType::F16 ? launch_dim<__half>(p, cta_tile_q, stream)
                               : launch_dim<__nv_bfloat16>(p, cta_tile_q, stream);
}

}  // namespace fi4j
