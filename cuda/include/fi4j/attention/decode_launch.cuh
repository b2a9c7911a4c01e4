// Internal launch plumbing of batch decode, shared by the kernel translation units (decode.cu, decode_tc.cu):
// compile-time dispatch over the instantiated configurations and the per-path launchers behind
// launch_batch_decode.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <type_traits>

#include "fi4j/attention/params.h"
#include "fi4j/common/launch_util.h"

namespace fi4j {
namespace decode {

/// Carries a type as a value, for the generic lambdas of dispatch_config.
template <typename T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>, integral_constant<int, D>, bool_constant<soft cap>, bool_constant<rope>) for the
/// configuration of p, or returns cudaErrorNotSupported when it has no kernel (dtype other than F16/BF16, head
/// dim other than 64/128/256, an unknown positional encoding).
template <typename F>
cudaError_t dispatch_config(const DecodeParams& p, F&& f) {
  if (p.variant.pos_encoding != PosEncoding::None && p.variant.pos_encoding != PosEncoding::RopeLlama)
    return cudaErrorNotSupported;
  const bool cap = p.variant.logits_soft_cap > 0.f;
  const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  auto variants = [&](auto t, auto d) -> cudaError_t {
    using Cap = std::true_type;
    using NoCap = std::false_type;
    if (cap) return rope ? f(t, d, Cap{}, Cap{}) : f(t, d, Cap{}, NoCap{});
    return rope ? f(t, d, NoCap{}, Cap{}) : f(t, d, NoCap{}, NoCap{});
  };
  auto dims = [&](auto t) -> cudaError_t {
    switch (p.kv.head_dim) {
      case 64:
        return variants(t, std::integral_constant<int, 64>{});
      case 128:
        return variants(t, std::integral_constant<int, 128>{});
      case 256:
        return variants(t, std::integral_constant<int, 256>{});
      default:
        return cudaErrorNotSupported;
    }
  };
  switch (p.dtype) {
    case DType::F16:
      return dims(TypeTag<__half>{});
    case DType::BF16:
      return dims(TypeTag<__nv_bfloat16>{});
    default:
      return cudaErrorNotSupported;
  }
}

/// Launches the CUDA-core kernel over `items` blocks x num_kv_heads (decode.cu).
cudaError_t launch_cuda_cores(const DecodeParams& p, int items, cudaStream_t stream);

/// Launches the tensor-core kernel over `items` blocks x num_kv_heads (decode_tc.cu).
cudaError_t launch_tensor_cores(const DecodeParams& p, int items, cudaStream_t stream);

}  // namespace decode
}  // namespace fi4j
