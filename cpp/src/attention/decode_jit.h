// Run-time compiled decode, the CUDA half: the module of a configuration loaded into a device through the CUDA
// runtime's library API (cudaLibraryLoadData: no link-time dependency on the driver library), and its launch.
#pragma once

#include <string>

#include <cuda_runtime_api.h>

#include "fi4j/attention/params.h"
#include "jit/jit_cache.h"
#include "attention/decode_jit_source.h"

namespace fi4j {
namespace jit {

struct PrepareInfo {
  std::string key;
  KernelCache::Origin origin = KernelCache::Origin::Memory;  // where the cubin came from
  bool loaded = false;      // this call loaded the module into the device (first use there)
  double compile_ms = 0;    // NVRTC time, when this call compiled
  double total_ms = 0;      // the whole call
};

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
