#include "attention/kernel_table.h"

#include "core/status.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/nvrtc_loader.h"

namespace fi4j {

namespace {

/// "64, 128, 256": the ahead-of-time set as the messages name it.
std::string aot_list() {
  std::string s;
  for (int d : attention_kernels::kAotHeadDims) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

}  // namespace

RouteDecision route_attention(int op, bool cuda, int head_dim, int path, const std::string& jit_unavailable_reason) {
  RouteDecision d;
  if (!cuda) {
    d.route = Route::Cpu;
    return d;
  }
  if (attention_kernels::head_dim_aot(head_dim)) {
    d.route = Route::Aot;
    return d;
  }
  const bool decode = op == FI4J_OP_DECODE;
  const std::string dim = "head_dim " + std::to_string(head_dim);
  if (!attention_kernels::head_dim_generated(head_dim)) {
    d.reason = dim + (decode ? " is not supported by the CUDA backend" : " is not supported by the CUDA prefill kernels") +
               " (ahead-of-time kernels: " + aot_list() + "; compiled at run time: multiples of 16 from 16 to 256)";
    return d;
  }
  if (decode && path == FI4J_PATH_TENSOR_CORES) {
    d.reason = dim + " has no tensor-core decode kernel (tensor cores: " + aot_list() +
               "); plan with path AUTO or CUDA_CORES";
    return d;
  }
  if (!jit_unavailable_reason.empty()) {
    d.reason = dim + (decode ? " on the CUDA backend" : " on the CUDA prefill backend") +
               " is compiled at run time, which needs NVRTC: " + jit_unavailable_reason;
    return d;
  }
  d.route = Route::Jit;
  return d;
}

Route require_attention_route(int op, bool cuda, int head_dim, int path) {
  // NVRTC is looked up only when a JIT head dim asks for it: AOT configurations never touch it.
  const bool needs_jit = cuda && decode_head_dim_jit(head_dim) &&
                         !(op == FI4J_OP_DECODE && path == FI4J_PATH_TENSOR_CORES);
  const RouteDecision d =
      route_attention(op, cuda, head_dim, path, needs_jit ? jit::nvrtc_unavailable_reason() : std::string());
  if (d.route == Route::Unsupported) throw Error(FI4J_ERR_UNSUPPORTED, d.reason);
  return d.route;
}

}  // namespace fi4j
