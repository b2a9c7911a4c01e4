#include "attention/prefill_plan.h"

#include <algorithm>
#include <cstring>

#include "fi4j/attention/prefill_params.h"

namespace fi4j {

namespace {
struct TileRange {
  int request, tile, lo, hi;
};
}  // namespace

PrefillSplitPlan plan_prefill_split(const PrefillSplitInput& in) {
  PrefillSplitPlan none;
  if (in.batch_size <= 0 || in.num_sms <= 0 || in.rows_tile <= 0 || in.group <= 0) return none;
  std::vector<TileRange> tiles;
  int64_t total_keys = 0;
  for (int b = 0; b < in.batch_size; ++b) {
    const int64_t qo = in.qo_indptr[b + 1] - in.qo_indptr[b];
    const int64_t kv = in.kv_len[b];
    const int64_t rows = qo * in.group;
    const int64_t delta = kv - qo;
    for (int64_t r0 = 0; r0 < rows; r0 += in.rows_tile) {
      const int64_t r1 = std::min<int64_t>(r0 + in.rows_tile, rows);
      const int64_t pos_min = r0 / in.group + delta, pos_max = (r1 - 1) / in.group + delta;
      int64_t lo = in.window_left >= 0 ? std::max<int64_t>(0, pos_min - in.window_left) : 0;
      int64_t hi = in.causal ? std::min<int64_t>(kv, pos_max + 1) : kv;
      lo = std::min<int64_t>(lo, kv);
      if (hi < lo) hi = lo;
      tiles.push_back({b, static_cast<int>(r0 / in.rows_tile), static_cast<int>(lo), static_cast<int>(hi)});
      total_keys += hi - lo;
    }
  }
  const int64_t target = static_cast<int64_t>(in.num_sms) * in.blocks_per_sm;
  const int64_t base = static_cast<int64_t>(tiles.size()) * in.num_kv_heads;
  if (tiles.empty() || base >= target) return none;
  // Chunk length so that the items x KV heads come near one wave of resident blocks; whole 64-key tiles.
  const int64_t want_items = (target + in.num_kv_heads - 1) / in.num_kv_heads;
  int64_t chunk = std::max<int64_t>(kPrefillMinChunk, (total_keys + want_items - 1) / want_items);
  chunk = (chunk + 63) / 64 * 64;
  for (; chunk < (int64_t{1} << 31); chunk *= 2) {
    PrefillSplitPlan plan;
    for (const TileRange& t : tiles) {
      plan.group_indptr.push_back(static_cast<int32_t>(plan.request.size()));
      const int64_t n = std::max<int64_t>(1, (t.hi - t.lo + chunk - 1) / chunk);
      for (int64_t c = 0; c < n; ++c) {
        plan.request.push_back(t.request);
        plan.tile.push_back(t.tile);
        plan.kv_lo.push_back(static_cast<int32_t>(t.lo + c * chunk));
        plan.kv_hi.push_back(static_cast<int32_t>(std::min<int64_t>(t.hi, t.lo + (c + 1) * chunk)));
      }
    }
    plan.group_indptr.push_back(static_cast<int32_t>(plan.request.size()));
    if (plan.num_work() == static_cast<int>(tiles.size())) return none;  // nothing split
    plan.bytes = prefill_split_layout(plan.num_work(), in.num_kv_heads, in.rows_tile, in.head_dim).total;
    if (plan.bytes <= in.workspace_bytes) return plan;
  }
  return none;
}

std::vector<unsigned char> prefill_split_image(const PrefillSplitPlan& plan, int num_kv_heads, int rows_tile,
                                               int head_dim) {
  const PrefillSplitLayout l = prefill_split_layout(plan.num_work(), num_kv_heads, rows_tile, head_dim);
  std::vector<unsigned char> image(static_cast<size_t>(l.partial_o), 0);
  const int32_t groups = plan.num_groups();
  std::memcpy(image.data(), &groups, sizeof groups);
  auto put = [&](int64_t offset, const std::vector<int32_t>& v) {
    if (!v.empty()) std::memcpy(image.data() + offset, v.data(), v.size() * sizeof(int32_t));
  };
  put(l.work_request, plan.request);
  put(l.work_tile, plan.tile);
  put(l.work_kv_lo, plan.kv_lo);
  put(l.work_kv_hi, plan.kv_hi);
  put(l.group_indptr, plan.group_indptr);
  return image;
}

}  // namespace fi4j
