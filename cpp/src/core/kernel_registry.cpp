#include "core/kernel_registry.h"

#include "core/status.h"
#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

namespace {
// Handles carry a tag in their high bits so that a stray integer (0, a count, an address) is refused rather than
// read as an index.
constexpr int64_t kTag = int64_t{0x4b52} << 48;
constexpr int64_t kIndexMask = (int64_t{1} << 48) - 1;
}  // namespace

const Kernel& KernelRegistry::resolve(const KernelKey& key, const std::function<Kernel(const KernelKey&)>& make) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_key_.find(key);
    if (it != by_key_.end()) return *it->second;
  }
  // Built outside the lock: a run-time compile takes seconds and must not stall other configurations (the module
  // loader makes a compile happen once per process).
  Kernel built = make(key);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) return *it->second;
  const int index = count_.load(std::memory_order_relaxed);
  if (index >= kCapacity)
    throw Error(FI4J_ERR_INTERNAL, "kernel registry full (" + std::to_string(kCapacity) + " configurations)");
  Kernel* k = new Kernel(built);  // never freed: handles and captured graphs outlive any owner
  k->key = key;
  k->handle = kTag | index;
  entries_[index] = k;
  count_.store(index + 1, std::memory_order_release);
  by_key_.emplace(key, k);
  return *k;
}

const Kernel& KernelRegistry::find(int64_t handle, const char* name) const {
  const int64_t index = handle & kIndexMask;
  if ((handle & ~kIndexMask) != kTag || index >= count_.load(std::memory_order_acquire))
    fail_arg(name, "a kernel handle from a plan of this process", std::to_string(handle));
  return *entries_[index];
}

int KernelRegistry::size() const { return count_.load(std::memory_order_acquire); }

KernelRegistry& kernel_registry() {
  static KernelRegistry* r = new KernelRegistry();  // never freed (exit order: graphs and threads may outlive it)
  return *r;
}

}  // namespace fi4j
