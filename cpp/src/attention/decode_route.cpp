#include "attention/decode_route.h"

#include "fi4j/attention/decode_geometry.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

namespace fi4j {

bool decode_head_dim_aot(int head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }

bool decode_head_dim_jit(int head_dim) {
  return decode::head_dim_supported(head_dim) && !decode_head_dim_aot(head_dim);
}

DecodeRouteDecision route_decode(bool cuda, int head_dim, int path, const std::string& jit_unavailable_reason) {
  DecodeRouteDecision d;
  if (!cuda) {
    d.route = Route::Cpu;
    return d;
  }
  if (decode_head_dim_aot(head_dim)) {
    d.route = Route::Aot;
    return d;
  }
  const std::string dim = "head_dim " + std::to_string(head_dim);
  if (!decode_head_dim_jit(head_dim)) {
    d.reason = dim +
               " is not supported by the CUDA backend (ahead-of-time kernels: 64, 128, 256; compiled at run time: "
               "multiples of 16 from 16 to 256)";
    return d;
  }
  if (path == FI4J_PATH_TENSOR_CORES) {
    d.reason = dim + " has no tensor-core decode kernel (tensor cores: 64, 128, 256); plan with path AUTO or "
                     "CUDA_CORES";
    return d;
  }
  if (!jit_unavailable_reason.empty()) {
    d.reason = dim + " on the CUDA backend is compiled at run time, which needs NVRTC: " + jit_unavailable_reason;
    return d;
  }
  d.route = Route::Jit;
  return d;
}

Route require_decode_route(bool cuda, int head_dim, int path) {
  // NVRTC is looked up only when a JIT head dim asks for it: AOT configurations never touch it.
  const bool needs_jit = cuda && decode_head_dim_jit(head_dim) && path != FI4J_PATH_TENSOR_CORES;
  const DecodeRouteDecision d =
      route_decode(cuda, head_dim, path, needs_jit ? jit::nvrtc_unavailable_reason() : std::string());
  if (d.route == Route::Unsupported) throw Error(FI4J_ERR_UNSUPPORTED, d.reason);
  return d.route;
}

}  // namespace fi4j
