// Ahead-of-time instantiations of the tensor-core batch prefill kernel (prefill.cuh) and its launcher.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include <atomic>
#include <type_traits>

#include "fi4j/attention/prefill.cuh"
#include "fi4j/attention/prefill_geometry.h"
#include "fi4j/attention/prefill_launch.h"
#include "fi4j/attention/aot_dispatch.cuh"
#include "fi4j/common/launch_util.h"

namespace fi4j {

namespace {

namespace geom = prefill_geometry;

static_assert(geom::kMergeThreads == prefill::kMergeThreads, "merge block size");

template <typename T, int D, int kM, int kW, bool kCap, bool kRope>
cudaError_t launch_config(const PrefillParams& p, const geom::LaunchShape& s, cudaStream_t stream) {
  using G = prefill::Geometry<D, kM, kW>;
  const auto kernel = prefill::batch_prefill_kernel<T, D, kM, kW, kCap, kRope>;
  constexpr int kSmem = prefill::smem_bytes<D, kM, kW, kRope>();
  // The launch arithmetic of prefill_geometry.h (shared with the run-time compiled kernels and the plan) must
  // describe this kernel.
  static_assert(kSmem == geom::smem_bytes(D, geom::TileShape{kW, kM}, kRope), "prefill_geometry.h smem_bytes");
  static_assert(G::kRowsTile == geom::TileShape{kW, kM}.rows(), "prefill_geometry.h rows per block");
  static_assert(G::kKvTile == geom::kv_tile(D) && G::kStride == geom::smem_stride(D), "prefill_geometry.h tiles");
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(s.tiles), static_cast<unsigned>(s.kv_heads));
  kernel<<<grid, 32 * kW, kSmem, stream>>>(p);
  if (!s.split) return cudaGetLastError();
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) return launched;
  prefill::batch_prefill_merge_kernel<T><<<grid, prefill::kMergeThreads, 0, stream>>>(p, G::kRowsTile);
  return cudaGetLastError();
}

template <typename T, int D, bool kCap>
cudaError_t launch_shape(const PrefillParams& p, const geom::LaunchShape& s, cudaStream_t stream) {
  if (p.variant.pos_encoding == PosEncoding::RopeLlama) return launch_config<T, D, 1, 4, kCap, true>(p, s, stream);
  if constexpr (D <= 128) {
    if (s.shape.row_tiles == 2) return launch_config<T, D, 2, 8, kCap, false>(p, s, stream);
  }
  if (s.shape.warps == 8) return launch_config<T, D, 1, 8, kCap, false>(p, s, stream);
  return launch_config<T, D, 1, 4, kCap, false>(p, s, stream);
}

/// The launcher of one instantiation: the block shape and the split from the plan (prefill_geometry.h), then the
/// kernel and, for a split plan, the merge.
template <typename T, int D, bool kCap>
cudaError_t launch_prefill_typed(const PrefillParams& p, cudaStream_t stream) {
  geom::LaunchShape s{};
  const geom::LaunchCheck check = geom::launch_shape(p, &s);
  if (check == geom::LaunchCheck::Unsupported) return cudaErrorNotSupported;
  if (check == geom::LaunchCheck::Nothing) return cudaSuccess;
  PrefillParams q = p;
  q.plan.cta_tile_q = s.cta_tile_q;
  if (!s.split) q.plan.num_work = 0;  // a split plan for another block size (or none): run unsplit
  return launch_shape<T, D, kCap>(q, s, stream);
}

}  // namespace

int prefill_cta_tile_q(int head_dim, bool rope, int cta_tile_q) {
  return geom::tile_shape(head_dim, rope, cta_tile_q).rows();
}

int prefill_smem_bytes(int head_dim, bool rope, int cta_tile_q) {
  if (!geom::head_dim_supported(head_dim)) return 0;
  return geom::smem_bytes(head_dim, geom::tile_shape(head_dim, rope, cta_tile_q), rope);
}

int prefill_choose_cta_tile_q(int head_dim, bool rope, long long max_rows, int smem_limit) {
  return geom::choose_cta_tile_q(head_dim, rope, max_rows, smem_limit);
}

PrefillLaunchFn aot_prefill_launcher(DType dtype, int head_dim, bool soft_cap) {
  return select_dtype<PrefillLaunchFn>(dtype, nullptr, [&](auto t) {
    return select_aot_head_dim<PrefillLaunchFn>(head_dim, nullptr, [&](auto d) {
      return select_flag<PrefillLaunchFn>(soft_cap, [](auto cap) -> PrefillLaunchFn {
        return &launch_prefill_typed<typename decltype(t)::type, decltype(d)::value, decltype(cap)::value>;
      });
    });
  });
}

cudaError_t launch_batch_prefill(const PrefillParams& p, cudaStream_t stream) {
  geom::LaunchShape s{};
  if (geom::launch_shape(p, &s) == geom::LaunchCheck::Unsupported) return cudaErrorNotSupported;
  const PrefillLaunchFn launch = aot_prefill_launcher(p.dtype, p.head_dim, p.variant.logits_soft_cap > 0.f);
  return launch == nullptr ? cudaErrorNotSupported : launch(p, stream);
}

}  // namespace fi4j
