// Batch prefill on tensor cores (sm_80+), FlashAttention-2 style.
//
// Rows: the g = num_qo_heads / num_kv_heads query heads of a KV group are packed as query rows, packed row
// r = token * g + head_in_group of request b, so one block's K/V tile serves all heads of the group.
// Grid (tiles, num_kv_heads): block x finds its (request, row tile) by a block-wide scan of the per-request tile
// counts (no host-side plan needed; grid.x is the upper bound ceil(nnz_qo * g / kRowsTile) + batch_size and
// surplus blocks exit). Within a request the tiles run last-first, so the long causal tiles start early.
//
// One block = kW warps, kRowsTile = 16 * kM * kW packed rows; warp w owns kM m16 row tiles (rows
// 16kMw .. 16kM(w+1) - 1) and the whole KV range, so its online-softmax state (m, d, O) lives in registers and
// needs no cross-warp merge. Block shapes (prefill_geometry::tile_shape, chosen by the host per launch):
//   256 rows = 8 warps x 2 row tiles (D <= 128, no RoPE): every K/V fragment read by ldmatrix feeds two mma, which
//     halves the shared-memory traffic per multiply-add, and each K/V tile in shared memory serves 256 rows;
//   128 rows = 8 warps x 1 (D > 128 without RoPE, or where 256 rows do not fit the device's shared memory);
//   64 rows = 4 warps x 1: short queries (decode-like rows waste less of a tile) and RoPE (whose low-part tiles
//     double the shared memory).
// Measured on H100/H200 (bf16, D=128, 1x8192 causal): 64 rows 207 TFLOP/s, 128 rows of 4 warps x 2 257, 256 rows 281.
// The block streams K/V tiles of kKvTile keys through a two-stage cp.async double buffer (swizzled rows, 16-byte
// units xor-ed with row % 8, conflict-free ldmatrix):
//   top of iteration t: wait for tile t, __syncthreads, issue tile t+1 into the other buffer
//   S[16 x N] = Q . K^T (ldmatrix, mma.sync m16n8k16, fp32 accumulation); logit transform, mask, online softmax
//   O[16 x D] += P . V (P re-packed from the accumulators as the A operand, V by ldmatrix.trans)
// Key range: [lo, hi) = keys some row of the block may see (causal end, window start); tiles outside are never
// loaded. A warp skips a tile none of its rows may see, and applies the per-element mask only to tiles that are
// not fully visible to all of its rows (boundary, causal diagonal, window edge, custom mask, ragged tail).
//
// Accuracy: q and k are exact in T and the logit scale multiplies the fp32 dot product. With RoPE the rotated
// q and k are split into high and low T parts (mma.cuh split_pack) and Q.K^T takes three products
// (hi.hi + lo.hi + hi.lo), as in the decode kernel. P is rounded once to T (standard FA2).
#pragma once

#include "fi4j/common/mma.cuh"
#include "fi4j/attention/paged_kv.cuh"
#include "fi4j/attention/prefill_geometry.h"
#include "fi4j/attention/prefill_params.h"
#include "fi4j/attention/variant.cuh"
#include "fi4j/common/vec.cuh"

namespace fi4j {
namespace prefill {



/// Tile geometry for head dim D, kM m16 row tiles per warp and kW warps per block.
template <int D, int kM, int kW>
struct Geometry {
  static_assert(D % 16 == 0 && D >= 16 && D <= 256, "head_dim must be a multiple of 16 in [16, 256]");
  static_assert(kM == 1 || kM == 2, "one or two m16 row tiles per warp");
  static_assert(kW == 4 || kW == 8, "4 or 8 warps per block");
  static constexpr int kThreads = 32 * kW;
  static constexpr int kRowsWarp = 16 * kM;
  static constexpr int kRowsTile = kRowsWarp * kW;  // packed query rows per block
  static constexpr int kKvTile = D > 128 ? 32 : FI4J_PREFILL_KV_TILE;  // keys per K/V tile
  static constexpr int kUnits = D / kVecElems;        // 16-byte units per row
  /// Shared-memory row: the units rounded up to a multiple of 8 (the swizzle permutes groups of 8 units); equal
  /// to D for the ahead-of-time head dims, padded for run-time compiled ones such as 80 or 96.
  static constexpr int kStride = (kUnits + 7) / 8 * 8 * kVecElems;
  static constexpr int kKSteps = D / 16;              // k-steps of Q.K^T
  static constexpr int kSTiles = kKvTile / 8;         // n8 tiles of S
  static constexpr int kPSteps = kKvTile / 16;        // k-steps of P.V
  static constexpr int kOTiles = D / 8;               // n8 tiles of O
  static constexpr int kTileUnits = kKvTile * kUnits;  // 16-byte copies of one K (or V) tile
  static constexpr int kLoadSteps = (kTileUnits + kThreads - 1) / kThreads;
  static constexpr bool kLoadTail = kLoadSteps * kThreads != kTileUnits;  // e.g. D = 80 with 8 warps
  static constexpr int kMinBlocks = (D > 128 || kW == 8) ? 1 : 2;
};

/// Whether Q fragments stay in registers for the whole KV loop (kM * D <= 128 without RoPE) or are re-read from
/// shared memory by ldmatrix every tile.
template <int D, int kM, bool kRope>
__host__ __device__ constexpr bool q_in_registers() {
  return kM * D <= 128 && !kRope;
}

/// Dynamic shared memory layout, byte offsets (all tiles [rows][kStride] of T, swizzled):
///   Q [kRowsTile][D] | Q_lo (RoPE) | K [2][N][D] | K_lo [2][N][D] (RoPE) | V [2][N][D] | tile scan scratch
template <int D, int kM, int kW, bool kRope>
struct SmemLayout {
  using G = Geometry<D, kM, kW>;
  static constexpr int kQBytes = G::kRowsTile * G::kStride * 2;
  static constexpr int kKvBytes = G::kKvTile * G::kStride * 2;  // one K or V stage
  static constexpr int kQOffset = 0;
  static constexpr int kQLoOffset = kQOffset + kQBytes;
  static constexpr int kKOffset = kQLoOffset + (kRope ? kQBytes : 0);
  static constexpr int kKLoOffset = kKOffset + 2 * kKvBytes;
  static constexpr int kVOffset = kKLoOffset + (kRope ? 2 * kKvBytes : 0);
  static constexpr int kScanOffset = kVOffset + 2 * kKvBytes;
  static constexpr int kBytes = kScanOffset + prefill_geometry::kScanScratchBytes;  // tile scan: 18 ints
};

template <int D, int kM, int kW, bool kRope>
__host__ __device__ constexpr int smem_bytes() {
  return SmemLayout<D, kM, kW, kRope>::kBytes;
}

/// Element offset of (row, col) in a swizzled [rows][kStride] tile of 16-bit elements: the 16-byte unit index is
/// xor-ed with row % 8 within its group of 8 units.
template <int kStride>
__device__ __forceinline__ int swz(int row, int col) {
  const int u = col / kVecElems;
  return row * kStride + (((u ^ row) & 7) | (u & ~7)) * kVecElems + col % kVecElems;
}

/// Number of query rows of request b.
__device__ __forceinline__ int request_qo_len(const PrefillParams& p, int b) {
  return p.qo_indptr == nullptr ? p.nnz_qo : __ldg(p.qo_indptr + b + 1) - __ldg(p.qo_indptr + b);
}

/// Finds the request and row tile of block `bx`: scans the per-request tile counts kThreads requests at a time.
/// Returns false when bx lies past the last tile. Block-uniform; contains __syncthreads.
template <int kRowsTile, int kThreads>
__device__ __forceinline__ bool find_tile(const PrefillParams& p, int group, int bx, int* scratch, int& request,
                                          int& tile) {
  const int tid = threadIdx.x;
  if (p.qo_indptr == nullptr) {
    const int tiles = (p.nnz_qo * group + kRowsTile - 1) / kRowsTile;
    request = 0;
    tile = tiles - 1 - bx;
    return bx < tiles;
  }
  // scratch[0..warps-1]: warp totals; scratch[16]: found request (-1 none); scratch[17]: its tile
  if (tid == 0) scratch[16] = -1;
  int running = 0;
  for (int base = 0; base < p.batch_size; base += kThreads) {
    const int b = base + tid;
    const int n = b < p.batch_size ? (request_qo_len(p, b) * group + kRowsTile - 1) / kRowsTile : 0;
    int incl = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int x = __shfl_up_sync(0xffffffffu, incl, o);
      if (tid % 32 >= o) incl += x;
    }
    if (tid % 32 == 31) scratch[tid / 32] = incl;
    __syncthreads();
    int warp_base = 0, total = 0;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) {
      const int t = scratch[w];
      if (w < tid / 32) warp_base += t;
      total += t;
    }
    const int excl = running + warp_base + incl - n;
    if (n > 0 && bx >= excl && bx < excl + n) {
      scratch[16] = b;
      scratch[17] = n - 1 - (bx - excl);  // last tile first
    }
    running += total;
    __syncthreads();
    if (running > bx) break;  // block-uniform (a found tile implies it)
  }
  __syncthreads();
  request = scratch[16];
  tile = scratch[17];
  return request >= 0;
}

/// Prefill for one (request row tile, KV head) per block: grid (prefill_geometry::launch_shape's tiles: the row
/// tiles' upper bound, or a split plan's work items, x num_kv_heads), 32 * kW threads, smem_bytes<D, kM, kW, kRope>()
/// bytes of dynamic shared memory.
template <typename T, int D, int kM, int kW, bool kSoftCap, bool kRope>
__global__ void __launch_bounds__(32 * kW, Geometry<D, kM, kW>::kMinBlocks)
    batch_prefill_kernel(const __grid_constant__ PrefillParams p) {
  using G = Geometry<D, kM, kW>;
  using Smem = SmemLayout<D, kM, kW, kRope>;
  constexpr int kThreads = G::kThreads;
  constexpr int N = G::kKvTile;
  constexpr int kRowsTile = G::kRowsTile;
  constexpr bool kQRegs = q_in_registers<D, kM, kRope>();
  extern __shared__ __align__(128) unsigned char smem[];
  T* const q_tile = reinterpret_cast<T*>(smem + Smem::kQOffset);
  T* const q_lo = reinterpret_cast<T*>(smem + Smem::kQLoOffset);
  T* const k_tiles = reinterpret_cast<T*>(smem + Smem::kKOffset);
  T* const k_lo_tiles = reinterpret_cast<T*>(smem + Smem::kKLoOffset);
  T* const v_tiles = reinterpret_cast<T*>(smem + Smem::kVOffset);
  int* const scratch = reinterpret_cast<int*>(smem + Smem::kScanOffset);

  const int tid = threadIdx.x;
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int qr = lane / 4;
  const int qc = lane % 4;
  const int kv_head = blockIdx.y;
  const int group = p.num_qo_heads / p.num_kv_heads;

  // Block coordinates: the split plan's work item (request, row tile, key chunk), else the tile scan.
  const bool split = p.plan.num_work > 0;
  unsigned char* const ws = static_cast<unsigned char*>(p.plan.workspace);
  PrefillSplitLayout sl{};
  int b, tile, chunk_lo = 0, chunk_hi = 0x7fffffff;
  if (split) {
    if (static_cast<int>(blockIdx.x) >= p.plan.num_work) return;
    sl = prefill_split_layout(p.plan.num_work, p.num_kv_heads, kRowsTile, D);
    const int w = blockIdx.x;
    b = __ldg(reinterpret_cast<const int*>(ws + sl.work_request) + w);
    tile = __ldg(reinterpret_cast<const int*>(ws + sl.work_tile) + w);
    chunk_lo = __ldg(reinterpret_cast<const int*>(ws + sl.work_kv_lo) + w);
    chunk_hi = __ldg(reinterpret_cast<const int*>(ws + sl.work_kv_hi) + w);
    if (b < 0 || b >= (p.qo_indptr == nullptr ? 1 : p.batch_size) || tile < 0) return;  // a foreign workspace
  } else if (!find_tile<kRowsTile, kThreads>(p, group, static_cast<int>(blockIdx.x), scratch, b, tile)) {
    return;
  }

  // ---- Request geometry.
  const int q_start = p.qo_indptr == nullptr ? 0 : __ldg(p.qo_indptr + b);
  const int qo_len = request_qo_len(p, b);
  const bool paged = p.kv_storage == KvStorage::Paged;
  int kv_len, kv_base;  // kv_base: first ragged row, or offset of the first page in kv_indices
  if (paged) {
    kv_base = __ldg(p.paged.kv_indptr + b);
    const int pages = __ldg(p.paged.kv_indptr + b + 1) - kv_base;
    kv_len = pages > 0 ? p.paged.page_size * (pages - 1) + __ldg(p.paged.kv_last_page_len + b) : 0;
    if (p.paged.page_size <= 0 || kv_len < 0) kv_len = 0;
  } else {
    kv_base = p.ragged.kv_indptr == nullptr ? 0 : __ldg(p.ragged.kv_indptr + b);
    kv_len = p.ragged.kv_indptr == nullptr ? p.ragged.nnz_kv : __ldg(p.ragged.kv_indptr + b + 1) - kv_base;
  }
  const int delta = kv_len - qo_len;  // pos_q(i) = i + delta
  const int rows_total = qo_len * group;
  const int r0 = tile * kRowsTile;
  const bool causal = p.mask_mode == MaskMode::Causal;
  const bool custom = p.mask_mode == MaskMode::Custom;
  const int wl = p.variant.window_left;

  // Keys some row of the block may see: [lo, hi).
  const int blk_pos_min = r0 / group + delta;
  const int blk_pos_max = (min(r0 + kRowsTile, rows_total) - 1) / group + delta;
  int lo = 0, hi = kv_len;
  if (wl >= 0) lo = max(0, blk_pos_min - wl);
  if (causal) hi = min(kv_len, blk_pos_max + 1);
  lo = max(lo, chunk_lo);  // a split work item sees its chunk only
  hi = min(hi, chunk_hi);
  const int num_tiles = hi > lo ? (hi - lo + N - 1) / N : 0;

  const FastDivider page_div(paged ? max(p.paged.page_size, 1) : 1);
  const T* const k_src = static_cast<const T*>(paged ? p.paged.k : p.ragged.k);
  const T* const v_src = static_cast<const T*>(paged ? p.paged.v : p.ragged.v);

  // Starts the copy of K/V tile t into buffer buf; keys outside [lo, hi) (or on a bad page) are zero-filled.
  auto issue_tile = [&](int t, int buf) {
    const int kv0 = lo + t * N;
    T* const kd = k_tiles + buf * N * G::kStride;
    T* const vd = v_tiles + buf * N * G::kStride;
#pragma unroll 1
    for (int s = 0; s < G::kLoadSteps; ++s) {
      const int u = tid + s * kThreads;
      if (G::kLoadTail && u >= G::kTileUnits) break;
      const int row = u / G::kUnits;
      const int c = u % G::kUnits;
      const int j = kv0 + row;
      bool ok = j < hi;
      int64_t k_off = 0, v_off = 0;
      if (ok) {
        if (paged) {
          const int pidx = page_div.div(j);
          const int page = __ldg(p.paged.kv_indices + kv_base + pidx);
          ok = page_in_range(p.paged, page);
          k_off = v_off = ok ? cache_offset(p.paged, page, j - pidx * p.paged.page_size, kv_head) : 0;
        } else {
          k_off = static_cast<int64_t>(kv_base + j) * p.ragged.k_stride_n +
                  static_cast<int64_t>(kv_head) * p.ragged.k_stride_h;
          v_off = static_cast<int64_t>(kv_base + j) * p.ragged.v_stride_n +
                  static_cast<int64_t>(kv_head) * p.ragged.v_stride_h;
        }
      }
      cp_async_v16(kd + swz<G::kStride>(row, c * kVecElems), k_src + k_off + c * kVecElems, ok);
      cp_async_v16(vd + swz<G::kStride>(row, c * kVecElems), v_src + v_off + c * kVecElems, ok);
    }
  };

  if (num_tiles > 0) issue_tile(0, 0);
  cp_async_commit();

  // ---- Query tile (RoPE rotated at pos_q in fp32; high part in q_tile, low part in q_lo). Rows past the
  // request are zero.
  for (int idx = tid; idx < kRowsTile * G::kUnits; idx += kThreads) {
    const int row = idx / G::kUnits;
    const int c = idx % G::kUnits;
    const int r = r0 + row;
    float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (r < rows_total) {
      const int i = r / group;
      const int h = kv_head * group + (r - i * group);
      const T* const src = static_cast<const T*>(p.q) + static_cast<int64_t>(q_start + i) * p.q_stride_n +
                           static_cast<int64_t>(h) * p.q_stride_h;
      Vec8<T>::to_float(ld_global_v16(src + c * kVecElems), x);
      if constexpr (kRope) {
        float partner[8];
        const bool low = c < G::kUnits / 2;
        Vec8<T>::to_float(ld_global_v16(src + (low ? c + G::kUnits / 2 : c - G::kUnits / 2) * kVecElems), partner);
        const float pos = static_cast<float>(i + delta);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float l = low ? x[e] : partner[e];
          float hh = low ? partner[e] : x[e];
          rope_rotate(l, hh, pos, rope_frequency(p.variant, (c % (G::kUnits / 2)) * kVecElems + e, D));
          x[e] = low ? l : hh;
        }
      }
    }
    if constexpr (kRope) {
      unsigned big[4], small[4];
#pragma unroll
      for (int w = 0; w < 4; ++w) split_pack<T>(x[2 * w], x[2 * w + 1], big[w], small[w]);
      st_shared_v16(q_tile + swz<G::kStride>(row, c * kVecElems), make_uint4(big[0], big[1], big[2], big[3]));
      st_shared_v16(q_lo + swz<G::kStride>(row, c * kVecElems), make_uint4(small[0], small[1], small[2], small[3]));
    } else {
      st_shared_v16(q_tile + swz<G::kStride>(row, c * kVecElems), Vec8<T>::from_float(x));  // exact: x came from T
    }
  }
  __syncthreads();

  // ldmatrix lane roles (see decode_tc.cuh): A rows (j % 2) * 8, unit 2ks + j / 2; K tokens (j / 2) * 8, unit
  // 2ks + j % 2; V (trans) tokens (j % 2) * 8, unit 2np + j / 2. Row tile mt of this warp starts at row
  // warp * kRowsWarp + 16 * mt of the block.
  // Addresses: every row a lane reads is congruent to ld_row mod 8, and for a unit 2x + j (j < 2) the swizzled unit
  // is (2x) ^ ((j ^ ld_row) & 7). So a lane keeps one row base per operand and forms each address as
  // base + compile-time row offset + 16 * ((2x) ^ sw) bytes: a few registers instead of one per (k-step, tile).
  const int ld_row = lane % 8;
  const int ld_j = lane / 8;
  const unsigned q_base = smem_addr(q_tile) + 2 * (warp * G::kRowsWarp + (ld_j % 2) * 8 + ld_row) * G::kStride;
  const unsigned q_lo_base = smem_addr(q_lo) + 2 * (warp * G::kRowsWarp + (ld_j % 2) * 8 + ld_row) * G::kStride;
  const unsigned k_base = smem_addr(k_tiles) + 2 * ((ld_j / 2) * 8 + ld_row) * G::kStride;
  const unsigned k_lo_base = smem_addr(k_lo_tiles) + 2 * ((ld_j / 2) * 8 + ld_row) * G::kStride;
  const unsigned v_base = smem_addr(v_tiles) + 2 * ((ld_j % 2) * 8 + ld_row) * G::kStride;
  const int q_sw = ((ld_j / 2) ^ ld_row) & 7;
  const int k_sw = ((ld_j % 2) ^ ld_row) & 7;
  const int v_sw = ((ld_j / 2) ^ ld_row) & 7;
  /// Byte offset of swizzled unit 2x + j within a row (sw from the lane's j and row).
  auto unit_bytes = [](int x, int sw) { return 16 * ((2 * x) ^ sw); };

  unsigned qf[kQRegs ? kM : 1][kQRegs ? G::kKSteps : 1][4];
  if constexpr (kQRegs) {
#pragma unroll
    for (int mt = 0; mt < kM; ++mt)
#pragma unroll
      for (int ks = 0; ks < G::kKSteps; ++ks)
        ldmatrix_x4(qf[mt][ks], q_base + mt * 32 * G::kStride + unit_bytes(ks, q_sw));
  }

  // ---- This thread's rows (qr and qr + 8 of each m16 tile of the warp's slab) and the warp's position range.
  const int w_r0 = r0 + warp * G::kRowsWarp;
  const bool warp_active = w_r0 < rows_total;
  const bool warp_full = w_r0 + G::kRowsWarp <= rows_total;
  const int w_pos_min = w_r0 / group + delta;
  const int w_pos_max = (min(w_r0 + G::kRowsWarp, rows_total) - 1) / group + delta;
  // Keys row (mt, rr) may see by causality, window and length: [row_lo, row_hi) (empty for rows past the request).
  int row_lo[kM][2], row_hi[kM][2];
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int r = w_r0 + 16 * mt + qr + 8 * rr;
      const int pos = r / group + delta;
      const bool ok = r < rows_total;
      row_hi[mt][rr] = !ok ? 0 : min(hi, causal ? pos + 1 : kv_len);
      row_lo[mt][rr] = max(lo, wl >= 0 ? pos - wl : 0);
    }
  const uint8_t* const mask_bits =
      custom ? p.mask.bits + (p.mask.indptr == nullptr ? 0 : __ldg(p.mask.indptr + b)) : nullptr;

  const LogitsTransform<kSoftCap> transform(p.variant);
  const float dot_scale = LogitsTransform<kSoftCap>::query_scale(p.variant);

  float o[kM][G::kOTiles][4];
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int n = 0; n < G::kOTiles; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
  float m[kM][2], d[kM][2];  // d: this thread's columns; summed over the quad at the end
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) m[mt][0] = m[mt][1] = neg_inf(), d[mt][0] = d[mt][1] = 0.f;

  for (int t = 0; t < num_tiles; ++t) {
    const int buf = t & 1;
    cp_async_wait<0>();
    __syncthreads();  // tile t landed for all threads; everyone is done with buffer buf ^ 1
    if (t + 1 < num_tiles) issue_tile(t + 1, buf ^ 1);
    cp_async_commit();
    const int kv0 = lo + t * N;
    T* const k_tile = k_tiles + buf * N * G::kStride;
    T* const k_lo = k_lo_tiles + buf * N * G::kStride;

    if constexpr (kRope) {
      // Rotate the keys at their positions in fp32; high part back into the tile, low part into k_lo. Unit u of
      // a row rotates dims (2u, 2u+1) with (2u + D/2, 2u + 1 + D/2).
      constexpr int kRopeUnits = D / 4;
#pragma unroll 1
      for (int idx = tid; idx < N * kRopeUnits; idx += kThreads) {
        const int row = idx / kRopeUnits;
        const int u = idx % kRopeUnits;
        const int a = swz<G::kStride>(row, 2 * u), bb = swz<G::kStride>(row, 2 * u + D / 2);
        float2 l = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(k_tile + a));
        float2 h = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(k_tile + bb));
        const float pos = static_cast<float>(kv0 + row);
        rope_rotate(l.x, h.x, pos, rope_frequency(p.variant, 2 * u, D));
        rope_rotate(l.y, h.y, pos, rope_frequency(p.variant, 2 * u + 1, D));
        unsigned lb, ls, hb, hs;
        split_pack<T>(l.x, l.y, lb, ls);
        split_pack<T>(h.x, h.y, hb, hs);
        *reinterpret_cast<unsigned*>(k_tile + a) = lb;
        *reinterpret_cast<unsigned*>(k_tile + bb) = hb;
        *reinterpret_cast<unsigned*>(k_lo + a) = ls;
        *reinterpret_cast<unsigned*>(k_lo + bb) = hs;
      }
      __syncthreads();
    }

    // Warp-level skip: no row of this warp may see any key of the tile.
    if (!warp_active) continue;
    if (causal && kv0 > w_pos_max) continue;
    if (wl >= 0 && kv0 + N - 1 < w_pos_min - wl) continue;
    const bool need_mask = custom || !warp_full || kv0 + N > hi || (causal && kv0 + N - 1 > w_pos_min) ||
                           (wl >= 0 && kv0 < w_pos_max - wl);

    // ---- S = Q . K^T; each K fragment feeds the kM row tiles.
    const unsigned k_addr = k_base + buf * (2 * N * G::kStride);
    const unsigned k_lo_addr = k_lo_base + buf * (2 * N * G::kStride);
    float s[kM][G::kSTiles][4];
#pragma unroll
    for (int mt = 0; mt < kM; ++mt)
#pragma unroll
      for (int n = 0; n < G::kSTiles; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < G::kKSteps; ++ks) {
      unsigned a[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) {
        if constexpr (kQRegs) {
#pragma unroll
          for (int x = 0; x < 4; ++x) a[mt][x] = qf[mt][ks][x];
        } else {
          ldmatrix_x4(a[mt], q_base + mt * 32 * G::kStride + unit_bytes(ks, q_sw));
        }
      }
      unsigned a_lo[kM][4];
      if constexpr (kRope) {
#pragma unroll
        for (int mt = 0; mt < kM; ++mt)
          ldmatrix_x4(a_lo[mt], q_lo_base + mt * 32 * G::kStride + unit_bytes(ks, q_sw));
      }
#pragma unroll
      for (int np = 0; np < G::kSTiles / 2; ++np) {
        const unsigned off = np * 32 * G::kStride + unit_bytes(ks, k_sw);
        unsigned bf[4];
        ldmatrix_x4(bf, k_addr + off);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          Mma<T>::mma(s[mt][2 * np], a[mt], bf[0], bf[1]);
          Mma<T>::mma(s[mt][2 * np + 1], a[mt], bf[2], bf[3]);
        }
        if constexpr (kRope) {
          unsigned bl[4];
          ldmatrix_x4(bl, k_lo_addr + off);
#pragma unroll
          for (int mt = 0; mt < kM; ++mt) {
            Mma<T>::mma(s[mt][2 * np], a_lo[mt], bf[0], bf[1]);
            Mma<T>::mma(s[mt][2 * np + 1], a_lo[mt], bf[2], bf[3]);
            Mma<T>::mma(s[mt][2 * np], a[mt], bl[0], bl[1]);
            Mma<T>::mma(s[mt][2 * np + 1], a[mt], bl[2], bl[3]);
          }
        }
      }
    }

    // ---- Logits and mask; s[mt][n][e] is row 16mt + qr + 8 * (e / 2), key kv0 + 8n + 2qc + e % 2. Without a soft
    // cap s stays the raw dot product and the log2-domain logit s * dot_scale is formed inside the exponent's FMA;
    // with one, s becomes the capped log2-domain logit (sc = 1).
    constexpr bool kRawLogits = !kSoftCap;
    const float sc = kRawLogits ? dot_scale : 1.f;
    if constexpr (!kRawLogits) {
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)
#pragma unroll
        for (int n = 0; n < G::kSTiles; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][n][e] = transform.logit(s[mt][n][e] * dot_scale);
    }
    // Known limitation (FlashInfer's FA2 kernels share it): a masked key gets weight 0, but P.V below still
    // multiplies it into V on the tensor cores, and 0 * NaN = NaN, so an inf/NaN in V of a key inside [lo, hi)
    // that one row may see and another may not (causal diagonal, window edge, custom mask) reaches the other row
    // too. Keys outside [lo, hi) (past kv_len, padded page slots, bad pages) are zero-filled and never leak.
    if (need_mask) {
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)
#pragma unroll
        for (int n = 0; n < G::kSTiles; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int j = kv0 + 8 * n + 2 * qc + (e & 1);
            const int rr = e / 2;
            bool ok = j >= row_lo[mt][rr] && j < row_hi[mt][rr];
            if (custom && ok) {
              const int64_t row_i = (w_r0 + 16 * mt + qr + 8 * rr) / group;
              const int64_t bit = row_i * kv_len + j;
              ok = (__ldg(mask_bits + (bit >> 3)) >> (bit & 7)) & 1;
            }
            if (!ok) s[mt][n][e] = neg_inf();
          }
    }

    unsigned pa[kM][G::kPSteps][4];  // P as the A operand of P.V, per row tile and k-step
    // ---- Online softmax (m in the log2 domain). O is rescaled only when some row of the m16 tile raised its
    // maximum (warp vote): after the first tiles most do not, and the rescale is 4 * kOTiles multiplies per thread.
#pragma unroll
    for (int mt = 0; mt < kM; ++mt) {
      float scale[2], base[2];
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        float mx = neg_inf();
#pragma unroll
        for (int n = 0; n < G::kSTiles; ++n) mx = fmaxf(mx, fmaxf(s[mt][n][2 * rr], s[mt][n][2 * rr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][rr], mx * sc);
        base[rr] = m_new == neg_inf() ? 0.f : m_new;  // all masked so far: exp2(-inf - 0) = 0, never NaN
        scale[rr] = fast_exp2(m[mt][rr] - base[rr]);
        m[mt][rr] = m_new;
      }
      // P = 2^(logit - m), summed in fp32 and packed to T at once (the fp32 S dies here, which lowers the
      // register peak of the O rescale below).
      float psum[2] = {0.f, 0.f};
#pragma unroll
      for (int kk = 0; kk < G::kPSteps; ++kk)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float x[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            x[e] = fast_exp2(fmaf(s[mt][2 * kk + h][e], sc, -base[e / 2]));
            psum[e / 2] += x[e];
          }
          float r0f, r1f;
          pa[mt][kk][2 * h] = Mma<T>::pack(x[0], x[1], r0f, r1f);
          pa[mt][kk][2 * h + 1] = Mma<T>::pack(x[2], x[3], r0f, r1f);
        }
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) d[mt][rr] = d[mt][rr] * scale[rr] + psum[rr];
      if (__any_sync(0xffffffffu, scale[0] != 1.f || scale[1] != 1.f)) {
#pragma unroll
        for (int n = 0; n < G::kOTiles; ++n) {
          o[mt][n][0] *= scale[0];
          o[mt][n][1] *= scale[0];
          o[mt][n][2] *= scale[1];
          o[mt][n][3] *= scale[1];
        }
      }
    }

    // ---- O += P . V; each V fragment feeds the kM row tiles.
    const unsigned v_addr = v_base + buf * (2 * N * G::kStride);
#pragma unroll
    for (int kk = 0; kk < G::kPSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < G::kOTiles / 2; ++np) {
        unsigned bv[4];
        ldmatrix_x4_trans(bv, v_addr + kk * 32 * G::kStride + unit_bytes(np, v_sw));
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          Mma<T>::mma(o[mt][2 * np], pa[mt][kk], bv[0], bv[1]);
          Mma<T>::mma(o[mt][2 * np + 1], pa[mt][kk], bv[2], bv[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // ---- Epilogue: normalise and write this thread's rows (rows that saw nothing: 0 and -inf).
  if (!warp_active) return;
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      d[mt][rr] += __shfl_xor_sync(0xffffffffu, d[mt][rr], 1);
      d[mt][rr] += __shfl_xor_sync(0xffffffffu, d[mt][rr], 2);
    }
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int r = w_r0 + 16 * mt + qr + 8 * rr;
      if (r >= rows_total) continue;
      const int row_i = r / group;
      const int h = kv_head * group + (r - row_i * group);
      const int64_t row = static_cast<int64_t>(q_start + row_i);
      // d == 0: the row saw nothing (0 and -inf); a NaN d (NaN or inf - inf logit) flows into o and LSE.
      const float inv = d[mt][rr] != 0.f ? 1.f / d[mt][rr] : 0.f;
      const float lse_row = d[mt][rr] != 0.f ? m[mt][rr] + log2f(d[mt][rr]) : neg_inf();
      if (split) {  // fp32 partial state of this key chunk, merged by batch_prefill_merge_kernel
        const int64_t slot = (static_cast<int64_t>(blockIdx.x) * p.num_kv_heads + kv_head) * kRowsTile + (r - r0);
        float* const po = reinterpret_cast<float*>(ws + sl.partial_o) + slot * D;
#pragma unroll
        for (int n = 0; n < G::kOTiles; ++n)
          *reinterpret_cast<float2*>(po + 8 * n + 2 * qc) =
              make_float2(o[mt][n][2 * rr] * inv, o[mt][n][2 * rr + 1] * inv);
        if (qc == 0) reinterpret_cast<float*>(ws + sl.partial_lse)[slot] = lse_row;
        continue;
      }
      T* const dst = static_cast<T*>(p.o) + row * p.o_stride_n + static_cast<int64_t>(h) * p.o_stride_h;
#pragma unroll
      for (int n = 0; n < G::kOTiles; ++n) {
        float u0, u1;
        const unsigned w = Mma<T>::pack(o[mt][n][2 * rr] * inv, o[mt][n][2 * rr + 1] * inv, u0, u1);
        *reinterpret_cast<unsigned*>(dst + 8 * n + 2 * qc) = w;
      }
      if (p.lse != nullptr && qc == 0)
        p.lse[row * p.num_qo_heads + h] = lse_row;
    }
}

/// Merges the fp32 partial states of a split plan's key chunks (prefill_split_layout) into o and lse: grid
/// (num_work, num_kv_heads), kMergeThreads threads; block g merges the items of group g (blocks past the group
/// count exit). Chunks that saw no key (LSE -inf) weigh 0; a row with none gets 0 and LSE -inf; a chunk with a NaN
/// LSE or output makes the row's output NaN (and its LSE, for a NaN LSE). Deterministic.
constexpr int kMergeThreads = prefill_geometry::kMergeThreads;

template <typename T>
__global__ void __launch_bounds__(kMergeThreads) batch_prefill_merge_kernel(const __grid_constant__ PrefillParams p,
                                                                            int rows_tile) {
  const unsigned char* const ws = static_cast<const unsigned char*>(p.plan.workspace);
  const PrefillSplitLayout sl = prefill_split_layout(p.plan.num_work, p.num_kv_heads, rows_tile, p.head_dim);
  const int g = blockIdx.x;
  const int kv_head = blockIdx.y;
  if (g >= min(__ldg(reinterpret_cast<const int*>(ws)), p.plan.num_work)) return;
  const int* const indptr = reinterpret_cast<const int*>(ws + sl.group_indptr);
  const int w0 = __ldg(indptr + g), w1 = min(__ldg(indptr + g + 1), p.plan.num_work);
  if (w0 < 0 || w0 >= w1) return;
  const int b = __ldg(reinterpret_cast<const int*>(ws + sl.work_request) + w0);
  const int tile = __ldg(reinterpret_cast<const int*>(ws + sl.work_tile) + w0);
  if (b < 0 || b >= (p.qo_indptr == nullptr ? 1 : p.batch_size) || tile < 0) return;
  const int group = p.num_qo_heads / p.num_kv_heads;
  const int q_start = p.qo_indptr == nullptr ? 0 : __ldg(p.qo_indptr + b);
  const int rows_total = request_qo_len(p, b) * group;
  const int r0 = tile * rows_tile;
  const int units = p.head_dim / kVecElems;
  const float* const po = reinterpret_cast<const float*>(ws + sl.partial_o);
  const float* const pl = reinterpret_cast<const float*>(ws + sl.partial_lse);
  for (int idx = threadIdx.x; idx < rows_tile * units; idx += kMergeThreads) {
    const int row = idx / units;
    const int c = idx % units;
    const int r = r0 + row;
    if (r >= rows_total) break;  // rows grow with idx
    float mx = neg_inf();
    for (int w = w0; w < w1; ++w)
      mx = fmaxf(mx, pl[(static_cast<int64_t>(w) * p.num_kv_heads + kv_head) * rows_tile + row]);
    // Every chunk saw nothing or a NaN (fmaxf drops NaN): subtract 0, so that empty chunks weigh exp2(-inf) = 0
    // and a NaN chunk weighs NaN, which turns the row NaN.
    const float base = mx == neg_inf() ? 0.f : mx;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    float sum = 0.f;
    {
      for (int w = w0; w < w1; ++w) {
        const int64_t slot = (static_cast<int64_t>(w) * p.num_kv_heads + kv_head) * rows_tile + row;
        const float wt = exp2f(pl[slot] - base);
        const float4 x = *reinterpret_cast<const float4*>(po + slot * p.head_dim + c * kVecElems);
        const float4 y = *reinterpret_cast<const float4*>(po + slot * p.head_dim + c * kVecElems + 4);
        acc[0] += wt * x.x, acc[1] += wt * x.y, acc[2] += wt * x.z, acc[3] += wt * x.w;
        acc[4] += wt * y.x, acc[5] += wt * y.y, acc[6] += wt * y.z, acc[7] += wt * y.w;
        sum += wt;
      }
    }
    const float inv = sum != 0.f ? 1.f / sum : 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] *= inv;
    const int i = r / group;
    const int h = kv_head * group + (r - i * group);
    const int64_t out_row = static_cast<int64_t>(q_start + i);
    T* const dst = static_cast<T*>(p.o) + out_row * p.o_stride_n + static_cast<int64_t>(h) * p.o_stride_h;
    const uint4 v = Vec8<T>::from_float(acc);  // 4-byte stores: o needs only the alignment the main kernel needs
    unsigned* const d32 = reinterpret_cast<unsigned*>(dst + c * kVecElems);
    d32[0] = v.x, d32[1] = v.y, d32[2] = v.z, d32[3] = v.w;
    if (p.lse != nullptr && c == 0) p.lse[out_row * p.num_qo_heads + h] = sum != 0.f ? mx + log2f(sum) : neg_inf();
  }
}

}  // namespace prefill
}  // namespace fi4j
