// Run-time compiled decode, the CUDA half: the module of a configuration loaded into a device by the shared
// run-time module loader (jit/module_loader.h), and its launch.
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/attention/params.h"
#include "attention/decode_jit_source.h"
#include "jit/module_loader.h"

namespace fi4j {
namespace jit {

/// The loaded module of spec on device: cubin from memory, the disk cache or NVRTC (once per process), then loaded
/// into the device once (the current device is left as it was); the module lives for the process. info, when not
/// null, says what this call did. Throws Error (UNSUPPORTED when NVRTC is missing, INTERNAL with NVRTC's log when
/// compilation fails, a CUDA error when loading fails).
const LoadedModule& load_decode(const DecodeKernelSpec& spec, int device, PrepareInfo* info);

/// Launches a loaded decode module (and its merge, for a split plan) on the current device: what run() does with
/// a plan's run-time compiled kernel. A batch of 0 launches nothing.
cudaError_t launch_decode_module(const LoadedModule& m, const DecodeParams& p, cudaStream_t stream);

}  // namespace jit
}  // namespace fi4j
