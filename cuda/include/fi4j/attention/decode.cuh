// Batch decode over a paged KV cache: one query row per request, CUDA cores, fp32 math.
//
// One thread block per (request, KV head) serves all g = H_qo / H_kv query heads of the group, so each K/V byte
// is read from global memory once per group. Tiles of 16 KB of K+V stream through a kStages-deep cp.async ring
// in shared memory; the copy is shared by the whole block while the arithmetic is split between warps:
//   - head_warps warps split the group's query heads (strided), up to kMaxHeadsPerWarp heads each, with q and
//     the output accumulators of those heads in registers;
//   - the other factor, row_warps = kWarps / head_warps, splits each tile's token rows, so that small groups
//     (MHA, g = 1) still keep every warp busy.
// Inside a warp, kLanes lanes own one token row (one 16-byte chunk each; kLanes = D/8 rounded up to a power of
// two, the extra lanes idle, see decode_geometry.h) and a warp covers 32/kLanes rows per step. Partial dot products are reduced with xor shuffles inside those lanes, so every lane of a row
// knows the logit and multiplies it into its own chunk of V: no shared-memory round trip for the scores.
// Each lane group keeps its own online-softmax state; the states are merged at the end, across lane groups
// with shuffles and across row warps in shared memory.
// Groups of more than kHeadsPerPass query heads are served in several passes, each reading the KV again.
// A block attends the token range of its DecodeItem (a whole request, or one split-KV chunk of it).
#pragma once

#include "fi4j/attention/decode_geometry.h"
#include "fi4j/attention/decode_item.cuh"
#include "fi4j/attention/paged_kv.cuh"
#include "fi4j/attention/params.h"
#include "fi4j/attention/softmax_state.cuh"
#include "fi4j/attention/variant.cuh"
#include "fi4j/common/vec.cuh"

namespace fi4j {
namespace decode {

/// Bytes of dynamic shared memory the kernel instantiation needs (host and device).
template <int D, bool kRope>
constexpr int smem_bytes() {
  return SmemLayout<D, kRope>::kBytes;
}

/// Dot product of eight fp32 pairs.
__device__ __forceinline__ float dot8(const float (&a)[8], const float (&b)[8]) {
  float s = a[0] * b[0];
#pragma unroll
  for (int e = 1; e < 8; ++e) s = fmaf(a[e], b[e], s);
  return s;
}

/// Loads this lane's 8-element chunk of q for one head, applies RoPE at pos_q and the logit prescale.
template <typename T, int D, bool kRope>
__device__ __forceinline__ void load_query(const DecodeParams& p, int batch, int qo_head, int chunk, int pos_q,
                                           float scale, float (&q)[8]) {
  constexpr int kHalf = Geometry<D>::kChunks / 2;
  if (!Geometry<D>::kAllLanesBusy && chunk >= Geometry<D>::kChunks) {  // an idle lane: contributes 0 to q.k
#pragma unroll
    for (int e = 0; e < 8; ++e) q[e] = 0.f;
    return;
  }
  const T* row = static_cast<const T*>(p.q) + static_cast<int64_t>(batch) * p.q_stride_n +
                 static_cast<int64_t>(qo_head) * p.q_stride_h;
  Vec8<T>::to_float(ld_global_v16(row + chunk * kVecElems), q);
  if constexpr (kRope) {
    // Rotate-half pairs dim i with i +- D/2, which is the same position of the chunk kHalf away (an xor when
    // kHalf is a power of two).
    constexpr bool kPow2 = (kHalf & (kHalf - 1)) == 0;
    const int partner_chunk = kPow2 ? (chunk ^ kHalf) : (chunk < kHalf ? chunk + kHalf : chunk - kHalf);
    float partner[8];
    Vec8<T>::to_float(ld_global_v16(row + partner_chunk * kVecElems), partner);
    const bool low = chunk < kHalf;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float lo = low ? q[e] : partner[e];
      float hi = low ? partner[e] : q[e];
      rope_rotate(lo, hi, static_cast<float>(pos_q),
                  rope_frequency(p.variant, (chunk % kHalf) * kVecElems + e, D));
      q[e] = low ? lo : hi;
    }
  }
#pragma unroll
  for (int e = 0; e < 8; ++e) q[e] *= scale;
}

/// Largest power of two <= min(n, kWarps): the number of warps that split `n` query heads.
__device__ __forceinline__ int head_warp_count(int n) {
  int w = 1;
  while (w * 2 <= n && w * 2 <= kWarps) w *= 2;
  return w;
}

/// The work of one decode block: one (request or work item, KV head) per block, grid (batch_size or num_work,
/// num_kv_heads), kThreads threads, smem_bytes<D, kRope>() of dynamic shared memory. Inlined into
/// batch_decode_kernel (ahead of time) and into the extern "C" entry of a run-time compiled module.
template <typename T, int D, bool kSoftCap, bool kRope>
__device__ __forceinline__ void batch_decode_block(const DecodeParams& p) {
  using G = Geometry<D>;
  using Smem = SmemLayout<D, kRope>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const ring = reinterpret_cast<T*>(smem);
  float* const rope_k = reinterpret_cast<float*>(smem + Smem::kRopeOffset);
  unsigned char* const row_ok = smem + Smem::kFlagOffset;

  const PagedKv& kv = p.kv;
  allow_dependent_launch();
  int block_item, kv_head;
  block_coords(block_item, kv_head);
  const DecodeItem it = resolve_item(p, block_item);
  const int tid = threadIdx.x;
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int chunk = lane % G::kLanes;       // this lane's 16-byte chunk of a row (copy and compute alike)
  const int step_row = lane / G::kLanes;    // this lane's row within a warp step
  const bool chunk_lane = G::kAllLanesBusy || chunk < G::kChunks;  // false: an idle lane (D/8 not a power of 2)

  const int page_base = it.page_base;
  const int first = it.lo;  // tokens [first, end) are attended
  const int end = it.hi;
  const int num_tiles = (end - first + G::kTileTokens - 1) / G::kTileTokens;
  const int group = p.num_qo_heads / kv.num_kv_heads;
  const int64_t head_offset = static_cast<int64_t>(kv_head) * kv.head_stride + chunk * kVecElems;
  const T* const k_src = static_cast<const T*>(kv.k) + head_offset;
  const T* const v_src = static_cast<const T*>(kv.v) + head_offset;
  const LogitsTransform<kSoftCap> transform(p.variant);
  const float q_scale = LogitsTransform<kSoftCap>::query_scale(p.variant);

  // RoPE pass: this thread's two frequencies are fixed for the whole block.
  const int rope_dim = 2 * (tid % G::kRopeUnits);
  const bool rope_thread = G::kRopeExact || tid < G::kRopeThreads;
  float rope_freq0 = 0.f, rope_freq1 = 0.f;
  if constexpr (kRope) {
    rope_freq0 = rope_frequency(p.variant, rope_dim, D);
    rope_freq1 = rope_frequency(p.variant, rope_dim + 1, D);
  }

  for (int h0 = 0; h0 < group; h0 += kHeadsPerPass) {
    const int heads = min(kHeadsPerPass, group - h0);
    const int head_warps = head_warp_count(heads);
    const int row_warps = kWarps / head_warps;
    const int head_lane = warp % head_warps;  // this warp serves local heads head_lane + i * head_warps
    const int row_warp = warp / head_warps;   // and row steps [row_warp * steps, (row_warp + 1) * steps)
    const int my_heads = (heads - head_lane + head_warps - 1) / head_warps;
    const int steps = G::kStepsPerTile / row_warps;

    float q[kMaxHeadsPerWarp][8];  // loaded after the ring prologue, see below
    SoftmaxState<8> state[kMaxHeadsPerWarp];

    // Copy cursor: the token of this thread's first row in the next tile to issue, and the page ids of its rows
    // there, loaded one tile ahead so that the dependent index load never stalls the copy that uses it.
    const FastDivider page_div(max(kv.page_size, 1));
    const int copy_row0 = tid / G::kLanes;
    int next_token = first + copy_row0;
    int page_id[G::kCopiesPerThread];
    // Page ids of this thread's rows of the tile whose first row (for this thread) is `token0`.
    auto fetch_page_ids = [&](int (&ids)[G::kCopiesPerThread], int token0) {
#pragma unroll
      for (int i = 0; i < G::kCopiesPerThread; ++i) {
        const int token = token0 + i * G::kCopyRowStride;
        ids[i] = token < end ? raw_page_id(kv, page_base, page_div.div(token)) : -1;
      }
    };

    // Starts the copy of the next tile into ring stage `stage`, its rows on pages `ids`; rows past the end or on
    // a bad page are zero-filled and flagged invalid.
    auto issue_tile = [&](int stage, const int (&ids)[G::kCopiesPerThread]) {
      T* const k_dst = ring + stage * 2 * G::kTileElems;
      T* const v_dst = k_dst + G::kTileElems;
#pragma unroll
      for (int i = 0; i < G::kCopiesPerThread; ++i) {
        const int row = copy_row0 + i * G::kCopyRowStride;
        const int token = next_token + i * G::kCopyRowStride;
        const bool ok = token < end && page_in_range(kv, ids[i]);
        const int slot = token - page_div.div(token) * kv.page_size;
        const int64_t off = ok ? cache_offset(kv, ids[i], slot, 0) : 0;
        const int dst = row * D + chunk * kVecElems;
        if (chunk_lane) {
          cp_async_v16(k_dst + dst, k_src + off, ok);
          cp_async_v16(v_dst + dst, v_src + off, ok);
        }
        if (chunk == 0) row_ok[stage * G::kTileTokens + row] = ok;
      }
      next_token += G::kTileTokens;
    };

    // RoPE: rotates the stage's keys once per block into fp32 (not back to 16 bits, which would add a rounding),
    // laid out [row][e / 4][chunk][e % 4] so that a lane reads its chunk as two conflict-free float4.
    auto rotate_keys = [&](int stage, int tile_first) {
      const T* const k_tile = ring + stage * 2 * G::kTileElems;
      const int row0 = tid / G::kRopeUnits;
      if (!rope_thread) return;
#pragma unroll
      for (int i = 0; i < G::kRopeRowsPerThread; ++i) {
        const int row = row0 + i * G::kRopeRowStride;
        if (!G::kRopeExact && row >= G::kTileTokens) break;
        const float pos = static_cast<float>(tile_first + row);
        const T* const src = k_tile + row * D + rope_dim;
        float2 lo = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(src));
        float2 hi = Vec8<T>::pair_to_float(*reinterpret_cast<const unsigned*>(src + D / 2));
        rope_rotate(lo.x, hi.x, pos, rope_freq0);
        rope_rotate(lo.y, hi.y, pos, rope_freq1);
        float* const dst = rope_k + row * D + (rope_dim % 8) / 4 * (D / 2) + rope_dim / 8 * 4 + rope_dim % 4;
        *reinterpret_cast<float2*>(dst) = lo;
        *reinterpret_cast<float2*>(dst + D / 4) = hi;  // chunk + kChunks/2, same element
      }
    };

    // Loads key row `row` of a stage as fp32 (the rotated copy under RoPE).
    auto load_key = [&](int stage, int row, float (&k)[8]) {
      if (!chunk_lane) {
#pragma unroll
        for (int e = 0; e < 8; ++e) k[e] = 0.f;
        return;
      }
      if constexpr (kRope) {
        const float4 a = *reinterpret_cast<const float4*>(rope_k + row * D + chunk * 4);
        const float4 b = *reinterpret_cast<const float4*>(rope_k + row * D + D / 2 + chunk * 4);
        k[0] = a.x, k[1] = a.y, k[2] = a.z, k[3] = a.w, k[4] = b.x, k[5] = b.y, k[6] = b.z, k[7] = b.w;
      } else {
        Vec8<T>::to_float(ld_shared_v16(ring + stage * 2 * G::kTileElems + row * D + chunk * kVecElems), k);
      }
    };

    // Folds this warp's rows of a landed tile into the softmax states of its heads.
    auto consume_tile = [&](int stage) {
      const T* const v_tile = ring + stage * 2 * G::kTileElems + G::kTileElems;
      const unsigned char* const ok = row_ok + stage * G::kTileTokens;
      for (int s0 = row_warp * steps; s0 < (row_warp + 1) * steps; s0 += kRowsPerUpdate) {
        float logit[kMaxHeadsPerWarp][kRowsPerUpdate];
        bool valid[kRowsPerUpdate];
#pragma unroll
        for (int r = 0; r < kRowsPerUpdate; ++r) {
          const int row = (s0 + r) * G::kRowsPerStep + step_row;
          float k[8];
          load_key(stage, row, k);
          valid[r] = ok[row] != 0;
#pragma unroll
          for (int i = 0; i < kMaxHeadsPerWarp; ++i) logit[i][r] = i < my_heads ? dot8(q[i], k) : 0.f;
        }
        // Sum the partial dot products over the kLanes lanes of each row (butterfly: all of them get it).
#pragma unroll
        for (int mask = G::kLanes / 2; mask > 0; mask /= 2) {
#pragma unroll
          for (int i = 0; i < kMaxHeadsPerWarp; ++i) {
            if (i < my_heads) {
#pragma unroll
              for (int r = 0; r < kRowsPerUpdate; ++r)
                logit[i][r] += __shfl_xor_sync(0xffffffffu, logit[i][r], mask);
            }
          }
        }
        float prob[kMaxHeadsPerWarp][kRowsPerUpdate];
#pragma unroll
        for (int i = 0; i < kMaxHeadsPerWarp; ++i) {
          if (i < my_heads) {
#pragma unroll
            for (int r = 0; r < kRowsPerUpdate; ++r)
              logit[i][r] = valid[r] ? transform.logit(logit[i][r]) : neg_inf();
            state[i].update(logit[i], prob[i]);
          }
        }
#pragma unroll
        for (int r = 0; r < kRowsPerUpdate; ++r) {
          const int row = (s0 + r) * G::kRowsPerStep + step_row;
          float v[8];
          if (chunk_lane) {
            Vec8<T>::to_float(ld_shared_v16(v_tile + row * D + chunk * kVecElems), v);
          } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) v[e] = 0.f;
          }
#pragma unroll
          for (int i = 0; i < kMaxHeadsPerWarp; ++i) {
            if (i < my_heads) {
#pragma unroll
              for (int e = 0; e < 8; ++e) state[i].o[e] = fmaf(prob[i][r], v[e], state[i].o[e]);
            }
          }
        }
      }
    };

    // Ring: tiles 0 .. kStages-2 in flight before the loop (their page ids loaded together, so the start pays
    // one index-load latency, not one per tile); iteration t waits for tile t, then refills the stage that tile
    // t-1 used (every warp has left it: they all passed this iteration's barrier).
    // One commit per issue slot, empty or not, keeps the wait_group count uniform.
    {
      int first_ids[kStages - 1][G::kCopiesPerThread];
#pragma unroll
      for (int t = 0; t < kStages - 1; ++t)
        if (t < num_tiles) fetch_page_ids(first_ids[t], next_token + t * G::kTileTokens);
#pragma unroll
      for (int t = 0; t < kStages - 1; ++t) {
        if (t < num_tiles) issue_tile(t, first_ids[t]);
        cp_async_commit();
      }
      if (kStages - 1 < num_tiles) fetch_page_ids(page_id, next_token);
    }

    // The queries load while the first tiles are in flight.
#pragma unroll
    for (int i = 0; i < kMaxHeadsPerWarp; ++i) {
      state[i].init();
      if (i < my_heads && num_tiles > 0) {
        const int qo_head = kv_head * group + h0 + head_lane + i * head_warps;
        load_query<T, D, kRope>(p, it.request, qo_head, chunk, it.pos_q, q_scale, q[i]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) q[i][e] = 0.f;
      }
    }

    for (int t = 0; t < num_tiles; ++t) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
      const int next = t + kStages - 1;
      if (next < num_tiles) {
        issue_tile(next % kStages, page_id);
        if (next + 1 < num_tiles) fetch_page_ids(page_id, next_token);
      }
      cp_async_commit();
      if constexpr (kRope) {
        rotate_keys(t % kStages, first + t * G::kTileTokens);
        __syncthreads();
      }
      consume_tile(t % kStages);
    }
    cp_async_wait<0>();

    // Merge: first the lane groups of a warp (they covered different rows), then the row warps via the ring.
#pragma unroll
    for (int mask = G::kLanes; mask < 32; mask *= 2) {
#pragma unroll
      for (int i = 0; i < kMaxHeadsPerWarp; ++i)
        if (i < my_heads) state[i].merge_from_lane(mask);
    }
    __syncthreads();  // every warp is done with the ring
    float* const merge_o = reinterpret_cast<float*>(smem);
    float* const merge_m = merge_o + kHeadsPerPass * D;
    float* const merge_d = merge_m + kHeadsPerPass;
    if (step_row == 0 && chunk_lane) {
#pragma unroll
      for (int i = 0; i < kMaxHeadsPerWarp; ++i) {
        if (i < my_heads) {
          const int slot_id = row_warp * heads + head_lane + i * head_warps;
          float4* const dst = reinterpret_cast<float4*>(merge_o + slot_id * D + chunk * kVecElems);
          dst[0] = make_float4(state[i].o[0], state[i].o[1], state[i].o[2], state[i].o[3]);
          dst[1] = make_float4(state[i].o[4], state[i].o[5], state[i].o[6], state[i].o[7]);
          if (chunk == 0) {
            merge_m[slot_id] = state[i].m;
            merge_d[slot_id] = state[i].d;
          }
        }
      }
    }
    __syncthreads();
    for (int item = tid; item < heads * G::kChunks; item += kThreads) {
      const int head = item / G::kChunks;
      const int c = item % G::kChunks;
      SoftmaxState<8> acc;
      acc.init();
      for (int w = 0; w < row_warps; ++w) {
        const int slot_id = w * heads + head;
        const float4* const src = reinterpret_cast<const float4*>(merge_o + slot_id * D + c * kVecElems);
        const float4 a = src[0], b = src[1];
        const float o2[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        acc.merge(merge_m[slot_id], merge_d[slot_id], o2);
      }
      // Nothing allowed (empty request or chunk, d == 0): output 0 and LSE -inf, never 0/0. A NaN d (a NaN or
      // inf - inf logit) is not empty: it flows into out and LSE (softmax_state.cuh).
      const float inv = acc.d != 0.f ? 1.f / acc.d : 0.f;
      float out[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) out[e] = acc.o[e] * inv;
      write_result<T>(p, it, kv_head * group + h0 + head, c, out, c == 0,
                      acc.d != 0.f ? acc.m + log2f(acc.d) : neg_inf());
    }
    __syncthreads();  // the next pass refills the ring
  }
}

/// Decode kernel of the ahead-of-time set: grid (batch_size or num_work, num_kv_heads), kThreads threads,
/// smem_bytes<D, kRope>() of dynamic shared memory.
template <typename T, int D, bool kSoftCap, bool kRope>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm(kRope))
    batch_decode_kernel(const __grid_constant__ DecodeParams p) {
  batch_decode_block<T, D, kSoftCap, kRope>(p);
}

}  // namespace decode
}  // namespace fi4j
