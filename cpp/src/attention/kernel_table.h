// The attention family's table of the kernel registry: which decode and prefill configurations run where (the CPU
// reference, an ahead-of-time kernel, a run-time compiled one, or nowhere and why), the one place that decides it.
// The head-dim sets come from fi4j/attention/kernel_set.h; kernel_entries.h turns a route into a registry entry.
// Pure host logic (no CUDA, no NVRTC), tested on CI.
#pragma once

#include <string>

#include "core/route.h"
#include "fi4j/attention/kernel_set.h"

namespace fi4j {

struct RouteDecision {
  Route route = Route::Unsupported;
  std::string reason;  // why not, when Unsupported: names the head dim and, for a JIT dim, what to install
};

/// The route of an attention configuration (op FI4J_OP_DECODE or FI4J_OP_PREFILL) with a valid dtype (F16/BF16).
/// cuda: the CUDA backend (else the CPU reference, which runs every head dim its own check accepts). path (decode
/// only): fi4j_decode_path; run-time compiled decode exists for the CUDA-core path only, so TENSOR_CORES at a JIT
/// head dim is unsupported. jit_unavailable_reason: "" when NVRTC is usable, else why not.
RouteDecision route_attention(int op, bool cuda, int head_dim, int path, const std::string& jit_unavailable_reason);

/// The route for this process (NVRTC looked up only when a JIT head dim asks for it); throws
/// Error(FI4J_ERR_UNSUPPORTED) with the reason when unsupported.
Route require_attention_route(int op, bool cuda, int head_dim, int path);

inline bool decode_head_dim_aot(int head_dim) { return attention_kernels::head_dim_aot(head_dim); }
inline bool decode_head_dim_jit(int head_dim) {
  return attention_kernels::head_dim_generated(head_dim) && !attention_kernels::head_dim_aot(head_dim);
}
inline bool prefill_head_dim_aot(int head_dim) { return decode_head_dim_aot(head_dim); }
inline bool prefill_head_dim_jit(int head_dim) { return decode_head_dim_jit(head_dim); }

inline RouteDecision route_decode(bool cuda, int head_dim, int path, const std::string& jit_unavailable_reason) {
  return route_attention(0, cuda, head_dim, path, jit_unavailable_reason);
}
inline RouteDecision route_prefill(bool cuda, int head_dim, const std::string& jit_unavailable_reason) {
  return route_attention(1, cuda, head_dim, -1, jit_unavailable_reason);
}
inline Route require_decode_route(bool cuda, int head_dim, int path) {
  return require_attention_route(0, cuda, head_dim, path);
}
inline Route require_prefill_route(bool cuda, int head_dim) { return require_attention_route(1, cuda, head_dim, -1); }

/// require_prefill_route for a CUDA device, then the shared memory of the block that cta_tile_q selects (0: the
/// largest this configuration uses) against the device's per-block limit; throws Error(FI4J_ERR_UNSUPPORTED)
/// naming what does not fit. smem_limit: the device's opt-in limit (smem_optin_limit) when the caller has read it,
/// else -1 to read it here. Defined in prefill_ops.cpp.
Route check_cuda_prefill(int device, int head_dim, bool rope, int cta_tile_q, int smem_limit = -1);

}  // namespace fi4j
