// The kernel registry: every op family's configurations resolve here, once, to a Kernel (route, launch entry
// points, the device facts the launch needs) that a plan keeps as a handle and run() launches without routing
// again. The family decides the route and builds the entry (e.g. attention/kernel_table.cpp); the registry keeps
// entries for the process's life (kernels may sit in captured CUDA graphs) and turns handles back into entries
// without a lock. Internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "core/route.h"

namespace fi4j {

/// What selects a kernel: the op (fi4j_kernel_op), the configuration a plan fixes, and the device (-1: CPU).
struct KernelKey {
  int32_t op = 0;
  int32_t dtype = 0;
  int32_t head_dim = 0;
  bool soft_cap = false;
  bool rope = false;
  int32_t path = -1;  // decode: the concrete fi4j_decode_path; other ops: -1
  int32_t device = -1;

  auto tie() const { return std::tie(op, dtype, head_dim, soft_cap, rope, path, device); }
  bool operator<(const KernelKey& o) const { return tie() < o.tie(); }
  bool operator==(const KernelKey& o) const { return tie() == o.tie(); }
};

/// A resolved kernel. The launch entry points are the family's, typed by the family (run() casts them back).
struct Kernel {
  KernelKey key;
  Route route = Route::Unsupported;
  int64_t handle = 0;            // what plans keep (never 0)
  const void* launch = nullptr;  // AOT: the family's typed launcher of this instantiation
  const void* merge = nullptr;   // AOT: the split-KV merge launcher, when the family has one
  const void* module = nullptr;  // JIT: the loaded module (jit::LoadedModule), never unloaded
  bool pdl = false;              // programmatic dependent launch available on the device (sm_90+)
};

class KernelRegistry {
 public:
  /// The entry of key, built by make on first use (make decides the route, compiles or loads a run-time kernel,
  /// fills the launch entry points; it throws Error for an unsupported configuration, and then nothing is kept).
  const Kernel& resolve(const KernelKey& key, const std::function<Kernel(const KernelKey&)>& make);

  /// The entry of a handle from resolve(); throws Error(INVALID_ARGUMENT) naming `name` for anything else.
  const Kernel& find(int64_t handle, const char* name) const;

  /// Entries resolved so far.
  int size() const;

 private:
  static constexpr int kCapacity = 1 << 14;
  mutable std::mutex mutex_;
  std::map<KernelKey, const Kernel*> by_key_;
  const Kernel* entries_[kCapacity] = {};  // written under mutex_ before count_ publishes them
  std::atomic<int> count_{0};
};

/// The process's registry.
KernelRegistry& kernel_registry();

}  // namespace fi4j
