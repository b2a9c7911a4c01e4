// Host-side CUDA helpers: error conversion and device selection for the C API.
#pragma once

#include <cuda_runtime_api.h>

#include "core/status.h"

namespace fi4j {

/// Throws Error(FI4J_ERR_CUDA) naming the call when err is not cudaSuccess.
void check_cuda(cudaError_t err, const char* what);

/// Validates a device ordinal (>= 0 and < device count) and makes it current on this thread.
void use_device(int device);

}  // namespace fi4j
