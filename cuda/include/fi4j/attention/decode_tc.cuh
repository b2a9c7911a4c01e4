// Batch decode on tensor cores: the g query heads of a KV group become the rows of a 16-row mma.sync tile, so
// that large GQA groups cost one tensor-core instruction per 16x8x16 block instead of g CUDA-core dot products.
//
// One thread block per (request or work item, KV head), kWarps warps. The block's token range is cut into
// 16-token chunks dealt round-robin to the warps (chunk c to warp c % kWarps). Each warp streams its chunks
// through a private kStages-deep cp.async ring in shared memory and keeps its own online-softmax state, so the
// main loop has no block-wide barrier: a warp only waits for its own copies. Per chunk:
//   S[16 heads x 16 tokens] = Q . K^T   (D/16 k-steps, two n8 tiles; Q and K by ldmatrix from swizzled smem)
//   online softmax over the rows of S in registers (the mma accumulator layout: 2 rows x 4 columns per thread)
//   O[16 x D] += P . V                  (P re-packed from the accumulators as the A operand, V by ldmatrix.trans)
// At the end the kWarps states are merged in shared memory, in warp order (deterministic).
//
// Accuracy matches the CUDA-core path (fp32 math): mma takes 16-bit operands, so every operand that is not
// already exact in T is split into a high and a low T part and multiplied twice (mma.cuh split_pack): the
// softmax weights P always, q and k when RoPE rotated them in fp32. The logit scale is applied to the fp32
// dot product, never folded into the 16-bit q. Tensor-core time is far from the bound (decode moves ~2 bytes
// per multiply-add; at D = 128 a 16-token chunk is 8 KB of K+V for 48 mma), so the extra mma are cheap.
//
// Groups of more than 16 query heads run in several passes of 16 rows, each reading the KV again.
#pragma once

#include "fi4j/attention/decode_item.cuh"
#include "fi4j/common/mma.cuh"
#include "fi4j/attention/paged_kv.cuh"
#include "fi4j/attention/params.h"
#include "fi4j/attention/softmax_state.cuh"
#include "fi4j/attention/variant.cuh"
#include "fi4j/common/vec.cuh"

// Tuning knobs (compile-time, so that benchmark builds can compare variants): warps per block and ring depth at
// D = 128. Measured on H100 (decode_bench, bf16 page 16): 4 warps with 2 stages beat 4 warps with 3 stages by
// ~0.5-1% on most PEERS shapes, and 2 warps with 4 stages lost up to 8% (too few warps to cover the latency).
#ifndef FI4J_TC_WARPS
#define FI4J_TC_WARPS 4
#endif
#ifndef FI4J_TC_STAGES_D128
#define FI4J_TC_STAGES_D128 2
#endif
// D = 64 (a token row is 128 bytes): 2 stages and 4 resident blocks per SM (<= 128 registers, 32 KB of rings per
// block). Measured on H100 (decode_bench, read flush): 64x4096 32/8 2.89 TB/s against 2.72 with 6 stages and 2
// blocks, 64x512 2.34 against 1.91; 3 stages x 4 blocks 2.84 / 2.28, 4 x 3 2.61 / 2.05, 8 warps x 3 stages 2.77 /
// 2.10. More blocks hide each block's start and merge; more stages per warp did not help. The split planner
// targets 4 blocks per SM at D = 64 (decode_plan.cpp).
#ifndef FI4J_TC_STAGES_D64
#define FI4J_TC_STAGES_D64 2
#endif
#ifndef FI4J_TC_MINBLOCKS_D64
#define FI4J_TC_MINBLOCKS_D64 4
#endif

namespace fi4j {
namespace decode_tc {

using decode::DecodeItem;

constexpr int kWarps = FI4J_TC_WARPS;
constexpr int kThreads = 32 * kWarps;
/// Query heads per row tile (mma M).
constexpr int kRows = 16;
/// Tokens per warp chunk: the K of the P.V mma and two n8 tiles of Q.K^T.
constexpr int kChunkTokens = 16;

/// Tile geometry for head dim D.
template <int D>
struct Geometry {
  static_assert(D == 64 || D == 128 || D == 256, "head_dim must be 64, 128 or 256");
  static constexpr int kChunks = D / kVecElems;  // 16-byte units per row
  /// Ring depth per warp. At D = 128 two stages (one chunk in flight while the other is consumed) and two
  /// resident blocks per SM (registers allow two) keep ~64-128 KB of K/V in flight per SM, which saturates HBM.
  static constexpr int kStages = D == 64 ? FI4J_TC_STAGES_D64 : D == 128 ? FI4J_TC_STAGES_D128 : 2;
  static constexpr int kStageElems = kChunkTokens * D;  // of K (V alike)
  static constexpr int kCopyRows = 32 / kChunks;        // rows one warp-wide copy instruction covers
  static constexpr int kCopySteps = kChunkTokens / kCopyRows;
  static constexpr int kKSteps = D / 16;  // k-steps of Q.K^T
  static constexpr int kNTiles = D / 8;   // n8 tiles of O
  // RoPE of a chunk: unit u rotates dims (2u, 2u+1) with (2u+D/2, 2u+1+D/2); D/4 units per row.
  static constexpr int kRopeUnits = D / 4;
  static constexpr int kRopePerLane = kChunkTokens * kRopeUnits / 32;
  static constexpr int kMergeStride = D + 8;  // fp32 row stride of the merge scratch (+8: fewer bank conflicts)
  /// Resident blocks per SM the kernel is built for; stating it also keeps ptxas from trading registers for
  /// spills (without it ptxas picked ~128 registers and spilled).
  static constexpr int kMinBlocks = D == 256 ? 1 : D == 64 ? FI4J_TC_MINBLOCKS_D64 : 2;
  static_assert(kChunks >= 8, "the swizzle needs 8 16-byte units per row");
  static_assert(kStages >= 2 && kStages <= 8, "ring depth");
};

/// Dynamic shared memory, in bytes from the start:
///   [kWarps][kStages][K | V][16][D] T   per-warp rings (swizzled rows)
///   [hi | lo][16][D] T                  query tile of the current pass (lo only with RoPE)
///   [kWarps][16][D] T                   low parts of the rotated keys of each warp's current chunk (RoPE only)
///   [kWarps][kStages] u32               valid-token masks of the ring stages
/// The merge scratch [kWarps][16][kMergeStride] fp32 + m, d [kWarps][16] reuses the rings after the main loop.
template <int D, bool kRope>
struct SmemLayout {
  using G = Geometry<D>;
  static constexpr int kRingBytes = kWarps * G::kStages * 2 * G::kStageElems * 2;
  static constexpr int kQOffset = kRingBytes;
  static constexpr int kQBytes = (kRope ? 2 : 1) * kRows * D * 2;
  static constexpr int kKLoOffset = kQOffset + kQBytes;
  static constexpr int kKLoBytes = kRope ? kWarps * kChunkTokens * D * 2 : 0;
  static constexpr int kMaskOffset = kKLoOffset + kKLoBytes;
  static constexpr int kBytes = kMaskOffset + kWarps * G::kStages * 4;
  static constexpr int kMergeBytes = kWarps * kRows * (G::kMergeStride + 2) * 4;
  static_assert(kMergeBytes <= kRingBytes, "merge scratch must fit in the rings");
};

/// Bytes of dynamic shared memory the kernel instantiation needs (host and device).
template <int D, bool kRope>
constexpr int smem_bytes() {
  return SmemLayout<D, kRope>::kBytes;
}

/// Element offset of (row, col) in a swizzled [rows][D] 16-bit tile: the 16-byte unit index is xor-ed with
/// row % 8, so the 8 rows an ldmatrix reads (same logical unit) fall in 8 different bank groups.
template <int D>
__device__ __forceinline__ int swizzle(int row, int col) {
  return row * D + ((((col / kVecElems) ^ row) & 7) | ((col / kVecElems) & ~7)) * kVecElems + col % kVecElems;
}

/// Decode on tensor cores for one (request or work item, KV head) per block: grid (items, num_kv_heads),
/// kThreads threads, smem_bytes<D, kRope>() of dynamic shared memory.
template <typename T, int D, bool kSoftCap, bool kRope>
__global__ void __launch_bounds__(kThreads, Geometry<D>::kMinBlocks) batch_decode_tc_kernel(const __grid_constant__ DecodeParams p) {
  using G = Geometry<D>;
  using Smem = SmemLayout<D, kRope>;
  extern __shared__ __align__(128) unsigned char smem[];
  const PagedKv& kv = p.kv;
  decode::allow_dependent_launch();
  int block_item, kv_head;
  decode::block_coords(block_item, kv_head);
  const DecodeItem it = decode::resolve_item(p, block_item);

  const int tid = threadIdx.x;
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int qr = lane / 4;  // accumulator row (and row + 8) of this thread
  const int qc = lane % 4;  // accumulator column pair 2*qc, 2*qc+1 of each n8 tile

  T* const ring = reinterpret_cast<T*>(smem) + warp * G::kStages * 2 * G::kStageElems;
  T* const q_tile = reinterpret_cast<T*>(smem + Smem::kQOffset);
  T* const k_lo = reinterpret_cast<T*>(smem + Smem::kKLoOffset) + warp * G::kStageElems;
  unsigned* const masks = reinterpret_cast<unsigned*>(smem + Smem::kMaskOffset) + warp * G::kStages;

  const int group = p.num_qo_heads / kv.num_kv_heads;
  const int lo = it.lo, hi = it.hi;
  const int num_chunks = (hi - lo + kChunkTokens - 1) / kChunkTokens;
  const int my_chunks = num_chunks > warp ? (num_chunks - warp + kWarps - 1) / kWarps : 0;
  const LogitsTransform<kSoftCap> transform(p.variant);
  // The logit scale multiplies the fp32 dot product (q stays exact in T).
  const float dot_scale = LogitsTransform<kSoftCap>::query_scale(p.variant);
  const T* const k_base = static_cast<const T*>(kv.k);
  const T* const v_base = static_cast<const T*>(kv.v);
  const FastDivider page_div(max(kv.page_size, 1));

  // RoPE of keys: this lane's units are u0 (first half of its rows) and u1 (second half; equal unless D = 256).
  const int rope_u0 = lane % G::kRopeUnits;
  const int rope_u1 = (lane + 32) % G::kRopeUnits;
  float freq00 = 0.f, freq01 = 0.f, freq10 = 0.f, freq11 = 0.f;
  if constexpr (kRope) {
    freq00 = rope_frequency(p.variant, 2 * rope_u0, D);
    freq01 = rope_frequency(p.variant, 2 * rope_u0 + 1, D);
    freq10 = rope_frequency(p.variant, 2 * rope_u1, D);
    freq11 = rope_frequency(p.variant, 2 * rope_u1 + 1, D);
  }

  for (int h0 = 0; h0 < group; h0 += kRows) {
    const int rows = min(kRows, group - h0);

    // ---- Per-warp state: rows qr and qr + 8 of the tile.
    float o[G::kNTiles][4];
#pragma unroll
    for (int n = 0; n < G::kNTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m[2] = {neg_inf(), neg_inf()};
    float d[2] = {0.f, 0.f};  // this thread's columns only; summed over the quad at the end

    // ---- Copy cursor. Lane l (and l + 16) owns row l % 16 of a chunk: it loads the page id of that row one
    // issue ahead, so that the dependent index load never stalls a copy.
    const int own_row = lane % kChunkTokens;
    auto chunk_token = [&](int k) { return lo + (warp + k * kWarps) * kChunkTokens; };
    // Page id of this lane's row of chunk k (-1 past the range).
    auto page_of_chunk = [&](int k) {
      const int token = chunk_token(k) + own_row;
      return (k < my_chunks && token < hi) ? raw_page_id(kv, it.page_base, page_div.div(token)) : -1;
    };

    // Starts the copy of this warp's chunk k (this lane's row on page `page`) into ring stage `stage`. Rows past
    // the range or on a bad page are zero-filled and left out of the stage's mask.
    auto issue_chunk = [&](int k, int stage, int page) {
      const int token = chunk_token(k) + own_row;
      const bool ok = token < hi && page_in_range(kv, page);
      const int slot = token - page_div.div(token) * kv.page_size;
      const long long off = ok ? cache_offset(kv, page, slot, kv_head) : 0;
      const unsigned mask = __ballot_sync(0xffffffffu, ok) & 0xffffu;
      if (lane == 0) masks[stage] = mask;
      T* const k_dst = ring + stage * 2 * G::kStageElems;
      T* const v_dst = k_dst + G::kStageElems;
      const int c = lane % G::kChunks;
#pragma unroll
      for (int s = 0; s < G::kCopySteps; ++s) {
        const int row = s * G::kCopyRows + lane / G::kChunks;
        const long long src = __shfl_sync(0xffffffffu, off, row) + c * kVecElems;
        const bool row_ok = (mask >> row) & 1u;
        cp_async_v16(k_dst + swizzle<D>(row, c * kVecElems), k_base + src, row_ok);
        cp_async_v16(v_dst + swizzle<D>(row, c * kVecElems), v_base + src, row_ok);
      }
    };

    // RoPE: rotates the keys of a landed chunk in fp32 at their absolute positions; the high T part replaces
    // the key in the ring, the low part goes to k_lo.
    auto rotate_keys = [&](int stage, int k) {
      T* const k_tile = ring + stage * 2 * G::kStageElems;
      // Not unrolled: each step is two accurate sincosf, and unrolling them all next to the live O accumulators
      // runs out of registers at D = 256.
#pragma unroll 1
      for (int i = 0; i < G::kRopePerLane; ++i) {
        const int unit = lane + 32 * i;
        const int row = unit / G::kRopeUnits;
        const bool second = (32 * i) % G::kRopeUnits != 0;  // unit u1, else u0
        const int u = unit % G::kRopeUnits;
        const float pos = static_cast<float>(chunk_token(k) + row);
        const int a = swizzle<D>(row, 2 * u), b = swizzle<D>(row, 2 * u + D / 2);
        float2 l = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(k_tile + a));
        float2 h = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(k_tile + b));
        rope_rotate(l.x, h.x, pos, second ? freq10 : freq00);
        rope_rotate(l.y, h.y, pos, second ? freq11 : freq01);
        unsigned lb, ls, hb, hs;
        split_pack<T>(l.x, l.y, lb, ls);
        split_pack<T>(h.x, h.y, hb, hs);
        *reinterpret_cast<unsigned*>(k_tile + a) = lb;
        *reinterpret_cast<unsigned*>(k_tile + b) = hb;
        *reinterpret_cast<unsigned*>(k_lo + a) = ls;
        *reinterpret_cast<unsigned*>(k_lo + b) = hs;
      }
    };

    // ldmatrix row addresses of this lane (see mma.cuh for the fragment layouts):
    //   Q (A operand): matrix j = lane / 8 is rows (j % 2) * 8.., 16-byte unit 2 * ks + j / 2
    //   K (B operand, tokens as n): matrix j is tokens (j / 2) * 8.., unit 2 * ks + j % 2
    //   V (B operand, tokens as k, transposed): matrix j is tokens (j % 2) * 8.., unit 2 * np + j / 2
    const int ld_row = lane % 8;
    const int ld_j = lane / 8;
    const unsigned q_addr = smem_addr(q_tile);
    const int q_row = (ld_j % 2) * 8 + ld_row;
    const int k_row = (ld_j / 2) * 8 + ld_row;
    const int v_row = (ld_j % 2) * 8 + ld_row;

    // Folds landed chunk k (in `stage`) into the warp's state.
    auto consume_chunk = [&](int stage) {
      const unsigned mask = masks[stage];
      const T* const k_tile = ring + stage * 2 * G::kStageElems;
      const unsigned k_addr = smem_addr(k_tile);
      const unsigned v_addr = smem_addr(k_tile + G::kStageElems);
      float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int ks = 0; ks < G::kKSteps; ++ks) {
        unsigned a[4], b[4];
        ldmatrix_x4(a, q_addr + 2 * swizzle<D>(q_row, (2 * ks + ld_j / 2) * kVecElems));
        const int k_off = swizzle<D>(k_row, (2 * ks + ld_j % 2) * kVecElems);
        ldmatrix_x4(b, k_addr + 2 * k_off);
        Mma<T>::mma(s[0], a, b[0], b[1]);
        Mma<T>::mma(s[1], a, b[2], b[3]);
        if constexpr (kRope) {
          unsigned a_lo[4], b_lo[4];
          ldmatrix_x4(a_lo, q_addr + 2 * (kRows * D + swizzle<D>(q_row, (2 * ks + ld_j / 2) * kVecElems)));
          ldmatrix_x4(b_lo, smem_addr(k_lo) + 2 * k_off);
          Mma<T>::mma(s[0], a_lo, b[0], b[1]);
          Mma<T>::mma(s[1], a_lo, b[2], b[3]);
          Mma<T>::mma(s[0], a, b_lo[0], b_lo[1]);
          Mma<T>::mma(s[1], a, b_lo[2], b_lo[3]);
        }
      }
      // Logits (log2 domain), masked tokens -inf; s[n][e] is row qr + 8 * (e / 2), token 8n + 2qc + e % 2.
      float row_max[2] = {neg_inf(), neg_inf()};
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool valid = (mask >> (8 * n + 2 * qc + e % 2)) & 1u;
          s[n][e] = valid ? transform.logit(s[n][e] * dot_scale) : neg_inf();
          row_max[e / 2] = fmaxf(row_max[e / 2], s[n][e]);
        }
      float scale[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 1));
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(0xffffffffu, row_max[r], 2));
        const float m_new = fmaxf(m[r], row_max[r]);
        // Everything so far masked: subtract 0 instead of -inf so that exp2 sees -inf, not NaN.
        const float base = m_new == neg_inf() ? 0.f : m_new;
        scale[r] = exp2f(m[r] - base);
        m[r] = m_new;
        row_max[r] = base;
      }
      float psum[2] = {0.f, 0.f};
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - row_max[e / 2]);
          psum[e / 2] += s[n][e];
        }
#pragma unroll
      for (int r = 0; r < 2; ++r) d[r] = d[r] * scale[r] + psum[r];
#pragma unroll
      for (int n = 0; n < G::kNTiles; ++n) {
        o[n][0] *= scale[0];
        o[n][1] *= scale[0];
        o[n][2] *= scale[1];
        o[n][3] *= scale[1];
      }
      // P as the A operand (rows x 16 tokens), high and low parts.
      unsigned p_hi[4], p_lo[4];
      split_pack<T>(s[0][0], s[0][1], p_hi[0], p_lo[0]);
      split_pack<T>(s[0][2], s[0][3], p_hi[1], p_lo[1]);
      split_pack<T>(s[1][0], s[1][1], p_hi[2], p_lo[2]);
      split_pack<T>(s[1][2], s[1][3], p_hi[3], p_lo[3]);
#pragma unroll
      for (int np = 0; np < G::kNTiles / 2; ++np) {
        unsigned b[4];
        ldmatrix_x4_trans(b, v_addr + 2 * swizzle<D>(v_row, (2 * np + ld_j / 2) * kVecElems));
        Mma<T>::mma(o[2 * np], p_hi, b[0], b[1]);
        Mma<T>::mma(o[2 * np], p_lo, b[0], b[1]);
        Mma<T>::mma(o[2 * np + 1], p_hi, b[2], b[3]);
        Mma<T>::mma(o[2 * np + 1], p_lo, b[2], b[3]);
      }
    };

    // ---- Ring: chunks 0 .. kStages-2 in flight before the loop (their page ids loaded together, so the start
    // pays one index-load latency, not one per chunk); iteration k waits for chunk k, then refills the stage
    // chunk k-1 used (every lane left it: they all passed this iteration's __syncwarp). One commit per issue
    // slot, empty or not, keeps the wait_group count uniform.
    int next_page;
    {
      int first_pages[G::kStages - 1];
#pragma unroll
      for (int k = 0; k < G::kStages - 1; ++k) first_pages[k] = page_of_chunk(k);
#pragma unroll
      for (int k = 0; k < G::kStages - 1; ++k) {
        if (k < my_chunks) issue_chunk(k, k, first_pages[k]);
        cp_async_commit();
      }
      next_page = page_of_chunk(G::kStages - 1);
    }

    // ---- Query tile, loaded while the first chunks are in flight: rows >= `rows` (and everything for an empty item) are zero, so they stay finite.
    for (int idx = tid; idx < kRows * G::kChunks; idx += kThreads) {
      const int row = idx / G::kChunks;
      const int c = idx % G::kChunks;
      float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (row < rows && num_chunks > 0) {
        const T* const src = static_cast<const T*>(p.q) + static_cast<int64_t>(it.request) * p.q_stride_n +
                             static_cast<int64_t>(kv_head * group + h0 + row) * p.q_stride_h;
        Vec8<T>::to_float(ld_global_v16(src + c * kVecElems), x);
        if constexpr (kRope) {
          // Rotate-half pairs unit c with unit c ^ (kChunks/2), the same element of the partner half.
          float partner[8];
          Vec8<T>::to_float(ld_global_v16(src + (c ^ (G::kChunks / 2)) * kVecElems), partner);
          const bool low = c < G::kChunks / 2;
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            float l = low ? x[e] : partner[e];
            float h = low ? partner[e] : x[e];
            rope_rotate(l, h, static_cast<float>(it.pos_q),
                        rope_frequency(p.variant, (c % (G::kChunks / 2)) * kVecElems + e, D));
            x[e] = low ? l : h;
          }
        }
      }
      if constexpr (kRope) {
        unsigned big[4], small[4];
#pragma unroll
        for (int w = 0; w < 4; ++w) split_pack<T>(x[2 * w], x[2 * w + 1], big[w], small[w]);
        st_shared_v16(q_tile + swizzle<D>(row, c * kVecElems), make_uint4(big[0], big[1], big[2], big[3]));
        st_shared_v16(q_tile + kRows * D + swizzle<D>(row, c * kVecElems),
                      make_uint4(small[0], small[1], small[2], small[3]));
      } else {
        st_shared_v16(q_tile + swizzle<D>(row, c * kVecElems), Vec8<T>::from_float(x));  // exact: x came from T
      }
    }
    __syncthreads();

    for (int k = 0; k < my_chunks; ++k) {
      cp_async_wait<G::kStages - 2>();
      __syncwarp();
      const int next = k + G::kStages - 1;
      if (next < my_chunks) {
        issue_chunk(next, next % G::kStages, next_page);
        next_page = page_of_chunk(next + 1);
      }
      cp_async_commit();
      const int stage = k % G::kStages;
      if constexpr (kRope) {
        rotate_keys(stage, k);
        __syncwarp();
      }
      consume_chunk(stage);
    }
    cp_async_wait<0>();

    // ---- Merge the warps' states in shared memory (over the rings: wait until every warp left its ring).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      d[r] += __shfl_xor_sync(0xffffffffu, d[r], 1);
      d[r] += __shfl_xor_sync(0xffffffffu, d[r], 2);
    }
    __syncthreads();
    float* const merge_o = reinterpret_cast<float*>(smem);
    float* const merge_m = merge_o + kWarps * kRows * G::kMergeStride;
    float* const merge_d = merge_m + kWarps * kRows;
    {
      float* const mine = merge_o + warp * kRows * G::kMergeStride;
#pragma unroll
      for (int n = 0; n < G::kNTiles; ++n) {
        *reinterpret_cast<float2*>(mine + qr * G::kMergeStride + 8 * n + 2 * qc) = make_float2(o[n][0], o[n][1]);
        *reinterpret_cast<float2*>(mine + (qr + 8) * G::kMergeStride + 8 * n + 2 * qc) =
            make_float2(o[n][2], o[n][3]);
      }
      if (qc == 0) {
        merge_m[warp * kRows + qr] = m[0];
        merge_m[warp * kRows + qr + 8] = m[1];
        merge_d[warp * kRows + qr] = d[0];
        merge_d[warp * kRows + qr + 8] = d[1];
      }
    }
    __syncthreads();
    for (int idx = tid; idx < rows * G::kChunks; idx += kThreads) {
      const int row = idx / G::kChunks;
      const int c = idx % G::kChunks;
      SoftmaxState<8> acc;
      acc.init();
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float4* const src =
            reinterpret_cast<const float4*>(merge_o + (w * kRows + row) * G::kMergeStride + c * kVecElems);
        const float4 x = src[0], y = src[1];
        const float o2[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
        acc.merge(merge_m[w * kRows + row], merge_d[w * kRows + row], o2);
      }
      // Nothing allowed (empty request or chunk, d == 0): output 0 and LSE -inf, never 0/0. A NaN d (a NaN or
      // inf - inf logit) is not empty: it flows into out and LSE (softmax_state.cuh).
      const float inv = acc.d != 0.f ? 1.f / acc.d : 0.f;
      float out[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) out[e] = acc.o[e] * inv;
      decode::write_result<T>(p, it, kv_head * group + h0 + row, c, out, c == 0,
                              acc.d != 0.f ? acc.m + log2f(acc.d) : neg_inf());
    }
    __syncthreads();  // the next pass rewrites the query tile and the rings
  }
}

}  // namespace decode_tc
}  // namespace fi4j
