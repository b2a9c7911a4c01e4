// Library-level entry points: errors, version, devices, memory, streams, host conversion.
//
// Memory and streams go through a registry of what this library handed out (fi4j_malloc allocations and
// fi4j_stream_create streams): fi4j_free of anything else (a foreign pointer, an interior pointer, a pointer freed
// before) and a free or copy that names the wrong device are FI4J_ERR_INVALID_ARGUMENT instead of heap corruption
// or a crash, and copies/memsets that start inside a registered allocation must end inside it. Pointers the
// registry does not know (memory of other libraries wrapped by the caller, JavaCPP host buffers) are the caller's
// word. The cost is one mutex and one map operation per malloc/free/copy/memset: host API calls, never on a
// kernel's path. Kernels trust the shapes and strides the callers validated; the registry cannot see them.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include <cuda_runtime_api.h>

#include "core/cuda_util.h"
#include "core/half.h"
#include "core/status.h"

#ifndef FI4J_CUDA_ARCHITECTURES
#define FI4J_CUDA_ARCHITECTURES "unknown"
#endif

namespace fi4j {

namespace {
thread_local std::string g_last_error;

struct DeviceProbe {
  int count = 0;
  std::string reason;
};

// The device count never changes within a process; probe once. Never destroyed: a Cleaner thread may free
// device memory while the process runs its exit handlers.
const DeviceProbe& probe() {
  static const DeviceProbe* p = [] {
    DeviceProbe* rp = new DeviceProbe();
    DeviceProbe& r = *rp;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("no CUDA device: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
      cudaGetLastError();  // clear the sticky-free error so later calls start clean
    } else if (n == 0) {
      r.reason = "no CUDA device: the driver reports 0 devices";
    } else {
      r.count = n;
    }
    return rp;
  }();
  return *p;
}

struct Allocation {
  int device;
  int64_t bytes;  // as asked for; the allocation itself is rounded up to 256 bytes
};

struct DeviceStats {
  int64_t allocations = 0;
  int64_t bytes = 0;
  int64_t streams = 0;
};

struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, Allocation> allocations;  // by base address, ordered for the containing-range lookup
  std::unordered_map<void*, int> streams;       // created streams -> device
  std::map<int, DeviceStats> stats;
};

// Never destroyed, for the same reason as the probe.
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%" PRIxPTR, reinterpret_cast<uintptr_t>(p));
  return buf;
}

std::string device_name(int device) {
  return device == FI4J_DEVICE_CPU ? std::string("-1 (CPU)") : std::to_string(device);
}

/// The registered allocation that contains p (a 0-byte allocation contains its base), or null. Needs the lock.
const Allocation* find_containing(Registry& r, uintptr_t p, uintptr_t* base) {
  auto it = r.allocations.upper_bound(p);
  if (it == r.allocations.begin()) return nullptr;
  --it;
  const uint64_t extent = static_cast<uint64_t>(std::max<int64_t>(it->second.bytes, 1));
  if (p - it->first >= extent) return nullptr;
  *base = it->first;
  return &it->second;
}

/// Largest byte count fi4j_malloc accepts: far above any real allocation, and (bytes + 255) cannot overflow.
constexpr int64_t kMaxAllocationBytes = int64_t{1} << 62;
}  // namespace

int set_error(int status, const std::string& msg) {
  g_last_error = msg;
  return status;
}
void clear_error() { g_last_error.clear(); }

int dtype_size(int dtype) {
  switch (dtype) {
    case FI4J_F16: case FI4J_BF16: return 2;
    case FI4J_F32: case FI4J_I32: return 4;
    case FI4J_U8: case FI4J_FP8_E4M3: case FI4J_FP8_E5M2: return 1;
    default: return 0;
  }
}

const char* dtype_name(int dtype) {
  switch (dtype) {
    case FI4J_F16: return "F16";
    case FI4J_BF16: return "BF16";
    case FI4J_F32: return "F32";
    case FI4J_I32: return "I32";
    case FI4J_U8: return "U8";
    case FI4J_FP8_E4M3: return "FP8_E4M3";
    case FI4J_FP8_E5M2: return "FP8_E5M2";
    default: return "unknown dtype";
  }
}

void check_cuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  // Reset this thread's last error: launchers report cudaGetLastError(), and a non-sticky failure here (an
  // allocation that did not fit, a bad argument) must not make the next, valid launch look failed. Sticky errors
  // (a kernel fault) stay: the context is unusable and every later call reports them anyway.
  cudaGetLastError();
  std::string msg = std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation) throw Error(FI4J_ERR_OUT_OF_MEMORY, msg);
  throw Error(FI4J_ERR_CUDA, msg);
}

void check_range(int device, const char* device_arg, const void* ptr, const char* name, int64_t bytes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  uintptr_t base = 0;
  const Allocation* a = find_containing(r, reinterpret_cast<uintptr_t>(ptr), &base);
  if (!a) return;  // not memory of this library: the caller's word
  const std::string n(name);
  if (a->device != device)
    fail_arg(device_arg, device_name(a->device) + " (the device " + n + " was allocated on)", device_name(device));
  const int64_t left = a->bytes - static_cast<int64_t>(reinterpret_cast<uintptr_t>(ptr) - base);
  if (bytes > left)
    fail_arg("bytes", "<= " + std::to_string(left) + " (what is left of the fi4j_malloc allocation " + n +
                          " points into)", bytes);
}

void check_stream(int device, void* stream) {
  if (device == FI4J_DEVICE_CPU || !stream) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.streams.find(stream);
  if (it == r.streams.end()) return;  // a stream of another library: the caller's word
  if (it->second != device)
    fail_arg("stream", "a stream of device " + device_name(device), "a stream of device " + device_name(it->second));
}

void use_device(int device) {
  const DeviceProbe& p = probe();
  if (p.count == 0) throw Error(FI4J_ERR_NO_DEVICE, p.reason);
  if (device < 0 || device >= p.count)
    fail_arg("device", "in [0, " + std::to_string(p.count) + ")", device);
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess || current != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
}

}  // namespace fi4j

using namespace fi4j;

extern "C" {

FI4J_API const char* fi4j_last_error(void) { return g_last_error.c_str(); }

FI4J_API int fi4j_version(void) { return 100; }  // 0.1.0

FI4J_API int fi4j_cuda_runtime_version(void) {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

FI4J_API const char* fi4j_cuda_architectures(void) { return FI4J_CUDA_ARCHITECTURES; }

FI4J_API int fi4j_device_count(int* count) {
  return guarded([&] {
    if (!count) fail_arg("count", "non-null", "null");
    *count = probe().count;
  });
}

FI4J_API const char* fi4j_no_device_reason(void) { return probe().reason.c_str(); }

FI4J_API int fi4j_get_device_info(int device, fi4j_device_info* info) {
  return guarded([&] {
    if (!info) fail_arg("info", "non-null", "null");
    use_device(device);
    cudaDeviceProp prop;
    check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    std::memset(info->name, 0, sizeof(info->name));
    std::memcpy(info->name, prop.name, std::min(std::strlen(prop.name), sizeof(info->name) - 1));
    info->major = prop.major;
    info->minor = prop.minor;
    info->multiprocessor_count = prop.multiProcessorCount;
    size_t free_b = 0, total_b = 0;
    check_cuda(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    info->total_memory = static_cast<int64_t>(total_b);
    info->free_memory = static_cast<int64_t>(free_b);
  });
}

FI4J_API int fi4j_malloc(int device, int64_t bytes, void** out) {
  return guarded([&] {
    if (!out) fail_arg("out", "non-null", "null");
    *out = nullptr;
    require(bytes >= 0, "bytes", ">= 0", bytes);
    require(bytes <= kMaxAllocationBytes, "bytes", "<= 2^62", bytes);
    size_t n = bytes == 0 ? 256 : static_cast<size_t>((bytes + 255) / 256 * 256);
    void* p = nullptr;
    if (device == FI4J_DEVICE_CPU) {
      p = std::aligned_alloc(256, n);
      if (!p) throw Error(FI4J_ERR_OUT_OF_MEMORY, "host allocation of " + std::to_string(bytes) + " bytes failed");
    } else {
      use_device(device);
      check_cuda(cudaMalloc(&p, n), ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
    }
    try {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.allocations[reinterpret_cast<uintptr_t>(p)] = Allocation{device, bytes};
      DeviceStats& st = r.stats[device];
      st.allocations += 1;
      st.bytes += bytes;
    } catch (...) {
      if (device == FI4J_DEVICE_CPU) std::free(p); else cudaFree(p);
      throw;
    }
    *out = p;
  });
}

FI4J_API int fi4j_free(int device, void* ptr) {
  return guarded([&] {
    if (!ptr) return;
    {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      auto it = r.allocations.find(reinterpret_cast<uintptr_t>(ptr));
      if (it == r.allocations.end())
        fail_arg("ptr", "a live allocation of fi4j_malloc (not freed before, not an interior or foreign pointer)",
                 hex(ptr));
      if (it->second.device != device)
        fail_arg("device", device_name(it->second.device) + " (the device ptr was allocated on)", device_name(device));
      DeviceStats& st = r.stats[device];
      st.allocations -= 1;
      st.bytes -= it->second.bytes;
      r.allocations.erase(it);  // before the free: the address may come back from a malloc on another thread
    }
    if (device == FI4J_DEVICE_CPU) {
      std::free(ptr);
      return;
    }
    use_device(device);
    check_cuda(cudaFree(ptr), "cudaFree");
  });
}

FI4J_API int fi4j_memory_stats(int device, int64_t* live_allocations, int64_t* live_bytes, int64_t* live_streams) {
  return guarded([&] {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.stats.find(device);
    const DeviceStats st = it == r.stats.end() ? DeviceStats{} : it->second;
    if (live_allocations) *live_allocations = st.allocations;
    if (live_bytes) *live_bytes = st.bytes;
    if (live_streams) *live_streams = st.streams;
  });
}

}  // extern "C"

namespace {
/// Copies between host (device -1) and device memory; synchronous unless `async` (then on `stream`).
int copy_bytes(int dst_device, void* dst, int src_device, const void* src, int64_t bytes, bool async,
               void* stream) {
  return guarded([&] {
    require(bytes >= 0, "bytes", ">= 0", bytes);
    if (bytes == 0) return;
    if (!dst) fail_arg("dst", "non-null", "null");
    if (!src) fail_arg("src", "non-null", "null");
    check_range(dst_device, "dst_device", dst, "dst", bytes);
    check_range(src_device, "src_device", src, "src", bytes);
    const int device = dst_device != FI4J_DEVICE_CPU ? dst_device : src_device;
    if (async) check_stream(device, stream);
    if (dst_device == FI4J_DEVICE_CPU && src_device == FI4J_DEVICE_CPU) {
      std::memmove(dst, src, static_cast<size_t>(bytes));
      return;
    }
    use_device(device);
    const size_t n = static_cast<size_t>(bytes);
    if (async) {
      check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)), "cudaMemcpyAsync");
    } else {
      check_cuda(cudaMemcpy(dst, src, n, cudaMemcpyDefault), "cudaMemcpy");
      // cudaMemcpy may return before the data lands (pageable host to device, device to device) and orders only
      // with the legacy default stream, while our streams are non-blocking: wait, so that the copy is complete for
      // work queued on any stream afterwards, as the C API promises.
      check_cuda(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize after cudaMemcpy");
    }
  });
}
}  // namespace

extern "C" {

FI4J_API int fi4j_memcpy(int dst_device, void* dst, int src_device, const void* src, int64_t bytes) {
  return copy_bytes(dst_device, dst, src_device, src, bytes, false, nullptr);
}

FI4J_API int fi4j_memcpy_async(int dst_device, void* dst, int src_device, const void* src, int64_t bytes,
                               void* stream) {
  return copy_bytes(dst_device, dst, src_device, src, bytes, true, stream);
}

FI4J_API int fi4j_memset(int device, void* ptr, int value, int64_t bytes) {
  return guarded([&] {
    require(bytes >= 0, "bytes", ">= 0", bytes);
    if (bytes == 0) return;
    if (!ptr) fail_arg("ptr", "non-null", "null");
    check_range(device, "device", ptr, "ptr", bytes);
    if (device == FI4J_DEVICE_CPU) {
      std::memset(ptr, value, static_cast<size_t>(bytes));
      return;
    }
    use_device(device);
    check_cuda(cudaMemset(ptr, value, static_cast<size_t>(bytes)), "cudaMemset");
    // asynchronous on the legacy stream, which non-blocking streams do not wait for: complete it here
    check_cuda(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize after cudaMemset");
  });
}

FI4J_API int fi4j_convert_host(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n) {
  return guarded([&] {
    require(n >= 0, "n", ">= 0", n);
    if (n == 0) return;
    if (!src) fail_arg("src", "non-null", "null");
    if (!dst) fail_arg("dst", "non-null", "null");
    auto floaty = [](int d) { return d == FI4J_F16 || d == FI4J_BF16 || d == FI4J_F32; };
    if (!floaty(src_dtype)) fail_arg("src_dtype", "F16, BF16 or F32", dtype_name(src_dtype));
    if (!floaty(dst_dtype)) fail_arg("dst_dtype", "F16, BF16 or F32", dtype_name(dst_dtype));
    for (int64_t i = 0; i < n; ++i) store_from_float(dst, dst_dtype, i, load_as_float(src, src_dtype, i));
  });
}

FI4J_API int fi4j_stream_create(int device, void** out) {
  return guarded([&] {
    if (!out) fail_arg("out", "non-null", "null");
    *out = nullptr;
    if (device == FI4J_DEVICE_CPU) return;  // the CPU backend runs synchronously
    use_device(device);
    cudaStream_t s = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    try {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.streams[s] = device;
      r.stats[device].streams += 1;
    } catch (...) {
      cudaStreamDestroy(s);
      throw;
    }
    *out = s;
  });
}

FI4J_API int fi4j_stream_destroy(int device, void* stream) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU || !stream) return;
    {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      auto it = r.streams.find(stream);
      if (it == r.streams.end())
        fail_arg("stream", "a live stream of fi4j_stream_create (not destroyed before)", hex(stream));
      if (it->second != device)
        fail_arg("device", device_name(it->second) + " (the device of the stream)", device_name(device));
      r.stats[device].streams -= 1;
      r.streams.erase(it);
    }
    use_device(device);
    check_cuda(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
  });
}

FI4J_API int fi4j_stream_synchronize(int device, void* stream) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU) return;
    check_stream(device, stream);
    use_device(device);
    check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
  });
}

FI4J_API int fi4j_device_synchronize(int device) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU) return;
    use_device(device);
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  });
}

}  // extern "C"
