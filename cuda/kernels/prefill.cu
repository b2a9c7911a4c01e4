// Ahead-of-time instantiations of the tensor-core batch prefill kernel (prefill.cuh) and its launcher.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include <atomic>
#include <type_traits>

#include "fi4j/decode_launch.cuh"
#include "fi4j/prefill.cuh"
#include "fi4j/prefill_geometry.h"
#include "fi4j/prefill_launch.h"

namespace fi4j {

namespace {

namespace geom = prefill_geometry;

// The launch arithmetic of prefill_geometry.h (shared with the run-time compiled kernels) must describe these
// kernels: same block, same kM rule, same rows, tiles and shared memory.
static_assert(geom::kWarps == prefill::kWarps && geom::kThreads == prefill::kThreads, "prefill block size");
constexpr bool row_tiles_agree() {
  for (int d = 16; d <= 256; d += 16)
    for (int cta : {0, 64, 128})
      for (bool rope : {false, true})
        if (geom::row_tiles_per_warp(d, rope, cta) != prefill::row_tiles_per_warp(d, rope, cta)) return false;
  return true;
}
static_assert(row_tiles_agree(), "prefill_geometry.h row_tiles_per_warp differs from prefill.cuh");

template <typename T, int D, int kM, bool kCap, bool kRope>
cudaError_t launch_config(const PrefillParams& p, const geom::LaunchShape& s, cudaStream_t stream) {
  const auto kernel = prefill::batch_prefill_kernel<T, D, kM, kCap, kRope>;
  constexpr int kSmem = prefill::smem_bytes<D, kM, kRope>();
  static_assert(kSmem == geom::smem_bytes(D, kM, kRope), "prefill_geometry.h smem_bytes differs from prefill.cuh");
  static_assert(prefill::Geometry<D, kM>::kRowsTile == geom::rows_tile(kM), "rows per block");
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = decode::opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(s.tiles), static_cast<unsigned>(s.kv_heads));
  kernel<<<grid, prefill::kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch_variant(const PrefillParams& p, const geom::LaunchShape& s, cudaStream_t stream) {
  const bool cap = p.variant.logits_soft_cap > 0.f;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  if (rope)
    return cap ? launch_config<T, D, 1, true, true>(p, s, stream) : launch_config<T, D, 1, false, true>(p, s, stream);
  if constexpr (D <= 128) {
    if (s.kM == 2)
      return cap ? launch_config<T, D, 2, true, false>(p, s, stream)
                 : launch_config<T, D, 2, false, false>(p, s, stream);
  }
  return cap ? launch_config<T, D, 1, true, false>(p, s, stream) : launch_config<T, D, 1, false, false>(p, s, stream);
}

template <typename T>
cudaError_t launch_dim(const PrefillParams& p, const geom::LaunchShape& s, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64:
      return launch_variant<T, 64>(p, s, stream);
    case 128:
      return launch_variant<T, 128>(p, s, stream);
    case 256:
      return launch_variant<T, 256>(p, s, stream);
    default:
      return cudaErrorNotSupported;
  }
}

}  // namespace

int prefill_cta_tile_q(int head_dim, bool rope, int cta_tile_q) {
  return geom::rows_tile(geom::row_tiles_per_warp(head_dim, rope, cta_tile_q));
}

int prefill_smem_bytes(int head_dim, bool rope, int cta_tile_q) {
  if (!geom::head_dim_supported(head_dim)) return 0;
  return geom::smem_bytes(head_dim, geom::row_tiles_per_warp(head_dim, rope, cta_tile_q), rope);
}

cudaError_t launch_batch_prefill(const PrefillParams& p, cudaStream_t stream) {
  geom::LaunchShape s{};
  const geom::LaunchCheck check = geom::launch_shape(p, &s);
  if (check == geom::LaunchCheck::Unsupported) return cudaErrorNotSupported;
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) return cudaErrorNotSupported;
  if (check == geom::LaunchCheck::Nothing) return cudaSuccess;
  return p.dtype == DType::F16 ? launch_dim<__half>(p, s, stream) : launch_dim<__nv_bfloat16>(p, s, stream);
}

}  // namespace fi4j
