// Compile-time selection over the ahead-of-time attention configurations, shared by the kernel translation units
// (decode.cu, decode_tc.cu, prefill.cu). The registry calls these once per configuration, when a plan resolves its
// kernel, to get the launcher of one instantiation; run() then calls that launcher directly.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "fi4j/attention/kernel_set.h"
#include "fi4j/common/dtype.h"

namespace fi4j {

/// Carries a type as a value, for generic lambdas.
template <typename T>
struct TypeTag {
  using type = T;
};

/// f(TypeTag<__half>) or f(TypeTag<__nv_bfloat16>); `none` for any other dtype.
template <typename R, typename F>
R select_dtype(DType dtype, R none, F&& f) {
  switch (dtype) {
    case DType::F16:
      return f(TypeTag<__half>{});
    case DType::BF16:
      return f(TypeTag<__nv_bfloat16>{});
    default:
      return none;
  }
}

/// f(integral_constant<int, D>) for an ahead-of-time head dim D (kernel_set.h); `none` for any other.
template <typename R, typename F>
R select_aot_head_dim(int head_dim, R none, F&& f) {
  switch (head_dim) {
#define FI4J_SELECT_HEAD_DIM_CASE(D) \
  case D:                            \
    return f(std::integral_constant<int, D>{});
    FI4J_ATTENTION_AOT_HEAD_DIMS(FI4J_SELECT_HEAD_DIM_CASE)
#undef FI4J_SELECT_HEAD_DIM_CASE
    default:
      return none;
  }
}

/// f(std::true_type) or f(std::false_type).
template <typename R, typename F>
R select_flag(bool flag, F&& f) {
  return flag ? f(std::true_type{}) : f(std::false_type{});
}

/// f(TypeTag<T>, integral_constant<int, D>, bool_constant<soft cap>, bool_constant<rope>) for an ahead-of-time
/// configuration; `none` when it has no kernel.
template <typename R, typename F>
R select_attention_config(DType dtype, int head_dim, bool soft_cap, bool rope, R none, F&& f) {
  return select_dtype<R>(dtype, none, [&](auto t) {
    return select_aot_head_dim<R>(head_dim, none, [&](auto d) {
      return select_flag<R>(soft_cap, [&](auto cap) { return select_flag<R>(rope, [&](auto r) { return f(t, d, cap, r); }); });
    });
  });
}

}  // namespace fi4j
