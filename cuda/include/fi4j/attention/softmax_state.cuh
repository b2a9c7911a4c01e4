// Online-softmax state in the log2 domain: logits arrive prescaled by log2(e), so every exponential is an exp2f
// and the log-sum-exp comes out in base 2, as the spec requires.
#pragma once

#include "fi4j/common/vec.cuh"

namespace fi4j {

/// Running softmax over a stream of log2-domain logits s_j, for one query row and N output values:
/// m = max s_j, d = sum 2^(s_j - m), o = sum 2^(s_j - m) * v_j. The empty state (m = -inf, d = 0, o = 0) is
/// neutral for merge and never produces NaN.
///
/// Non-finite logits propagate without a test in the loop: fmaxf drops a NaN logit from m, but its weight
/// 2^(NaN - base) is NaN, so d and o turn NaN, and NaN stays in them (every later step is d * scale + p or
/// a * d + b * d2, and 0 * NaN is NaN); a +inf logit makes m = +inf and its weight 2^(inf - inf) NaN. Finalisers
/// therefore test d == 0 for "nothing seen" (output 0, LSE -inf) and let a NaN d through (o / d and m + log2 d are
/// NaN), as every reference softmax does. A NaN in V reaches only o. Masked keys arrive as -inf (weight exactly 0)
/// and their V must be finite (zero-filled) wherever the caller multiplies the weight in, since 0 * NaN is NaN.
template <int N>
struct SoftmaxState {
  float m;
  float d;
  float o[N];

  /// Resets to the empty state.
  __device__ __forceinline__ void init() {
    m = neg_inf();
    d = 0.f;
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] = 0.f;
  }

  /// Takes R new logits (masked ones are -inf): rescales the running sums to the new maximum and returns each
  /// logit's weight 2^(s - m) in p. The caller then adds p[r] * v_r to o.
  template <int R>
  __device__ __forceinline__ void update(const float (&s)[R], float (&p)[R]) {
    float m_new = m;
#pragma unroll
    for (int r = 0; r < R; ++r) m_new = fmaxf(m_new, s[r]);
    // Everything seen so far is masked: subtract 0 instead of -inf so that exp2 sees -inf, not NaN.
    const float base = (m_new == neg_inf()) ? 0.f : m_new;
    const float scale = exp2f(m - base);
    d *= scale;
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] *= scale;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      p[r] = exp2f(s[r] - base);
      d += p[r];
    }
    m = m_new;
  }

  /// Folds in the state (m2, d2, o2) of a disjoint set of keys.
  __device__ __forceinline__ void merge(float m2, float d2, const float (&o2)[N]) {
    const float m_new = fmaxf(m, m2);
    const float base = (m_new == neg_inf()) ? 0.f : m_new;
    const float a = exp2f(m - base);
    const float b = exp2f(m2 - base);
    d = a * d + b * d2;
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] = a * o[i] + b * o2[i];
    m = m_new;
  }

  /// Folds in the state held by the lane `lane_mask` away (xor) in the same warp; all lanes must call it.
  __device__ __forceinline__ void merge_from_lane(int lane_mask) {
    float o2[N];
#pragma unroll
    for (int i = 0; i < N; ++i) o2[i] = __shfl_xor_sync(0xffffffffu, o[i], lane_mask);
    const float m2 = __shfl_xor_sync(0xffffffffu, m, lane_mask);
    const float d2 = __shfl_xor_sync(0xffffffffu, d, lane_mask);
    merge(m2, d2, o2);
  }
};

}  // namespace fi4j
