// The Hopper prefill kernel: warp-specialised, TMA-fed, wgmma-based attention over a ragged batch.
// Block = 1 producer warp group + Tile::kConsumers consumer warp groups (see tile.cuh, producer.cuh,
// consumer.cuh); grid and block work: scheduler.cuh. Launch: launch.cuh.
#pragma once

#include "fi4j/attention/hopper/consumer.cuh"
#include "fi4j/attention/hopper/producer.cuh"
#include "fi4j/attention/hopper/ptx.cuh"
#include "fi4j/attention/hopper/scheduler.cuh"
#include "fi4j/attention/hopper/tile.cuh"

namespace fi4j {
namespace hopper {

template <typename T, class Tile, bool kOverlap, bool kPingPong>
__global__ void __launch_bounds__(Tile::kThreads, 1)
    prefill_sm90_kernel(const __grid_constant__ PrefillSm90KernelParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = SmemLayout<Tile>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;

  BlockWork w;
  if (!make_block_work<Tile::kRows, Tile::kN>(p, w)) return;  // block-uniform

  if (threadIdx.x == 0) {
#pragma unroll
    for (int g = 0; g < Tile::kConsumers; ++g) mbar_init(L::bar(base, L::kQFull + g), 1);
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

  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    regs_release<Tile::kProducerRegs>();
    if (threadIdx.x == 0) producer_loop<Tile>(p, w, base);
  } else {
    regs_acquire<Tile::kConsumerRegs>();
    consumer_loop<T, Tile, kOverlap, kPingPong>(p, w, base, wg - 1);
  }
#endif
}

}  // namespace hopper
}  // namespace fi4j
