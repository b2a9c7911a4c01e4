// Tile shapes of the Hopper prefill kernel as types, and the shared-memory layout they imply.
//
// A block owns kRows = 64 * kConsumers query rows of one (request, query head) and streams the request's K/V in
// tiles of kN keys through kStages-deep mbarrier pipelines. Warp group 0 is the producer (one thread issues all
// bulk tensor copies; its register budget is lowered to kProducerRegs); warp groups 1..kConsumers each own 64
// query rows (S = Q K^T and O += P V on wgmma, online softmax), their budget raised to kConsumerRegs.
// Register file: 128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= 65536.
#pragma once

#include <stdint.h>

namespace fi4j {
namespace hopper {

template <int D_, int kConsumers_, int kN_, int kStages_>
struct TileShape {
  static constexpr int D = D_;
  static constexpr int kConsumers = kConsumers_;
  static constexpr int kN = kN_;
  static constexpr int kStages = kStages_;
  static constexpr int kRows = 64 * kConsumers;
  static constexpr int kThreads = 128 * (kConsumers + 1);
  static constexpr int kProducerRegs = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumers == 2 ? 240 : 160;
  static_assert(D == 64 || D == 128 || D == 256, "head dims 64, 128, 256");
  static_assert(kConsumers == 2 || kConsumers == 3, "two or three consumer warp groups");
  static_assert(kN % 16 == 0 && kN >= 64 && kN <= 192, "kN: a multiple of 16 in [64, 192]");
  static_assert(kStages >= 2, "at least two pipeline stages");
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= 65536, "register file");
  static constexpr int kPanels = D / 64;  // 64-column panels of 128-byte rows (the swizzle span)
};

/// The default shape per head dim (FlashAttention-3's choices on the H100 as the starting point).
template <int D>
struct DefaultTile;
template <>
struct DefaultTile<64> {
  using type = TileShape<64, 3, 128, 3>;
};
template <>
struct DefaultTile<128> {
  using type = TileShape<128, 2, 128, 2>;
};
template <>
struct DefaultTile<256> {
  using type = TileShape<256, 2, 80, 2>;
};

/// Byte offsets from a 1024-byte aligned base. Q: per consumer group kPanels panels of [64 rows][128 B];
/// K and V: per stage kPanels panels of [kN rows][128 B]; then the mbarriers.
template <class Tile>
struct SmemLayout {
  static constexpr int kQPanelBytes = 64 * 128;
  static constexpr int kQGroupBytes = Tile::kPanels * kQPanelBytes;
  static constexpr int kKvPanelBytes = Tile::kN * 128;
  static constexpr int kKvStageBytes = Tile::kPanels * kKvPanelBytes;
  static constexpr int kQ = 0;
  static constexpr int kK = kQ + Tile::kConsumers * kQGroupBytes;
  static constexpr int kV = kK + Tile::kStages * kKvStageBytes;
  static constexpr int kBars = kV + Tile::kStages * kKvStageBytes;
  // barrier indices (8 bytes each)
  static constexpr int kQFull = 0;                               // [kConsumers]
  static constexpr int kQEmpty = kQFull + Tile::kConsumers;      // [kConsumers]
  static constexpr int kKFull = kQEmpty + Tile::kConsumers;      // [kStages]
  static constexpr int kVFull = kKFull + Tile::kStages;          // [kStages]
  static constexpr int kKEmpty = kVFull + Tile::kStages;         // [kStages]
  static constexpr int kVEmpty = kKEmpty + Tile::kStages;        // [kStages]
  static constexpr int kNumBars = kVEmpty + Tile::kStages;
  static constexpr int kBytes = kBars + 8 * kNumBars;
  static constexpr int kAllocBytes = kBytes + 1024;  // slack to align the dynamic base to 1024
  static_assert(kKvPanelBytes % 1024 == 0, "panels must keep 1024-byte alignment");
  static_assert(kAllocBytes <= 227 * 1024, "shared memory per block");

  __device__ static uint32_t bar(uint32_t base, int index) { return base + kBars + 8 * index; }
};

}  // namespace hopper
}  // namespace fi4j
