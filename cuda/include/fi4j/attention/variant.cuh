// Attention variants as compile-time traits: logits soft cap and Llama rotate-half RoPE.
// The per-query scale (sm_scale, log2 e, 1/cap) is folded into q once, so the per-key work is a dot product plus,
// with a soft cap, one tanh.
#pragma once

#include "fi4j/attention/params.h"
#include "fi4j/common/vec.cuh"

namespace fi4j {

/// log2(e): logits are carried as x * log2(e) so that exp(x) = exp2f(x * log2(e)).
constexpr float kLog2e = 1.4426950408889634f;

/// Logit transform selected at compile time. query_scale() is multiplied into q; logit(dot) maps the dot product
/// of the scaled q with k to the log2-domain logit x * log2(e).
template <bool kSoftCap>
struct LogitsTransform;

template <>
struct LogitsTransform<false> {
  /// x = (q.k) * sm_scale, so q carries sm_scale * log2(e) and the dot product already is the log2-domain logit.
  __device__ __forceinline__ explicit LogitsTransform(const AttentionVariant&) {}
  static __device__ __forceinline__ float query_scale(const AttentionVariant& v) { return v.sm_scale * kLog2e; }
  __device__ __forceinline__ float logit(float dot) const { return dot; }
};

template <>
struct LogitsTransform<true> {
  float cap_log2e;
  /// x = cap * tanh((q.k) * sm_scale / cap): q carries sm_scale / cap, the cap and log2(e) are applied after tanh.
  __device__ __forceinline__ explicit LogitsTransform(const AttentionVariant& v)
      : cap_log2e(v.logits_soft_cap * kLog2e) {}
  static __device__ __forceinline__ float query_scale(const AttentionVariant& v) {
    return v.sm_scale / v.logits_soft_cap;
  }
  // Accurate tanhf: tanh.approx's ~2^-11 relative error times a cap of 30 would move logits by ~1e-2.
  __device__ __forceinline__ float logit(float dot) const { return cap_log2e * tanhf(dot); }
};

/// Rotation frequency of RoPE dimension pair f (0 <= f < D/2): rope_rcp_scale * rope_theta^(-2f/D).
/// Accurate powf: the error of the frequency is multiplied by positions of 32K and more.
__device__ __forceinline__ float rope_frequency(const AttentionVariant& v, int f, int head_dim) {
  return v.rope_rcp_scale * powf(v.rope_theta, -2.f * static_cast<float>(f) / static_cast<float>(head_dim));
}

/// Rotates the pair (x_f, x_{f+D/2}) by angle pos * freq in place (rotate-half RoPE). Accurate sincosf: the fast
/// __sinf loses absolute accuracy in proportion to the angle, which reaches thousands of radians.
__device__ __forceinline__ void rope_rotate(float& lo, float& hi, float pos, float freq) {
  float s, c;
  sincosf(pos * freq, &s, &c);
  const float l = lo;
  lo = l * c - hi * s;
  hi = hi * c + l * s;
}

}  // namespace fi4j
