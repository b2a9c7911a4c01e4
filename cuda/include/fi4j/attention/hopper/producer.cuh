// The producer warp group's work: one thread issues every bulk tensor copy of the block.
//   Q: per consumer group its 64 rows, kPanels copies of [64 rows][64 columns], completing on q_full[group], once
//      the group has released the previous item's Q (q_empty[group], one arrival per consumer warp).
//   K, V: for the key tiles in the consumers' order (last first), into stage it % kStages after the consumers
//      released it (k_empty / v_empty, one arrival per consumer warp), completing on k_full / v_full.
// The pipeline position (`pipe`: tiles issued so far) and the Q use count (`q_uses`: items with keys so far) run
// on across the items of a persistent block, so the next item's Q and first tiles load while the consumers are
// still finishing the last one. At the end, drain() waits until the consumers have released every stage and Q,
// so no copy is in flight when the producer retires.
#pragma once

#include "fi4j/attention/hopper/ptx.cuh"
#include "fi4j/attention/hopper/scheduler.cuh"
#include "fi4j/attention/hopper/tile.cuh"

namespace fi4j {
namespace hopper {

template <class Tile>
__device__ __forceinline__ void producer_item(const PrefillSm90KernelParams& p, const BlockWork& w, uint32_t base,
                                              int& pipe, int& q_uses) {
  using L = SmemLayout<Tile>;
  constexpr int kN = Tile::kN;
  constexpr int S = Tile::kStages;
  constexpr uint32_t kQBytes = 64 * Tile::D * 2;
  constexpr uint32_t kKvBytes = kN * Tile::D * 2;
  const int nt = w.n_tiles;
  if (nt == 0) return;

#pragma unroll
  for (int g = 0; g < Tile::kConsumers; ++g) {
    mbar_wait(L::bar(base, L::kQEmpty + g), (q_uses & 1) ^ 1);
    const uint32_t bar = L::bar(base, L::kQFull + g);
    mbar_arrive_expect_tx(bar, kQBytes);
#pragma unroll
    for (int c = 0; c < Tile::kPanels; ++c)
      tma_load_3d(base + L::kQ + g * L::kQGroupBytes + c * L::kQPanelBytes, &p.tma_q, bar, 64 * c, w.head,
                  w.q_start + w.m0 + 64 * g);
  }
  ++q_uses;

#pragma unroll 1
  for (int it = 0; it < nt; ++it) {
    const int nb = nt - 1 - it;
    const int st = (pipe + it) % S;
    const uint32_t ph = ((pipe + it) / S) & 1;
    const int row = w.kv_start + nb * kN;
    {
      mbar_wait(L::bar(base, L::kKEmpty + st), ph ^ 1);
      const uint32_t bar = L::bar(base, L::kKFull + st);
      mbar_arrive_expect_tx(bar, kKvBytes);
#pragma unroll
      for (int c = 0; c < Tile::kPanels; ++c)
        tma_load_3d(base + L::kK + st * L::kKvStageBytes + c * L::kKvPanelBytes, &p.tma_k, bar, 64 * c, w.kv_head,
                    row);
    }
    {
      mbar_wait(L::bar(base, L::kVEmpty + st), ph ^ 1);
      const uint32_t bar = L::bar(base, L::kVFull + st);
      mbar_arrive_expect_tx(bar, kKvBytes);
#pragma unroll
      for (int c = 0; c < Tile::kPanels; ++c)
        tma_load_3d(base + L::kV + st * L::kKvStageBytes + c * L::kKvPanelBytes, &p.tma_v, bar, 64 * c, w.kv_head,
                    row);
    }
  }
  pipe += nt;
}

/// Waits for the release of the last use of every stage and of each group's Q.
template <class Tile>
__device__ __forceinline__ void producer_drain(uint32_t base, int pipe, int q_uses) {
  using L = SmemLayout<Tile>;
  constexpr int S = Tile::kStages;
#pragma unroll 1
  for (int it = pipe; it < pipe + S; ++it) {
    const int st = it % S;
    const uint32_t ph = (it / S) & 1;
    mbar_wait(L::bar(base, L::kKEmpty + st), ph ^ 1);
    mbar_wait(L::bar(base, L::kVEmpty + st), ph ^ 1);
  }
#pragma unroll
  for (int g = 0; g < Tile::kConsumers; ++g) mbar_wait(L::bar(base, L::kQEmpty + g), (q_uses & 1) ^ 1);
}

}  // namespace hopper
}  // namespace fi4j
