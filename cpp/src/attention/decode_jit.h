// Run-time compiled decode, the CUDA half: the module of a configuration loaded into a device by the shared
// run-time module loader (jit/module_loader.h), and its launch.
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/attention/params.h"
#include "attention/decode_jit_source.h"
#include "jit/module_loader.h"

namespace fi4j {
namespace jit {

/// Makes the module of spec runnable on device (the current device is left as it was): cubin from memory, the
/// disk cache or NVRTC (once per process), then loaded into the device once. Throws Error (UNSUPPORTED when NVRTC
/// is missing, INTERNAL with NVRTC's log when compilation fails, a CUDA error when loading fails).
PrepareInfo prepare_decode(const DecodeKernelSpec& spec, int device);

/// Launches the run-time compiled decode (and merge, for a split plan) of p's configuration on the current device,
/// preparing it first when this process has not (which compiles on first use: call prepare_decode ahead of time).
/// Returns the launch status; throws as prepare_decode does.
cudaError_t launch_batch_decode_jit(const DecodeParams& p, cudaStream_t stream);

}  // namespace jit
}  // namespace fi4j
