// Launch geometry of the tensor-core batch prefill kernel (prefill.cuh) as plain arithmetic over run-time values:
// which row-tile count (kM) a call uses, the grid, and the dynamic shared memory of an instantiation. The
// ahead-of-time launcher (cuda/kernels/prefill.cu) and the launcher of run-time compiled kernels (cpp/src) both
// use it, so that the two paths pick the same block size, grid and shared memory. No CUDA here (host code,
// nvcc and NVRTC); prefill.cu and the run-time compiled source check it against prefill.cuh's compile-time
// Geometry and SmemLayout with static_asserts, so the two cannot drift apart.
#pragma once

#include "fi4j/prefill_params.h"

// Keys per K/V tile at D <= 128 (compile-time knob for benchmark builds; prefill.cuh reads the same macro).
#ifndef FI4J_PREFILL_KV_TILE
#define FI4J_PREFILL_KV_TILE 64
#endif

namespace fi4j {
namespace prefill_geometry {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

/// Head dims the kernel is written for: multiples of 16 from 16 to 256.
constexpr bool head_dim_supported(int d) { return d >= 16 && d <= 256 && d % 16 == 0; }

/// m16 row tiles per warp (kM) for a head dim and RoPE when the caller asks for cta_tile_q query rows per block
/// (64 or 128; anything else: 128 where allowed): 2 needs D <= 128 and no RoPE.
constexpr int row_tiles_per_warp(int head_dim, bool rope, int cta_tile_q) {
  return (head_dim <= 128 && !rope && cta_tile_q != 16 * kWarps) ? 2 : 1;
}

/// Packed query rows per block.
constexpr int rows_tile(int kM) { return 16 * kM * kWarps; }
/// Keys per K/V tile.
constexpr int kv_tile(int d) { return d > 128 ? 32 : FI4J_PREFILL_KV_TILE; }
/// Elements of one shared-memory row: the 16-byte units rounded up to a multiple of 8.
constexpr int smem_stride(int d) { return (d / kVecElems + 7) / 8 * 8 * kVecElems; }

/// Dynamic shared memory of one block (16-bit elements): Q (and Q_lo with RoPE), two stages of K (and K_lo with
/// RoPE) and V, and 64 bytes of tile-scan scratch.
constexpr int smem_bytes(int d, int kM, bool rope) {
  const int q = rows_tile(kM) * smem_stride(d) * 2;
  const int kv = kv_tile(d) * smem_stride(d) * 2;
  return q * (rope ? 2 : 1) + 2 * kv * (rope ? 2 : 1) + 2 * kv + 64;
}

/// The launch of one prefill call.
struct LaunchShape {
  int cta_tile_q;    // the rows per block asked for (the plan's, or the default for an unplanned call)
  int kM;            // m16 row tiles per warp of the kernel that runs
  long long tiles;   // grid.x: upper bound of the row tiles (surplus blocks exit)
  int kv_heads;      // grid.y
  int smem_bytes;    // dynamic shared memory
};

enum class LaunchCheck { Launch = 0, Nothing = 1, Unsupported = 2 };

/// Checks what the kernel (any head dim) can run and computes the launch of p. Unsupported: an unknown
/// positional encoding, mask mode or K/V storage, heads that do not divide, a paged call without page table, a
/// dtype other than F16/BF16, a head dim the kernel is not written for, or a grid too large; Nothing: no query
/// rows. Query rows per block: the plan's choice, else (single prefill, or not planned) 64 when the whole request
/// fits in one 64-row tile, else 128 where the configuration allows it.
inline LaunchCheck launch_shape(const PrefillParams& p, LaunchShape* s) {
  if (p.variant.pos_encoding != PosEncoding::None && p.variant.pos_encoding != PosEncoding::RopeLlama)
    return LaunchCheck::Unsupported;
  if (p.mask_mode != MaskMode::None && p.mask_mode != MaskMode::Causal && p.mask_mode != MaskMode::Custom)
    return LaunchCheck::Unsupported;
  if (p.kv_storage != KvStorage::Ragged && p.kv_storage != KvStorage::Paged) return LaunchCheck::Unsupported;
  if (p.num_kv_heads <= 0 || p.num_qo_heads <= 0 || p.num_qo_heads % p.num_kv_heads != 0)
    return LaunchCheck::Unsupported;
  if (p.kv_storage == KvStorage::Paged && p.paged.kv_indptr == nullptr) return LaunchCheck::Unsupported;
  if (p.dtype != DType::F16 && p.dtype != DType::BF16) return LaunchCheck::Unsupported;
  if (!head_dim_supported(p.head_dim)) return LaunchCheck::Unsupported;
  if (p.nnz_qo <= 0 || (p.qo_indptr != nullptr && p.batch_size <= 0)) return LaunchCheck::Nothing;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  const long long group = p.num_qo_heads / p.num_kv_heads;
  int cta_tile_q = p.plan.cta_tile_q;
  if (cta_tile_q == 0 && p.qo_indptr == nullptr)
    cta_tile_q = static_cast<long long>(p.nnz_qo) * group <= 16 * kWarps ? 64 : 128;
  const int kM = row_tiles_per_warp(p.head_dim, rope, cta_tile_q);
  const int rows = rows_tile(kM);
  // Sum over requests of ceil(qo_len * g / rows) <= ceil(nnz_qo * g / rows) + batch_size.
  const long long batch = p.qo_indptr == nullptr ? 1 : p.batch_size;
  const long long tiles = (static_cast<long long>(p.nnz_qo) * group + rows - 1) / rows + batch;
  if (tiles > 0x7fffffffLL) return LaunchCheck::Unsupported;
  s->cta_tile_q = cta_tile_q;
  s->kM = kM;
  s->tiles = tiles;
  s->kv_heads = p.num_kv_heads;
  s->smem_bytes = smem_bytes(p.head_dim, kM, rope);
  return LaunchCheck::Launch;
}

}  // namespace prefill_geometry
}  // namespace fi4j
