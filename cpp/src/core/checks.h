// Argument checks shared by the entry points of every op family: devices and architectures, pointers and strides as
// the kernels need them, launch statuses (attention's own: attention/checks.h). Each failure is an fi4j::Error with a
// message "<name> must be <expected>, got <actual>".
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

inline bool is_cpu(int device) { return device == FI4J_DEVICE_CPU; }

/// The CPU backend, or a valid CUDA device made current whose architecture this build has code for.
void check_device(int device);

/// Converts a launcher's status: cudaErrorNotSupported is UNSUPPORTED ("<what>: configuration not instantiated"),
/// any other error a CUDA error naming `what`.
void check_cuda_launch(cudaError_t err, const char* what);

/// Non-null when needed; 16-byte aligned on the CUDA backend (the kernels use 16-byte vector accesses).
void check_ptr(const void* p, const char* name, bool needed, bool cuda);

/// Non-negative; a multiple of 8 elements (16 bytes) on the CUDA backend.
void check_stride(int64_t s, const char* name, bool cuda);

}  // namespace fi4j
