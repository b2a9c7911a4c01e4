// Host-side CUDA helpers: error conversion, device selection and device attributes for the C API.
#pragma once

#include <cuda_runtime_api.h>

#include "core/status.h"

namespace fi4j {

/// Throws Error(FI4J_ERR_CUDA) naming the call when err is not cudaSuccess.
void check_cuda(cudaError_t err, const char* what);

/// Validates a device ordinal (>= 0 and < device count) and makes it current on this thread.
void use_device(int device);

struct ComputeCapability {
  int major = 0;
  int minor = 0;
  /// major * 10 + minor (90 for 9.0).
  int code() const { return major * 10 + minor; }
};

/// The compute capability of a CUDA device; throws Error(FI4J_ERR_CUDA) naming cudaDeviceGetAttribute.
inline ComputeCapability compute_capability(int device) {
  ComputeCapability cc;
  check_cuda(cudaDeviceGetAttribute(&cc.major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  check_cuda(cudaDeviceGetAttribute(&cc.minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  return cc;
}

/// The largest dynamic shared memory one block may opt in to on a CUDA device, in bytes; throws as
/// compute_capability does.
inline int smem_optin_limit(int device) {
  int limit = 0;
  check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
  return limit;
}

}  // namespace fi4j
