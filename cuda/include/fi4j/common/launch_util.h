// Family-neutral launch helpers: the dynamic shared-memory opt-in of a kernel, once per device, and the launch
// configuration of programmatic dependent launch (PDL). Plain C++ over the CUDA runtime API (no CUDA language
// extensions), for the ahead-of-time launchers (cuda/kernels) and the loaders of run-time compiled kernels
// (cpp/src).
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>

namespace fi4j {

/// Raises a kernel's dynamic shared-memory limit the first time it launches on a device: the attribute belongs to
/// the function and device, and setting it on every launch cost host time on the run() path. `opted` is the
/// caller's per-kernel bit set of devices already done (devices >= 64 are set every time).
template <typename K>
inline cudaError_t opt_in_smem(K kernel, int bytes, std::atomic<unsigned long long>& opted) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const unsigned long long bit = device < 64 ? 1ull << device : 0ull;
  if (bit != 0 && (opted.load(std::memory_order_acquire) & bit) != 0) return cudaSuccess;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err == cudaSuccess) opted.fetch_or(bit, std::memory_order_acq_rel);
  return err;
}

/// Whether a device of compute capability major `cc_major` takes programmatic dependent launch (sm_90+).
inline bool pdl_supported(int cc_major) { return cc_major >= 9; }

/// pdl_supported for the current device.
inline cudaError_t current_device_pdl(bool* pdl) {
  int device = 0, major = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err != cudaSuccess) return err;
  *pdl = pdl_supported(major);
  return cudaSuccess;
}

/// The launch configuration (no dynamic shared memory) of a kernel that, when pdl, is launched by programmatic
/// dependent launch: it starts while the previous kernel of the stream still runs its last blocks and waits on the
/// device (griddepcontrol.wait) instead of behind a full kernel boundary. Stream capture records it as a
/// programmatic graph edge. Launch with cudaLaunchKernelEx(&c.config, ...). Not copyable: config points into it.
struct PdlLaunchConfig {
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attribute{};

  PdlLaunchConfig(dim3 grid, dim3 block, cudaStream_t stream, bool pdl) {
    config.gridDim = grid;
    config.blockDim = block;
    config.stream = stream;
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    config.attrs = &attribute;
    config.numAttrs = pdl ? 1 : 0;
  }
  PdlLaunchConfig(const PdlLaunchConfig&) = delete;
  PdlLaunchConfig& operator=(const PdlLaunchConfig&) = delete;
};

}  // namespace fi4j
