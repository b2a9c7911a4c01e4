#include "core/checks.h"

#include <string>

#include <cuda_runtime_api.h>

#include "core/cuda_util.h"
#include "core/status.h"

namespace fi4j {

namespace {

/// Whether code built for the architectures in FI4J_CUDA_ARCHITECTURES ("80", "90", "90a", "100-real", ...)
/// can run on compute capability cc (major*10+minor): plain entries carry PTX and run on cc >= arch; "a"
/// (architecture-specific) entries run on exactly that cc.
bool arch_runs_on(int cc) {
  const std::string list = fi4j_cuda_architectures();
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string entry = list.substr(pos, end - pos);
    pos = end + 1;
    int arch = 0;
    size_t i = 0;
    while (i < entry.size() && entry[i] >= '0' && entry[i] <= '9') arch = arch * 10 + (entry[i++] - '0');
    if (arch == 0) continue;
    const bool specific = i < entry.size() && entry[i] == 'a';
    if (specific ? cc == arch : cc >= arch) return true;
  }
  return false;
}

/// Throws UNSUPPORTED when this build has no code for the device's architecture (e.g. the sm90 jar on an A100).
void check_arch(int device) {
  static thread_local int checked_device = -2;
  if (checked_device == device) return;
  const ComputeCapability capability = compute_capability(device);
  const int major = capability.major, minor = capability.minor;
  const int cc = capability.code();
  if (!arch_runs_on(cc))
    throw Error(FI4J_ERR_UNSUPPORTED, "this build of flashinfer4j has kernels for CUDA architectures " +
                                          std::string(fi4j_cuda_architectures()) + ", which cannot run on device " +
                                          std::to_string(device) + " of compute capability " + std::to_string(major) +
                                          "." + std::to_string(minor) +
                                          ": use the natives jar of its architecture (classifier linux-x86_64-sm" +
                                          std::to_string(cc >= 100 ? 100 : cc >= 90 ? 90 : cc >= 89 ? 89 : 80) + ")");
  checked_device = device;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

void check_device(int device) {
  if (is_cpu(device)) return;
  use_device(device);
  check_arch(device);
}


void check_cuda_launch(cudaError_t err, const char* what) {
  if (err == cudaErrorNotSupported)
    throw Error(FI4J_ERR_UNSUPPORTED, std::string(what) + ": configuration not instantiated in this build");
  check_cuda(err, what);
}

void check_ptr(const void* p, const char* name, bool needed, bool cuda) {
  if (!needed) return;
  if (!p) fail_arg(name, "non-null", "null");
  if (cuda && !aligned16(p))
    fail_arg(name, "16-byte aligned on the CUDA backend", "address % 16 = " + std::to_string(reinterpret_cast<uintptr_t>(p) % 16));
}

void check_stride(int64_t s, const char* name, bool cuda) {
  require(s >= 0, name, ">= 0", s);
  if (cuda && s % 8 != 0) require(false, name, "a multiple of 8 elements (16 bytes) on the CUDA backend", s);
}

}  // namespace fi4j
