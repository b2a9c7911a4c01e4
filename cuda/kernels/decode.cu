// Ahead-of-time instantiations of the batch decode kernel and its launcher.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include "fi4j/decode.cuh"
#include "fi4j/launch.h"

namespace fi4j {
namespace {

template <typename T, int D, bool kSoftCap, bool kRope>
cudaError_t launch_decode(const DecodeParams& p, cudaStream_t stream) {
  const auto kernel = decode::batch_decode_kernel<T, D, kSoftCap, kRope>;
  constexpr int kSmem = decode::smem_bytes<D, kRope>();
  // Above the 48 KB default: opt in (not a stream operation, so it is legal inside graph capture).
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.kv.batch_size), static_cast<unsigned>(p.kv.num_kv_heads));
  kernel<<<grid, decode::kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

/// One key per instantiated configuration; -1 for anything without a kernel.
constexpr int decode_config(DType dtype, int head_dim, bool soft_cap, bool rope) {
  const int t = dtype == DType::F16 ? 0 : dtype == DType::BF16 ? 1 : -1;
  const int d = head_dim == 64 ? 0 : head_dim == 128 ? 1 : head_dim == 256 ? 2 : -1;
  return (t < 0 || d < 0) ? -1 : ((t * 3 + d) * 2 + (soft_cap ? 1 : 0)) * 2 + (rope ? 1 : 0);
}

}  // namespace

cudaError_t launch_batch_decode(const DecodeParams& p, cudaStream_t stream) {
  if (p.variant.pos_encoding != PosEncoding::None && p.variant.pos_encoding != PosEncoding::RopeLlama)
    return cudaErrorNotSupported;
  if (p.kv.batch_size == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  const bool soft_cap = p.variant.logits_soft_cap > 0.f;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
#define FI4J_DECODE_CASE(DT, T, D, CAP, ROPE) \
  case decode_config(DType::DT, D, CAP, ROPE): \
    return launch_decode<T, D, CAP, ROPE>(p, stream);
#define FI4J_DECODE_VARIANTS(DT, T, D)             \
  FI4J_DECODE_CASE(DT, T, D, false, false)         \
  FI4J_DECODE_CASE(DT, T, D, false, true)          \
  FI4J_DECODE_CASE(DT, T, D, true, false)          \
  FI4J_DECODE_CASE(DT, T, D, true, true)
  switch (decode_config(p.dtype, p.kv.head_dim, soft_cap, rope)) {
    FI4J_DECODE_VARIANTS(F16, __half, 64)
    FI4J_DECODE_VARIANTS(F16, __half, 128)
    FI4J_DECODE_VARIANTS(F16, __half, 256)
    FI4J_DECODE_VARIANTS(BF16, __nv_bfloat16, 64)
    FI4J_DECODE_VARIANTS(BF16, __nv_bfloat16, 128)
    FI4J_DECODE_VARIANTS(BF16, __nv_bfloat16, 256)
    default:
      return cudaErrorNotSupported;
  }
#undef FI4J_DECODE_VARIANTS
#undef FI4J_DECODE_CASE
}

}  // namespace fi4j
