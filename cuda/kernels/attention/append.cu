// Ahead-of-time instantiations of the paged-KV append kernel and its launcher (same translation unit: nvcc 13
// gives explicitly instantiated __global__ templates internal linkage).
#include "fi4j/attention/append.cuh"
#include "fi4j/attention/launch.h"

namespace fi4j {
namespace {

template <int D>
cudaError_t launch_append(const AppendParams& p, cudaStream_t stream) {
  const int64_t kChunks = (D > 0 ? D : p.kv.head_dim) / kVecElems;
  const int64_t items = static_cast<int64_t>(p.nnz) * p.kv.num_kv_heads * kChunks;
  // The kernel is grid-stride; 2^20 blocks of 256 threads already cover 2^28 chunks per sweep.
  const int64_t blocks = (items + append::kThreads - 1) / append::kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
  append::append_paged_kv_kernel<D><<<grid, append::kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

/// One key per instantiated configuration; -1 for anything without a kernel. The copy moves 16-bit elements, so
/// F16 and BF16 share the kernel of their head dim.
constexpr int append_config(DType dtype, int head_dim) {
  const int t = dtype == DType::F16 ? 0 : dtype == DType::BF16 ? 1 : -1;
  const int d = head_dim == 64 ? 0 : head_dim == 128 ? 1 : head_dim == 256 ? 2 : -1;
  return (t < 0 || d < 0) ? -1 : t * 3 + d;
}

}  // namespace

cudaError_t launch_append_paged_kv(const AppendParams& p, cudaStream_t stream) {
  if (p.nnz == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  switch (append_config(p.dtype, p.kv.head_dim)) {
    case append_config(DType::F16, 64):
    case append_config(DType::BF16, 64):
      return launch_append<64>(p, stream);
    case append_config(DType::F16, 128):
    case append_config(DType::BF16, 128):
      return launch_append<128>(p, stream);
    case append_config(DType::F16, 256):
    case append_config(DType::BF16, 256):
      return launch_append<256>(p, stream);
    default:
      // Other head dims (validated by the caller: multiples of 16 up to 256) take the run-time-sized copy.
      if ((p.dtype == DType::F16 || p.dtype == DType::BF16) && p.kv.head_dim > 0 && p.kv.head_dim % kVecElems == 0)
        return launch_append<0>(p, stream);
      return cudaErrorNotSupported;
  }
}

}  // namespace fi4j
