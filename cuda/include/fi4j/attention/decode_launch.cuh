// Internal launch plumbing of batch decode, shared by the kernel translation units (decode.cu, decode_tc.cu):
// the per-path launchers of the instantiated configurations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "fi4j/attention/aot_dispatch.cuh"
#include "fi4j/attention/launch.h"
#include "fi4j/attention/params.h"
#include "fi4j/common/launch_util.h"

namespace fi4j {
namespace decode {

/// The launcher of one CUDA-core kernel instantiation (decode.cu), or nullptr when it has none.
DecodeLaunchFn cuda_cores_launcher(DType dtype, int head_dim, bool soft_cap, bool rope);

/// The launcher of one tensor-core kernel instantiation (decode_tc.cu), or nullptr when it has none.
DecodeLaunchFn tensor_cores_launcher(DType dtype, int head_dim, bool soft_cap, bool rope);

/// Launches the CUDA-core kernel over `items` blocks x num_kv_heads (decode.cu).
cudaError_t launch_cuda_cores(const DecodeParams& p, int items, cudaStream_t stream);

/// Launches the tensor-core kernel over `items` blocks x num_kv_heads (decode_tc.cu).
cudaError_t launch_tensor_cores(const DecodeParams& p, int items, cudaStream_t stream);

}  // namespace decode
}  // namespace fi4j
