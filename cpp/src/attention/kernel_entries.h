// The attention family's entries in the kernel registry (core/kernel_registry.h): a decode or prefill configuration
// resolved once (routed by kernel_table.h, a run-time kernel compiled or loaded, the ahead-of-time launchers looked
// up) into the entry that plans keep as a handle, and the launch of an entry, which is all run() does.
#pragma once

#include <cuda_runtime_api.h>

#include "core/kernel_registry.h"
#include "fi4j/attention/params.h"
#include "fi4j/attention/prefill_params.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/module_loader.h"

namespace fi4j {

/// The registry key of a decode configuration on a concrete path (the CPU reference has one path).
KernelKey decode_kernel_key(int device, int dtype, int head_dim, bool soft_cap, bool rope, int path);
/// The registry key of a prefill configuration.
KernelKey prefill_kernel_key(int device, int dtype, int head_dim, bool soft_cap, bool rope);

/// The registry entry of a decode configuration on a concrete path (FI4J_PATH_CUDA_CORES or TENSOR_CORES):
/// routed, its run-time kernel compiled or loaded when it needs one, its launchers looked up. Once per
/// configuration and device in a process; info (may be null) says what this call did for a run-time kernel.
/// Throws Error(FI4J_ERR_UNSUPPORTED) naming what has no kernel.
const Kernel& resolve_decode_kernel(int device, int dtype, int head_dim, bool soft_cap, bool rope, int path,
                                    jit::PrepareInfo* info);

/// The registry entry of a prefill configuration (every mask, window, block shape and split runs in one entry).
const Kernel& resolve_prefill_kernel(int device, int dtype, int head_dim, bool soft_cap, bool rope,
                                     jit::PrepareInfo* info);

/// Launches a resolved CUDA decode (kernel and, for a split plan, merge) on the current device; p must have the
/// entry's configuration (the caller checked it against the entry's key).
cudaError_t launch_decode_kernel(const Kernel& k, const DecodeParams& p, cudaStream_t stream);

/// Launches a resolved CUDA prefill on the current device.
cudaError_t launch_prefill_kernel(const Kernel& k, const PrefillParams& p, cudaStream_t stream);

/// The C code of a route (fi4j_kernel_route).
inline int32_t route_code(Route r) {
  return r == Route::Jit ? FI4J_ROUTE_JIT : r == Route::Aot ? FI4J_ROUTE_AOT : FI4J_ROUTE_CPU;
}

/// The C description of a resolved entry and of what resolving it did (info: from the resolve call that may have
/// compiled or loaded it; a default info for an entry that existed).
void fill_kernel_info(const Kernel& k, const jit::PrepareInfo& info, fi4j_kernel_prepare_info* out);

/// Throws Error(FI4J_ERR_INVALID_ARGUMENT) naming `name` when the handle's entry is not the kernel of this
/// configuration (a plan of another op, dtype, head dim, variant, path or device).
void check_kernel_matches(const Kernel& k, const KernelKey& expected, const char* name);

}  // namespace fi4j
