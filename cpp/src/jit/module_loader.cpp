#include "jit/module_loader.h"

#include <chrono>

#include "core/cuda_util.h"
#include "core/status.h"
#include "jit/module_source.h"
#include "jit/nvrtc_loader.h"

namespace fi4j {
namespace jit {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
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

}  // namespace

const LoadedModule& ModuleLoader::get(uint64_t id, int device, const ModuleRecipe& recipe, PrepareInfo* info) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::pair<uint64_t, int> slot{id, device};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = loaded_.find(slot);
    if (it != loaded_.end()) {
      if (info != nullptr) {
        info->key = it->second.key;
        info->total_ms = ms_since(t0);
      }
      return it->second;
    }
  }
  recipe.check();
  const NvrtcApi* api = nvrtc();
  const ComputeCapability cc = compute_capability(device);
  const std::string arch = arch_name(cc.major, cc.minor);
  const std::string key = recipe.key(arch);
  const std::vector<KernelEntry> entries = recipe.kernels();
  double compile_ms = 0;
  KernelCache::Origin origin = KernelCache::Origin::Memory;
  auto cubin = kernel_cache().get_or_compile(
      key,
      [&] {
        // Only a missing cubin needs the compiler: a cached kernel runs without NVRTC.
        if (api == nullptr)
          throw Error(FI4J_ERR_UNSUPPORTED, std::string(op_) + " kernel " + key +
                                                " is not in the cache and needs NVRTC: " + nvrtc_unavailable_reason());
        const std::vector<std::pair<std::string, std::string>> names = recipe.name_expressions();
        std::vector<std::string> expressions, lowered;
        for (const auto& n : names) expressions.push_back(n.first);
        const auto c0 = std::chrono::steady_clock::now();
        Bytes b = nvrtc_compile(*api, recipe.source(), key + ".cu", arch, expressions, &lowered);
        compile_ms = ms_since(c0);
        for (size_t i = 0; i < names.size(); ++i)
          if (lowered[i] != names[i].second)
            throw Error(FI4J_ERR_INTERNAL, "NVRTC named " + names[i].first + " " + lowered[i] + ", expected " +
                                               names[i].second);
        return b;
      },
      &origin);

  std::lock_guard<std::mutex> lock(mutex_);
  auto it = loaded_.find(slot);
  bool loaded_now = false;
  if (it == loaded_.end()) {
    DeviceGuard guard(device);
    LoadedModule m;
    m.key = key;
    m.cc_major = cc.major;
    check_cuda(cudaLibraryLoadData(&m.library, cubin->data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
               ("cudaLibraryLoadData (run-time compiled " + std::string(op_) + ")").c_str());
    m.kernels.resize(entries.size());
    cudaError_t err = cudaSuccess;
    for (size_t i = 0; i < entries.size() && err == cudaSuccess; ++i) {
      if (entries[i].symbol.empty()) continue;
      LoadedKernel& k = m.kernels[i];
      k.smem_bytes = entries[i].smem_bytes;
      err = cudaLibraryGetKernel(&k.kernel, m.library, entries[i].symbol.c_str());
      // Above the 48 KB default: opt in once, when the module is loaded into the device.
      if (err == cudaSuccess && k.smem_bytes > 0)
        err = cudaFuncSetAttribute(reinterpret_cast<const void*>(k.kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   k.smem_bytes);
    }
    if (err != cudaSuccess) {
      cudaLibraryUnload(m.library);
      check_cuda(err, ("loading run-time compiled " + std::string(op_)).c_str());
    }
    it = loaded_.emplace(slot, std::move(m)).first;
    loaded_now = true;
  }
  if (info != nullptr) {
    info->key = key;
    info->origin = origin;
    info->loaded = loaded_now;
    info->compile_ms = compile_ms;
    info->total_ms = ms_since(t0);
  }
  return it->second;
}

}  // namespace jit
}  // namespace fi4j
