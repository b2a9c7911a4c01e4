// The run-time module loader that every op family uses: the cubin of a module from memory, the disk cache or NVRTC
// (once per process: jit_cache.h), loaded into each device once through the CUDA runtime's library API
// (cudaLibraryLoadData: no link-time dependency on the driver library), its kernels looked up and their dynamic
// shared-memory limits raised, and kept for the process's life. A family describes its module (ModuleRecipe) and
// keeps one ModuleLoader; the loader does the rest. Internal.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "jit/jit_cache.h"

namespace fi4j {
namespace jit {

struct PrepareInfo {
  std::string key;
  KernelCache::Origin origin = KernelCache::Origin::Memory;  // where the cubin came from
  bool loaded = false;      // this call loaded the module into the device (first use there)
  double compile_ms = 0;    // NVRTC time, when this call compiled
  double total_ms = 0;      // the whole call
};

/// One kernel of a module, looked up when the module is loaded.
struct KernelEntry {
  std::string symbol;  // its name in the cubin; empty: no kernel in this slot (the loaded slot stays null)
  int smem_bytes = 0;  // dynamic shared memory to opt in to at load time (above the 48 KB default); 0: none
};

/// What a family tells the loader about one module (one configuration). Called only on a module's first use in a
/// device; the family's launch path pays for none of it afterwards.
class ModuleRecipe {
 public:
  virtual ~ModuleRecipe() = default;
  /// Validates the configuration; throws Error naming what is wrong. Called first.
  virtual void check() const = 0;
  /// The cache key of the module for arch (make_key; also its file name in the disk cache).
  virtual std::string key(const std::string& arch) const = 0;
  /// The generated translation unit (includes the embedded headers).
  virtual std::string source() const = 0;
  /// NVRTC name expressions (template kernels) and the symbol each must lower to: the loader finds kernels by
  /// symbol, also in cubins from the disk cache, so a compile checks them. None for extern "C" entries.
  virtual std::vector<std::pair<std::string, std::string>> name_expressions() const { return {}; }
  /// The kernels to look up, in the order LoadedModule::kernels keeps them.
  virtual std::vector<KernelEntry> kernels() const = 0;
};

struct LoadedKernel {
  cudaKernel_t kernel = nullptr;
  int smem_bytes = 0;  // as KernelEntry::smem_bytes
};

/// A module loaded into one device. Never unloaded: its kernels may sit in captured graphs for the process's life.
struct LoadedModule {
  std::string key;
  cudaLibrary_t library = nullptr;
  std::vector<LoadedKernel> kernels;  // by ModuleRecipe::kernels
  int cc_major = 0;                   // the device's compute capability (major)
};

/// The loaded modules of one op family, by (configuration id, device).
class ModuleLoader {
 public:
  /// op: the family's name in messages ("<op> kernel <key> is not in the cache and needs NVRTC: ...").
  explicit ModuleLoader(const char* op) : op_(op) {}

  /// The module of recipe in device, made runnable first when this process has not (the current device is left as
  /// it was): cubin from memory, the disk cache or NVRTC, then loaded into the device. id: the family's compact
  /// encoding of the configuration (one id, one recipe). Throws Error (what recipe.check throws; UNSUPPORTED when
  /// NVRTC is missing for a cubin not in the cache; INTERNAL with NVRTC's log when compilation fails; a CUDA error
  /// when loading fails). info, when not null, tells what this call did.
  const LoadedModule& get(uint64_t id, int device, const ModuleRecipe& recipe, PrepareInfo* info = nullptr);

  /// get, for warm-up: what the call did.
  PrepareInfo prepare(uint64_t id, int device, const ModuleRecipe& recipe) {
    PrepareInfo info;
    get(id, device, recipe, &info);
    return info;
  }

 private:
  const char* op_;
  std::mutex mutex_;
  std::map<std::pair<uint64_t, int>, LoadedModule> loaded_;
};

}  // namespace jit
}  // namespace fi4j
