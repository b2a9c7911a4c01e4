// Which kernel serves a decode configuration: the one place that decides between the CPU reference, the
// ahead-of-time (AOT) kernels and run-time compilation (JIT), so that validation, isSupported, warm-up and the
// launch agree. Pure host logic (no CUDA, no NVRTC), tested on CI.
#pragma once

#include <string>

#include "core/route.h"

namespace fi4j {

/// Head dims with ahead-of-time CUDA decode kernels (both paths): 64, 128, 256.
bool decode_head_dim_aot(int head_dim);
/// Head dims the CUDA-core kernel is built for at run time: multiples of 16 from 16 to 256, less the AOT set.
bool decode_head_dim_jit(int head_dim);

struct DecodeRouteDecision {
  Route route = Route::Unsupported;
  std::string reason;  // why not, when Unsupported: names the head dim and, for a JIT dim, what to install
};

/// The route of a decode configuration with a valid attention dtype (F16/BF16). cuda: the CUDA backend (else the
/// CPU reference, which runs every head dim its own check accepts). path: fi4j_decode_path (AUTO, CUDA_CORES or
/// TENSOR_CORES); run-time compiled kernels exist for the CUDA-core path only, so TENSOR_CORES at a JIT head dim
/// is unsupported. jit_unavailable_reason: "" when NVRTC is usable, else why not.
DecodeRouteDecision route_decode(bool cuda, int head_dim, int path, const std::string& jit_unavailable_reason);

/// The route for this process (NVRTC looked up on first use); throws Error(FI4J_ERR_UNSUPPORTED) with the
/// reason when unsupported.
Route require_decode_route(bool cuda, int head_dim, int path);

}  // namespace fi4j
