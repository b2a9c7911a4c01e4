// The ahead-of-time set of the attention kernels: the head dims that decode (both paths) and prefill are
// instantiated for in cuda/kernels/attention, and the rule of the head dims compiled at run time. The one list: the
// launchers' compile-time dispatch, the registry's routes (cpp/src/attention/kernel_table.cpp) and, through
// fi4j_attention_aot_head_dims, the Java API read it. Plain C++, no CUDA extensions (host and NVRTC alike).
#pragma once

/// X(head_dim) for every ahead-of-time head dim, in increasing order.
#define FI4J_ATTENTION_AOT_HEAD_DIMS(X) X(64) X(128) X(256)

namespace fi4j {
namespace attention_kernels {

#define FI4J_ATTENTION_AOT_COUNT_ONE(D) +1
/// Number of ahead-of-time head dims.
constexpr int kNumAotHeadDims = 0 FI4J_ATTENTION_AOT_HEAD_DIMS(FI4J_ATTENTION_AOT_COUNT_ONE);
#undef FI4J_ATTENTION_AOT_COUNT_ONE

#define FI4J_ATTENTION_AOT_ENTRY(D) D,
/// The ahead-of-time head dims as an array.
constexpr int kAotHeadDims[kNumAotHeadDims] = {FI4J_ATTENTION_AOT_HEAD_DIMS(FI4J_ATTENTION_AOT_ENTRY)};
#undef FI4J_ATTENTION_AOT_ENTRY

/// Whether head_dim has ahead-of-time decode and prefill kernels.
constexpr bool head_dim_aot(int head_dim) {
  for (int d : kAotHeadDims)
    if (d == head_dim) return true;
  return false;
}

/// Whether a kernel can be generated for head_dim at run time: multiples of 16 from 16 to 256 (16-byte vector
/// loads of fp16/bf16 and whole mma k-steps), the ahead-of-time ones included.
constexpr bool head_dim_generated(int head_dim) { return head_dim >= 16 && head_dim <= 256 && head_dim % 16 == 0; }

}  // namespace attention_kernels
}  // namespace fi4j
