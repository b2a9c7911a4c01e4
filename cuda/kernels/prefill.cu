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

template <typename T, int D, bool kCap, bool kRope>
cudaError_t launch_config(const PrefillParams& p, cudaStream_t stream) {
  const auto kernel = prefill::batch_prefill_kernel<T, D, kCap, kRope>;
  constexpr int kSmem = prefill::smem_bytes<D, kRope>();
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = decode::opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const long long tiles = prefill::max_row_tiles(p);
  if (tiles > 0x7fffffffLL) return cudaErrorNotSupported;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(p.num_kv_heads));
  kernel<<<grid, prefill::kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch_variant(const PrefillParams& p, cudaStream_t stream) {
  const bool cap = p.variant.logits_soft_cap > 0.f;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  if (cap) return rope ? launch_config<T, D, true, true>(p, stream) : launch_config<T, D, true, false>(p, stream);
  return rope ? launch_config<T, D, false, true>(p, stream) : launch_config<T, D, false, false>(p, stream);
}

template <typename T>
cudaError_t launch_dim(const PrefillParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64:
      return launch_variant<T, 64>(p, stream);
    case 128:
      return launch_variant<T, 128>(p, stream);
    case 256:
      return launch_variant<T, 256>(p, stream);
    default:
      return cudaErrorNotSupported;
  }
}

}  // namespace

int prefill_smem_bytes(int head_dim, bool rope) {
  switch (head_dim) {
    case 64: return rope ? prefill::smem_bytes<64, true>() : prefill::smem_bytes<64, false>();
    case 128: return rope ? prefill::smem_bytes<128, true>() : prefill::smem_bytes<128, false>();
    case 256: return rope ? prefill::smem_bytes<256, true>() : prefill::smem_bytes<256, false>();
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
  return p.dtype == DType::F16 ? launch_dim<__half>(p, stream) : launch_dim<__nv_bfloat16>(p, stream);
}

}  // namespace fi4j
