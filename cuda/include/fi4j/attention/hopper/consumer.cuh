// A consumer warp group's main loop: 64 query rows against the block's key tiles, last tile first (under a causal
// mask the diagonal tiles come first, and with them the row maxima).
//
// Schedule with kOverlap (FlashAttention-3's intra-warp-group pipelining): in iteration it the group issues
// S_it = Q K_it^T and then O += P_{it-1} V_{it-1} (P from registers), waits for S_it only, releases K_it, and runs
// the mask and softmax of S_it while the P V product is still on the tensor cores; then waits for it, releases
// V_{it-1}, rescales O and rounds P_it. Without kOverlap each product is waited for at once (the simple order,
// kept as a reference schedule).
// With kPingPong the groups take turns to issue their products (named barriers 1..kConsumers, a token passed
// round-robin), so one group's softmax runs while the other's products occupy the tensor cores. Every group takes
// the same number of turns per item (n_tiles + 1), so the token runs on across the items of a persistent block:
// the kernel hands group 0 the first turn (pingpong_start) and group 0 takes back the last token (pingpong_end).
// Pipeline stages and parities come from the running counters `pipe` (K/V tiles consumed by this block so far)
// and `q_uses` (items with keys so far), which the producer advances identically. After the last product that
// reads Q, each warp releases the group's Q space (q_empty) so the producer can load the next item's Q.
// Output: staged through the group's Q space (one item per block), or stored straight from the accumulators
// (kDirectStore, persistent blocks, where the Q space already holds the next item's rows).
#pragma once

#include <math_constants.h>

#include "fi4j/attention/hopper/epilogue.cuh"
#include "fi4j/attention/hopper/ptx.cuh"
#include "fi4j/attention/hopper/scheduler.cuh"
#include "fi4j/attention/hopper/softmax.cuh"
#include "fi4j/attention/hopper/tile.cuh"
#include "fi4j/attention/hopper/wgmma.cuh"

namespace fi4j {
namespace hopper {

template <class Tile, bool kPingPong>
__device__ __forceinline__ void pingpong_start(int group) {
  if constexpr (kPingPong) {
    if (group == Tile::kConsumers - 1) named_arrive(1, 256);
  }
}
template <class Tile, bool kPingPong>
__device__ __forceinline__ void pingpong_end(int group) {
  if constexpr (kPingPong) {
    if (group == 0) named_sync(1, 256);
  }
}

template <typename T, class Tile, bool kOverlap, bool kPingPong, bool kDirectStore>
__device__ __forceinline__ void consumer_item(const PrefillSm90KernelParams& p, const BlockWork& w, uint32_t base,
                                              int group, int& pipe, int& q_uses) {
  using L = SmemLayout<Tile>;
  constexpr int D = Tile::D;
  constexpr int kN = Tile::kN;
  constexpr int S = Tile::kStages;
  constexpr int kG = Tile::kConsumers;
  constexpr int kPSteps = kN / 16;
  const int tid = threadIdx.x - 128 * (group + 1);
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int t = lane % 4;
  const int group_row0 = w.m0 + 64 * group;             // first row of the group within the request
  const int row0 = group_row0 + 16 * warp + lane / 4;   // the thread's rows: row0, row0 + 8
  const uint32_t q_smem = base + L::kQ + group * L::kQGroupBytes;
  const float c = p.scale_log2;
  const int nt = w.n_tiles;

  // Keys [0, lim) are visible to a row: the request's keys, cut at the causal diagonal.
  const int off = w.kv_len - w.qo_len;
  int lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) lim[r] = p.causal ? min(w.kv_len, row0 + 8 * r + off + 1) : w.kv_len;
  const int group_lim = p.causal ? min(w.kv_len, group_row0 + off + 1) : w.kv_len;  // smallest lim of the group

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
  float s[kN / 2];
  uint32_t pf[kPSteps][4];
  OnlineSoftmax<kN> sm;
  sm.init();

  auto turn_begin = [&]() {
    if constexpr (kPingPong) named_sync(1 + group, 256);
  };
  auto turn_end = [&](bool) {
    if constexpr (kPingPong) named_arrive(1 + (group + 1) % kG, 256);
  };
  auto stage = [&](int it) { return (pipe + it) % S; };
  auto parity = [&](int it) { return static_cast<uint32_t>(((pipe + it) / S) & 1); };
  auto release = [&](int bar_index) {
    if (lane == 0) mbar_arrive(L::bar(base, bar_index));
  };
  auto issue_s = [&](int st) {
    const uint32_t k_smem = base + L::kK + st * L::kKvStageBytes;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint64_t da = smem_desc_sw128(q_smem + (kk / 4) * L::kQPanelBytes + (kk % 4) * 32, 16, 1024);
      const uint64_t db = smem_desc_sw128(k_smem + (kk / 4) * L::kKvPanelBytes + (kk % 4) * 32, 16, 1024);
      WgmmaSS<T, kN>::mma(s, da, db, kk > 0);
    }
  };
  auto issue_pv = [&](int st, bool accumulate) {
    const uint32_t v_smem = base + L::kV + st * L::kKvStageBytes;
#pragma unroll
    for (int kk = 0; kk < kPSteps; ++kk) {
      const uint64_t db = smem_desc_sw128(v_smem + kk * 2048, L::kKvPanelBytes, 1024);
      WgmmaRS<T, D>::mma(o, pf[kk], db, (accumulate || kk > 0) ? 1 : 0);
    }
  };
  auto mask = [&](int nb) {
    if ((nb + 1) * kN <= group_lim) return;  // every key of the tile visible to every row of the group
    const int key0 = nb * kN + 2 * t;
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (key0 + 8 * j + e >= lim[r]) s[4 * j + 2 * r + e] = -CUDART_INF_F;
  };
  auto rescale = [&](const float (&f)[2]) {
    if (__any_sync(0xffffffffu, f[0] != 1.f || f[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[4 * j + 0] *= f[0];
        o[4 * j + 1] *= f[0];
        o[4 * j + 2] *= f[1];
        o[4 * j + 3] *= f[1];
      }
    }
  };
  auto to_p = [&]() {
#pragma unroll
    for (int kk = 0; kk < kPSteps; ++kk) {
      pf[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
      pf[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };

  if (nt > 0) {
    mbar_wait(L::bar(base, L::kQFull + group), q_uses & 1);
    float f[2];
    if constexpr (kOverlap) {
      // turn 0: S_0
      turn_begin();
      mbar_wait(L::bar(base, L::kKFull + stage(0)), parity(0));
      wgmma_fence();
      issue_s(stage(0));
      wgmma_commit();
      turn_end(false);
      wgmma_wait<0>();
      fence_regs(s);
      release(L::kKEmpty + stage(0));
      if (nt == 1) release(L::kQEmpty + group);
      mask(nt - 1);
      sm.update(s, c, f);
      to_p();
#pragma unroll 1
      for (int it = 1; it < nt; ++it) {
        const int st = stage(it);
        const int pst = stage(it - 1);
        turn_begin();
        mbar_wait(L::bar(base, L::kKFull + st), parity(it));
        wgmma_fence();
        issue_s(st);
        wgmma_commit();
        mbar_wait(L::bar(base, L::kVFull + pst), parity(it - 1));
        issue_pv(pst, it > 1);
        wgmma_commit();
        turn_end(false);
        wgmma_wait<1>();
        fence_regs(s);
        release(L::kKEmpty + st);
        if (it == nt - 1) release(L::kQEmpty + group);
        mask(nt - 1 - it);
        sm.update(s, c, f);
        wgmma_wait<0>();
        fence_regs(o);
        fence_regs(pf);
        release(L::kVEmpty + pst);
        rescale(f);
        to_p();
      }
      // last turn: P_{nt-1} V_{nt-1}
      const int pst = stage(nt - 1);
      turn_begin();
      mbar_wait(L::bar(base, L::kVFull + pst), parity(nt - 1));
      wgmma_fence();
      issue_pv(pst, nt > 1);
      wgmma_commit();
      turn_end(true);
      wgmma_wait<0>();
      fence_regs(o);
      release(L::kVEmpty + pst);
    } else {
      // Simple order; the same n_tiles + 1 turns (S_0 alone, then P V of tile it-1 with S of tile it).
#pragma unroll 1
      for (int it = 0; it <= nt; ++it) {
        const int st = stage(it);
        const int pst = it > 0 ? stage(it - 1) : 0;
        turn_begin();
        if (it > 0) {
          mbar_wait(L::bar(base, L::kVFull + pst), parity(it - 1));
          wgmma_fence();
          issue_pv(pst, it > 1);
          wgmma_commit();
        }
        if (it < nt) {
          mbar_wait(L::bar(base, L::kKFull + st), parity(it));
          wgmma_fence();
          issue_s(st);
          wgmma_commit();
        }
        turn_end(it == nt);
        wgmma_wait<0>();
        fence_regs(o);
        fence_regs(s);
        fence_regs(pf);
        if (it > 0) release(L::kVEmpty + pst);
        if (it < nt) {
          release(L::kKEmpty + st);
          if (it == nt - 1) release(L::kQEmpty + group);
          mask(nt - 1 - it);
          sm.update(s, c, f);
          rescale(f);
          to_p();
        }
      }
    }
  }

  if (nt > 0) {
    pipe += nt;
    ++q_uses;
  }
  float inv[2], lse[2];
  sm.finish(c, inv, lse);
  if constexpr (kDirectStore)
    store_output_direct<T, D>(p, w, row0, o, inv, lse);
  else
    store_output<T, D>(p, w, group_row0, tid, q_smem, 1 + kG + group, o, inv, lse);
}

}  // namespace hopper
}  // namespace fi4j
