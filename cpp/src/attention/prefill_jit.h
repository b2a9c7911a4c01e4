// Run-time compiled prefill, the CUDA half: the module of a configuration loaded into a device by the shared
// run-time module loader (jit/module_loader.h), and its launch with the ahead-of-time launcher's geometry
// (fi4j/attention/prefill_geometry.h).
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/attention/prefill_params.h"
#include "attention/prefill_jit_source.h"
#include "jit/module_loader.h"

namespace fi4j {
namespace jit {

/// The loaded module of spec on device: cubin from memory, the disk cache or NVRTC (once per process), then loaded
/// into the device once (the current device is left as it was); the module lives for the process. info, when not
/// null, says what this call did. Throws Error (UNSUPPORTED when NVRTC is missing, INTERNAL with NVRTC's log when
/// compilation fails, a CUDA error when loading fails).
const LoadedModule& load_prefill(const PrefillKernelSpec& spec, int device, PrepareInfo* info);

/// Launches a loaded prefill module on the current device (block shape and split from p.plan, as the ahead-of-time
/// launcher): what run() does with a plan's run-time compiled kernel.
cudaError_t launch_prefill_module(const LoadedModule& m, const PrefillParams& p, cudaStream_t stream);

}  // namespace jit
}  // namespace fi4j
