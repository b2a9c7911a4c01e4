#include "attention/prefill_route.h"

#include "fi4j/attention/prefill_geometry.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

namespace fi4j {

bool prefill_head_dim_aot(int head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }

bool prefill_head_dim_jit(int head_dim) {
  return prefill_geometry::head_dim_supported(head_dim) && !prefill_head_dim_aot(head_dim);
}

PrefillRouteDecision route_prefill(bool cuda, int head_dim, const std::string& jit_unavailable_reason) {
  PrefillRouteDecision d;
  if (!cuda) {
    d.route = Route::Cpu;
    return d;
  }
  if (prefill_head_dim_aot(head_dim)) {
    d.route = Route::Aot;
    return d;
  }
  const std::string dim = "head_dim " + std::to_string(head_dim);
  if (!prefill_head_dim_jit(head_dim)) {
    d.reason = dim +
               " is not supported by the CUDA prefill kernels (ahead-of-time kernels: 64, 128, 256; compiled at run "
               "time: multiples of 16 from 16 to 256)";
    return d;
  }
  if (!jit_unavailable_reason.empty()) {
    d.reason = dim + " on the CUDA prefill backend is compiled at run time, which needs NVRTC: " +
               jit_unavailable_reason;
    return d;
  }
  d.route = Route::Jit;
  return d;
}

Route require_prefill_route(bool cuda, int head_dim) {
  // NVRTC is looked up only when a JIT head dim asks for it: AOT configurations never touch it.
  const bool needs_jit = cuda && prefill_head_dim_jit(head_dim);
  const PrefillRouteDecision d =
      route_prefill(cuda, head_dim, needs_jit ? jit::nvrtc_unavailable_reason() : std::string());
  if (d.route == Route::Unsupported) throw Error(FI4J_ERR_UNSUPPORTED, d.reason);
  return d.route;
}

}  // namespace fi4j
