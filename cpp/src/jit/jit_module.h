// Small helpers shared by the loaders of run-time compiled modules (decode_jit.cpp, prefill_jit.cpp). Internal.
#pragma once

#include <chrono>

#include <cuda_runtime_api.h>

#include "core/cuda_util.h"

namespace fi4j {
namespace jit {

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// Makes device current and restores the previous current device on scope exit.
struct DeviceGuard {
  int previous = -1;
  explicit DeviceGuard(int device) {
    check_cuda(cudaGetDevice(&previous), "cudaGetDevice");
    if (previous != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    int now = -1;
    if (previous >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous) cudaSetDevice(previous);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
};

}  // namespace jit
}  // namespace fi4j
