// A minimal parallel loop for the CPU reference backend.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace fi4j {
namespace cpu {

/// Runs fn(i) for i in [0, n) on all hardware threads, handing out indices one at a time.
template <typename F>
void parallel_for(long long n, F&& fn) {
  if (n <= 0) return;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const long long workers = std::min<long long>(n, static_cast<long long>(hw));
  if (workers <= 1) {
    for (long long i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<long long> next{0};
  auto loop = [&] {
    for (long long i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  for (long long w = 1; w < workers; ++w) pool.emplace_back(loop);
  loop();
  for (auto& t : pool) t.join();
}

}  // namespace cpu
}  // namespace fi4j
