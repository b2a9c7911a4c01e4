// Which kernel serves a prefill configuration: the one place that decides between the CPU reference, the
// ahead-of-time (AOT) tensor-core kernels and run-time compilation (JIT), so that validation,
// fi4j_prefill_supported, isSupported, warm-up and the launch agree. Pure host logic (no CUDA, no NVRTC), tested
// on CI.
#pragma once

#include <string>

#include "core/route.h"

namespace fi4j {

/// Head dims with ahead-of-time CUDA prefill kernels: 64, 128, 256.
bool prefill_head_dim_aot(int head_dim);
/// Head dims the kernel is built for at run time: multiples of 16 from 16 to 256, less the AOT set.
bool prefill_head_dim_jit(int head_dim);

struct PrefillRouteDecision {
  Route route = Route::Unsupported;
  std::string reason;  // why not, when Unsupported: names the head dim and, for a JIT dim, what to install
};

/// The route of a prefill configuration with a valid attention dtype (F16/BF16). cuda: the CUDA backend (else the
/// CPU reference, which runs every head dim its own check accepts). jit_unavailable_reason: "" when NVRTC is
/// usable, else why not.
PrefillRouteDecision route_prefill(bool cuda, int head_dim, const std::string& jit_unavailable_reason);

/// The route for this process (NVRTC looked up only for a JIT head dim); throws Error(FI4J_ERR_UNSUPPORTED) with
/// the reason when unsupported.
Route require_prefill_route(bool cuda, int head_dim);

/// require_prefill_route for a CUDA device, then the shared memory of the block that cta_tile_q selects (0: the
/// largest this configuration uses) against the device's per-block limit; throws Error(FI4J_ERR_UNSUPPORTED)
/// naming what does not fit. smem_limit: the device's opt-in limit (smem_optin_limit) when the caller has read it,
/// else -1 to read it here. Defined in prefill_ops.cpp.
Route check_cuda_prefill(int device, int head_dim, bool rope, int cta_tile_q, int smem_limit = -1);

}  // namespace fi4j
