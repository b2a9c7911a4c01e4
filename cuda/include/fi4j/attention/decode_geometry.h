// Work split and shared-memory layout of the CUDA-core batch decode kernel (decode.cuh) for a head dim d, as
// plain constexpr arithmetic: the kernel instantiates it at compile time, and the host (launch of run-time
// compiled kernels, tests) evaluates the same functions at run time. No CUDA here.
//
// A token row is D/8 16-byte chunks, one per lane. The lanes of a row are that count rounded up to a power of two
// (a divisor of 32), so that rows map onto whole lane groups and the dot product is a butterfly over the group:
// at D = 64/128/256 every lane is busy; at D = 96 (12 chunks, 16 lanes) four lanes per row idle. Every D keeps 16
// row steps per tile, so the tile holds 16 * (32 / lanes) tokens: 64/32/16 at D = 64/128/256 (16 KB of K+V).
#pragma once

#include "fi4j/attention/params.h"

namespace fi4j {
namespace decode {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
/// Depth of the cp.async ring: two tiles in flight while a third is consumed.
constexpr int kStages = 3;
/// Query heads whose q and accumulators one thread keeps in registers.
constexpr int kMaxHeadsPerWarp = 2;
constexpr int kHeadsPerPass = kWarps * kMaxHeadsPerWarp;
/// Token rows folded into the softmax state at once: one max/rescale per 4 rows instead of per row.
constexpr int kRowsPerUpdate = 4;
/// Row steps of one tile, the same for every head dim (a multiple of kWarps * kRowsPerUpdate).
constexpr int kStepsPerTile = 16;

/// Head dims the kernel is written for: whole 16-byte chunks in each RoPE half (D % 16 == 0), one warp per row at
/// most (D <= 256).
constexpr bool head_dim_supported(int d) { return d >= 16 && d <= 256 && d % 16 == 0; }

/// Smallest power of two >= n (n >= 1).
constexpr int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

/// Lanes sharing one token row.
constexpr int lanes_per_row(int d) { return pow2_at_least(d / kVecElems); }
/// Token rows of one tile.
constexpr int tile_tokens(int d) { return kStepsPerTile * (32 / lanes_per_row(d)); }
/// Bytes of K+V (16-bit) of one tile.
constexpr int tile_bytes(int d) { return 2 * tile_tokens(d) * d * 2; }

/// Dynamic shared memory of one block, in bytes from the start:
///   [kStages][K | V][tile_tokens][D]  16-bit ring
///   [tile_tokens][2][D/2] fp32        rotated K of the current tile (RoPE only; see rotate_keys)
///   [kStages][tile_tokens] u8         row valid flags (in range, page id in range)
/// After the main loop the ring is reused for the cross-warp merge: [kHeadsPerPass][D] fp32 o, then m and d.
struct DecodeSmemLayout {
  int ring_bytes;
  int rope_offset;
  int rope_bytes;
  int flag_offset;
  int bytes;
};

constexpr DecodeSmemLayout decode_smem_layout(int d, bool rope) {
  DecodeSmemLayout l{};
  l.ring_bytes = kStages * tile_bytes(d);
  l.rope_offset = l.ring_bytes;
  l.rope_bytes = rope ? tile_tokens(d) * d * 4 : 0;
  l.flag_offset = l.rope_offset + l.rope_bytes;
  l.bytes = l.flag_offset + kStages * tile_tokens(d);
  return l;
}

/// Bytes of dynamic shared memory of the kernel for head dim d, with or without RoPE.
constexpr int decode_smem_bytes(int d, bool rope) { return decode_smem_layout(d, rope).bytes; }

/// Work split of one tile for head dim D.
template <int D>
struct Geometry {
  static_assert(head_dim_supported(D), "head_dim must be a multiple of 16 in [16, 256]");
  static constexpr int kChunks = D / kVecElems;                // 16-byte chunks of a row
  static constexpr int kLanes = lanes_per_row(D);              // lanes sharing a token row (>= kChunks)
  static constexpr bool kAllLanesBusy = kLanes == kChunks;     // D = 16, 32, 64, 128, 256
  static constexpr int kRowsPerStep = 32 / kLanes;             // rows a warp covers per step
  static constexpr int kTileTokens = tile_tokens(D);
  static constexpr int kStepsPerTile = kTileTokens / kRowsPerStep;
  static constexpr int kTileElems = kTileTokens * D;           // of K (or of V)
  // Copy: thread t copies chunk t % kLanes (when < kChunks) of rows t / kLanes + i * kCopyRowStride.
  static constexpr int kCopyRowStride = kThreads / kLanes;
  static constexpr int kCopiesPerThread = kTileTokens / kCopyRowStride;
  // RoPE pass: thread t < kRopeThreads rotates dims (2u, 2u+1) and (2u+D/2, 2u+1+D/2), u = t % kRopeUnits, of
  // every kRopeRowStride-th row.
  static constexpr int kRopeUnits = D / 4;
  static constexpr int kRopeRowStride = kThreads / kRopeUnits;
  static constexpr int kRopeThreads = kRopeRowStride * kRopeUnits;
  static constexpr int kRopeRowsPerThread = (kTileTokens + kRopeRowStride - 1) / kRopeRowStride;
  static constexpr bool kRopeExact = kRopeThreads == kThreads && kTileTokens % kRopeRowStride == 0;
  static_assert(kStepsPerTile % (kWarps * kRowsPerUpdate) == 0, "every row split must be whole updates");
  static_assert(kTileTokens % kCopyRowStride == 0, "uneven tile split");
};

template <int D, bool kRope>
struct SmemLayout {
  static constexpr DecodeSmemLayout kLayout = decode_smem_layout(D, kRope);
  static constexpr int kRingBytes = kLayout.ring_bytes;
  static constexpr int kRopeOffset = kLayout.rope_offset;
  static constexpr int kRopeBytes = kLayout.rope_bytes;
  static constexpr int kFlagOffset = kLayout.flag_offset;
  static constexpr int kBytes = kLayout.bytes;
  static_assert(kHeadsPerPass * (D + 2) * 4 <= kRingBytes, "merge scratch must fit in the ring");
};

/// Blocks per SM the shared memory allows (4 x 48 KB, 3 x 64 KB with RoPE); registers are budgeted to match.
constexpr int min_blocks_per_sm(bool rope) { return rope ? 3 : 4; }

}  // namespace decode

namespace decode_merge {

constexpr int kThreads = 128;

// Most item lanes per request (a power of two <= 32; compile-time so that benchmark builds can compare: 1 folds
// every item of a request in one chain), and the fewest items a lane is given before another lane is added. H100,
// decode_bench, same run: 16 lanes for 64 items beat one chain by 13% (1 x 32768 D=64), one chain of 4 beat 4 lanes
// of 1 by 2% (16 x 4096 D=64); 4 items per lane is the candidate to measure next.
#ifndef FI4J_MERGE_MAX_LANES
#define FI4J_MERGE_MAX_LANES 32
#endif
#ifndef FI4J_MERGE_ITEMS_PER_LANE
#define FI4J_MERGE_ITEMS_PER_LANE 1
#endif

/// Threads of one item lane of one query head: one per 16-byte unit (8 outputs) of the row.
constexpr int lane_threads(int d) { return d / kVecElems; }

/// Item lanes folding a request with n work items at head dim d: the largest power of two <= n /
/// FI4J_MERGE_ITEMS_PER_LANE (at least 1) whose lanes of one head fit one block and whose lanes of one output unit
/// fit one warp (they combine by shuffles). A function of n and d only, so a request's fold order never depends on
/// the rest of the batch.
constexpr int item_lanes(int d, int n) {
  int lanes = 1;
  while (2 * lanes * FI4J_MERGE_ITEMS_PER_LANE <= n && 2 * lanes <= FI4J_MERGE_MAX_LANES &&
         2 * lanes * lane_threads(d) <= kThreads)
    lanes *= 2;
  return lanes;
}

/// Query heads one merge block folds at once with `lanes` item lanes (remaining threads idle).
constexpr int heads_per_pass(int d, int lanes) { return kThreads / (lane_threads(d) * lanes); }

/// Query heads per merge block the host launches when requests have avg_items work items on average: one pass
/// at that size, so that one long request spreads over one block per head and many short ones pack heads.
constexpr int heads_per_block(int d, int avg_items) { return heads_per_pass(d, item_lanes(d, avg_items)); }

/// Head blocks (grid y) of the merge of num_work items over batch requests with num_qo_heads query heads.
constexpr int head_blocks(int d, int num_qo_heads, int num_work, int batch) {
  const int heads = heads_per_block(d, batch > 0 ? (num_work + batch - 1) / batch : 1);
  return (num_qo_heads + heads - 1) / heads;
}

}  // namespace decode_merge
}  // namespace fi4j
