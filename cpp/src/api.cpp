// Library-level entry points: errors, version, devices, memory, streams, host conversion.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <cuda_runtime_api.h>

#include "cuda_util.h"
#include "half.h"
#include "status.h"

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

// The device count never changes within a process; probe once.
const DeviceProbe& probe() {
  static DeviceProbe p = [] {
    DeviceProbe r;
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
    return r;
  }();
  return p;
}
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
  std::string msg = std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation) throw Error(FI4J_ERR_OUT_OF_MEMORY, msg);
  throw Error(FI4J_ERR_CUDA, msg);
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
    size_t n = bytes == 0 ? 256 : static_cast<size_t>((bytes + 255) / 256 * 256);
    if (device == FI4J_DEVICE_CPU) {
      void* p = std::aligned_alloc(256, n);
      if (!p) throw Error(FI4J_ERR_OUT_OF_MEMORY, "host allocation of " + std::to_string(bytes) + " bytes failed");
      *out = p;
      return;
    }
    use_device(device);
    check_cuda(cudaMalloc(out, n), ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
  });
}

FI4J_API int fi4j_free(int device, void* ptr) {
  return guarded([&] {
    if (!ptr) return;
    if (device == FI4J_DEVICE_CPU) {
      std::free(ptr);
      return;
    }
    use_device(device);
    check_cuda(cudaFree(ptr), "cudaFree");
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
    if (dst_device == FI4J_DEVICE_CPU && src_device == FI4J_DEVICE_CPU) {
      std::memmove(dst, src, static_cast<size_t>(bytes));
      return;
    }
    use_device(dst_device != FI4J_DEVICE_CPU ? dst_device : src_device);
    const size_t n = static_cast<size_t>(bytes);
    if (async)
      check_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)), "cudaMemcpyAsync");
    else
      check_cuda(cudaMemcpy(dst, src, n, cudaMemcpyDefault), "cudaMemcpy");
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
    if (device == FI4J_DEVICE_CPU) {
      std::memset(ptr, value, static_cast<size_t>(bytes));
      return;
    }
    use_device(device);
    check_cuda(cudaMemset(ptr, value, static_cast<size_t>(bytes)), "cudaMemset");
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
    *out = s;
  });
}

FI4J_API int fi4j_stream_destroy(int device, void* stream) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU || !stream) return;
    use_device(device);
    check_cuda(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
  });
}

FI4J_API int fi4j_stream_synchronize(int device, void* stream) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU) return;
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
