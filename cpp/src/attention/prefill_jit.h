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

/// Makes the module of spec runnable on device (the current device is left as it was): cubin from memory, the
/// disk cache or NVRTC (once per process), then loaded into the device once, with the shared-memory opt-in of each
/// kernel. Throws as prepare_decode does.
PrepareInfo prepare_prefill(const PrefillKernelSpec& spec, int device);

/// Launches the run-time compiled prefill of p's configuration on the current device, preparing it first when this
/// process has not (which compiles on first use: prepare_prefill ahead of time keeps compiles out of run()).
/// Returns cudaErrorNotSupported for what the kernel cannot run (see prefill_geometry::launch_shape), else the
/// launch status; throws as prepare_prefill does.
cudaError_t launch_batch_prefill_jit(const PrefillParams& p, cudaStream_t stream);

}  // namespace jit
}  // namespace fi4j
