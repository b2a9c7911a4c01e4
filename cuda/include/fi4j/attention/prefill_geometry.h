// Launch geometry of the tensor-core batch prefill kernel (prefill.cuh) as plain arithmetic over run-time values:
// which block shape (warps x m16 row tiles per warp) a call uses, the grid, the dynamic shared memory of an
// instantiation, and the split-KV grid. The ahead-of-time launcher (cuda/kernels/attention/prefill.cu), the launcher of
// run-time compiled kernels (cpp/src) and the host plan all use it, so that they pick the same block shape, grid
// and shared memory. No CUDA here (host code, nvcc and NVRTC); prefill.cu and the run-time compiled source check it
// against prefill.cuh's compile-time Geometry and SmemLayout with static_asserts, so the two cannot drift apart.
#pragma once

#include "fi4j/attention/prefill_params.h"

// Keys per K/V tile at D <= 128 (compile-time knob for benchmark builds; prefill.cuh reads the same macro).
#ifndef FI4J_PREFILL_KV_TILE
#define FI4J_PREFILL_KV_TILE 64
#endif

namespace fi4j {
namespace prefill_geometry {

/// Head dims the kernel is written for: multiples of 16 from 16 to 256.
constexpr bool head_dim_supported(int d) { return d >= 16 && d <= 256 && d % 16 == 0; }

/// A block shape: warps per block and m16 row tiles per warp.
struct TileShape {
  int warps;
  int row_tiles;
  constexpr int rows() const { return 16 * warps * row_tiles; }
  constexpr int threads() const { return 32 * warps; }
};

/// The block shape the kernels use when asked for cta_tile_q query rows per block: 256 -> 8 warps x 2 row tiles
/// (D <= 128 without RoPE; else 8 x 1 = 128 rows), 128 -> 8 x 1, anything else -> 4 x 1 (64 rows); RoPE always
/// 4 x 1 (its low-part tiles double the shared memory).
constexpr TileShape tile_shape(int head_dim, bool rope, int cta_tile_q) {
  return rope                ? TileShape{4, 1}
         : cta_tile_q == 256 ? (head_dim <= 128 ? TileShape{8, 2} : TileShape{8, 1})
         : cta_tile_q == 128 ? TileShape{8, 1}
                             : TileShape{4, 1};
}

/// Keys per K/V tile.
constexpr int kv_tile(int d) { return d > 128 ? 32 : FI4J_PREFILL_KV_TILE; }
/// Elements of one shared-memory row: the 16-byte units rounded up to a multiple of 8.
constexpr int smem_stride(int d) { return (d / kVecElems + 7) / 8 * 8 * kVecElems; }
/// Bytes of the tile scan's scratch at the end of shared memory.
constexpr int kScanScratchBytes = 128;

/// Dynamic shared memory of one block (16-bit elements): Q (and Q_lo with RoPE), two stages of K (and K_lo with
/// RoPE) and V, and the tile-scan scratch.
constexpr int smem_bytes(int d, TileShape shape, bool rope) {
  const int q = shape.rows() * smem_stride(d) * 2;
  const int kv = kv_tile(d) * smem_stride(d) * 2;
  return q * (rope ? 2 : 1) + 2 * kv * (rope ? 2 : 1) + 2 * kv + kScanScratchBytes;
}

/// Threads of the split-KV merge kernel.
constexpr int kMergeThreads = 256;

/// The launch of one prefill call.
struct LaunchShape {
  int cta_tile_q;    // the rows per block asked for (the plan's, or the default for an unplanned call)
  TileShape shape;   // the block shape that runs
  bool split;        // the plan's split-KV work list applies (else the call runs unsplit)
  long long tiles;   // grid.x: the work items of a split, else an upper bound of the row tiles (surplus blocks exit)
  int kv_heads;      // grid.y
  int smem_bytes;    // dynamic shared memory
};

enum class LaunchCheck { Launch = 0, Nothing = 1, Unsupported = 2 };

/// Checks what the kernel (any head dim) can run and computes the launch of p. Unsupported: an unknown
/// positional encoding, mask mode or K/V storage, heads that do not divide, a paged call without page table, a
/// dtype other than F16/BF16, a head dim the kernel is not written for, or a grid too large; Nothing: no query
/// rows. Query rows per block: the plan's choice, else 64 for a single request that fits one 64-row tile and 256
/// otherwise (callers that know the device use prefill_choose_cta_tile_q). A split plan applies only when the
/// block shape that runs has the planned rows (RoPE, unknown to the plan, runs 64-row blocks) and a workspace
/// is given; otherwise the caller must run p with plan.num_work = 0.
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
  if (cta_tile_q == 0) cta_tile_q = p.qo_indptr == nullptr && static_cast<long long>(p.nnz_qo) * group <= 64 ? 64 : 256;
  const TileShape shape = tile_shape(p.head_dim, rope, cta_tile_q);
  const int rows = shape.rows();
  const bool split = p.plan.num_work > 0 && p.plan.workspace != nullptr && rows == p.plan.cta_tile_q;
  // Sum over requests of ceil(qo_len * g / rows) <= ceil(nnz_qo * g / rows) + batch_size.
  const long long batch = p.qo_indptr == nullptr ? 1 : p.batch_size;
  const long long tiles = split ? p.plan.num_work : (static_cast<long long>(p.nnz_qo) * group + rows - 1) / rows + batch;
  if (tiles > 0x7fffffffLL || p.num_kv_heads > 65535) return LaunchCheck::Unsupported;
  s->cta_tile_q = cta_tile_q;
  s->shape = shape;
  s->split = split;
  s->tiles = tiles;
  s->kv_heads = p.num_kv_heads;
  s->smem_bytes = smem_bytes(p.head_dim, shape, rope);
  return LaunchCheck::Launch;
}

/// The block size (query rows) a plan asks for: 64 when every request has at most max_rows <= 64 packed rows
/// (qo_len x group) or with RoPE, else the larger of 256 and 128 that the head dim allows and whose shared memory
/// fits smem_limit (the device's opt-in per-block maximum), else 64.
inline int choose_cta_tile_q(int head_dim, bool rope, long long max_rows, int smem_limit) {
  if (rope || max_rows <= 64) return 64;
  for (int rows = 256; rows >= 128; rows /= 2) {
    const TileShape shape = tile_shape(head_dim, rope, rows);
    if (shape.rows() == rows && smem_bytes(head_dim, shape, rope) <= smem_limit) return rows;
  }
  return 64;
}

}  // namespace prefill_geometry
}  // namespace fi4j
