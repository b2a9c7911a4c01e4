// Online softmax in base 2 over wgmma accumulator fragments. A consumer thread holds two query rows (r = 0: row g,
// r = 1: row g + 8 of its warp's 16) and, of a kN-key tile, columns 8j + 2t + {0,1}: s[4j + 2r + e]. The four
// lanes of a quad (same g) together hold whole rows, so row reductions are two xor-shuffles.
//
// The running max m is kept in raw logits (q.k); probabilities are p = 2^(s * c - m * c) with c = sm_scale *
// log2(e) (one FFMA and one ex2 per element, c > 0). The row sum l is kept per thread (a quad's partial sums
// share the same scale) and reduced once at the end. A row that has seen only masked keys has m = -inf; it uses
// 0 in place of m * c, so its p are exactly 0 and nothing becomes NaN.
#pragma once

#include <math_constants.h>

#include "fi4j/attention/hopper/ptx.cuh"

namespace fi4j {
namespace hopper {

template <int kN>
struct OnlineSoftmax {
  static constexpr int kBlocks = kN / 8;  // n8 blocks of the fragment
  float m[2];
  float l[2];

  __device__ __forceinline__ void init() {
    m[0] = m[1] = -CUDART_INF_F;
    l[0] = l[1] = 0.f;
  }

  /// Turns logits s into probabilities against the updated max; returns in scale[r] the factor by which the
  /// output accumulated so far must be multiplied (1 exactly when the row max did not move).
  __device__ __forceinline__ void update(float (&s)[kN / 2], float c, float (&scale)[2]) {
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int j = 0; j < kBlocks; ++j) {
      mx[0] = fmaxf(mx[0], fmaxf(s[4 * j + 0], s[4 * j + 1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[4 * j + 2], s[4 * j + 3]));
    }
    float mc[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      scale[r] = mx[r] == m[r] ? 1.f : ex2((m[r] - mx[r]) * c);
      mc[r] = mx[r] == -CUDART_INF_F ? 0.f : mx[r] * c;
      m[r] = mx[r];
    }
    float sum[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < kBlocks; ++j) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[4 * j + 2 * r + e];
          x = ex2(fmaf(x, c, -mc[r]));
          sum[r] += x;
        }
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) l[r] = l[r] * scale[r] + sum[r];
  }

  /// Final row sums over the quad; returns 1 / l (0 for a row that saw nothing) and the base-2 LSE
  /// (m * c + log2 l, -inf for a row that saw nothing).
  __device__ __forceinline__ void finish(float c, float (&inv)[2], float (&lse)[2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float x = l[r];
      x += __shfl_xor_sync(0xffffffffu, x, 1);
      x += __shfl_xor_sync(0xffffffffu, x, 2);
      const bool any = x > 0.f;
      inv[r] = any ? 1.f / x : 0.f;
      lse[r] = any ? m[r] * c + log2f(x) : -CUDART_INF_F;
    }
  }
};

}  // namespace hopper
}  // namespace fi4j
