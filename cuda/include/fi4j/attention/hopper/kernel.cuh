// The Hopper prefill kernel: warp-specialised, TMA-fed, wgmma-based attention over a ragged batch.
// Block = 1 producer warp group + Tile::kConsumers consumer warp groups (see tile.cuh, producer.cuh,
// consumer.cuh); work items and their order: scheduler.cuh. Launch: launch.cuh.
//   kPersistent = false: one block per work item (grid num_qo_heads x slots).
//   kPersistent = true: one block per SM walks the items in rounds of gridDim.x, snake order (round k takes item
//     k * gridDim.x + blockIdx.x for even k, k * gridDim.x + gridDim.x - 1 - blockIdx.x for odd k, so that no block
//     keeps the heavier end of every round); its pipelines and the consumers' ping-pong token run on across items,
//     so one item's output overlaps the next one's loads.
// The item scan (scheduler.cuh) is warp-collective: the producer's whole first warp runs it, lane 0 issues copies.
#pragma once

#include "fi4j/attention/hopper/consumer.cuh"
#include "fi4j/attention/hopper/producer.cuh"
#include "fi4j/attention/hopper/ptx.cuh"
#include "fi4j/attention/hopper/scheduler.cuh"
#include "fi4j/attention/hopper/tile.cuh"

namespace fi4j {
namespace hopper {

template <typename T, class Tile, bool kOverlap, bool kPingPong, bool kPersistent>
__global__ void __launch_bounds__(Tile::kThreads, 1)
    prefill_sm90_kernel(const __grid_constant__ PrefillSm90KernelParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = SmemLayout<Tile>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;

  BlockWork w;
  int round = 0;
  const int heads = p.num_qo_heads;
  auto item_of = [&](int k) {
    return k * static_cast<int>(gridDim.x) +
           ((k & 1) ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x));
  };
  if constexpr (kPersistent) {
    const int item = item_of(0);
    if (!make_block_work<Tile::kRows, Tile::kN>(p, item % heads, item / heads, w)) return;  // block-uniform
  } else {
    if (!make_block_work<Tile::kRows, Tile::kN>(p, blockIdx.x, blockIdx.y, w)) return;
  }

  if (threadIdx.x == 0) {
#pragma unroll
    for (int g = 0; g < Tile::kConsumers; ++g) {
      mbar_init(L::bar(base, L::kQFull + g), 1);
      mbar_init(L::bar(base, L::kQEmpty + g), 4);  // one arrival per warp of the group
    }
#pragma unroll
    for (int s = 0; s < Tile::kStages; ++s) {
      mbar_init(L::bar(base, L::kKFull + s), 1);
      mbar_init(L::bar(base, L::kVFull + s), 1);
      mbar_init(L::bar(base, L::kKEmpty + s), 4 * Tile::kConsumers);  // one arrival per consumer warp
      mbar_init(L::bar(base, L::kVEmpty + s), 4 * Tile::kConsumers);
    }
    mbar_init_fence();
    tma_prefetch_map(&p.tma_q);
    tma_prefetch_map(&p.tma_k);
    tma_prefetch_map(&p.tma_v);
  }
  __syncthreads();

  int pipe = 0, q_uses = 0;
  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    regs_release<Tile::kProducerRegs>();
    if (threadIdx.x < 32) {  // all 32 lanes: the item scan is warp-collective
      while (true) {
        if (threadIdx.x == 0) producer_item<Tile>(p, w, base, pipe, q_uses);
        __syncwarp();
        if constexpr (!kPersistent) break;
        const int item = item_of(++round);
        if (!make_block_work<Tile::kRows, Tile::kN>(p, item % heads, item / heads, w)) break;
      }
      if (threadIdx.x == 0) producer_drain<Tile>(base, pipe, q_uses);
    }
  } else {
    regs_acquire<Tile::kConsumerRegs>();
    const int group = wg - 1;
    pingpong_start<Tile, kPingPong>(group);
    while (true) {
      consumer_item<T, Tile, kOverlap, kPingPong, kPersistent>(p, w, base, group, pipe, q_uses);
      if constexpr (!kPersistent) break;
      const int item = item_of(++round);
      if (!make_block_work<Tile::kRows, Tile::kN>(p, item % heads, item / heads, w)) break;
    }
    pingpong_end<Tile, kPingPong>(group);
  }
#endif
}

}  // namespace hopper
}  // namespace fi4j
