// Events for timing, CUDA-graph capture and replay, and the random fill used by benchmarks.
#include <cstring>

#include <cuda_runtime_api.h>

#include "core/cuda_util.h"
#include "core/half.h"
#include "fi4j/common/fill.h"
#include "core/status.h"

using namespace fi4j;

namespace {
/// The same (seed, index) hash as the device fill, so CPU and CUDA buffers get identical values.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void require_cuda_device(int device, const char* what) {
  if (device == FI4J_DEVICE_CPU)
    throw Error(FI4J_ERR_UNSUPPORTED, std::string(what) + " needs a CUDA device, got the CPU backend");
  use_device(device);
}

void require_capturable(void* stream) {
  if (!stream) fail_arg("stream", "a created stream (the default stream cannot be captured)", "the default stream");
}
}  // namespace

extern "C" {

FI4J_API int fi4j_event_create(int device, void** out) {
  return guarded([&] {
    if (!out) fail_arg("out", "non-null", "null");
    *out = nullptr;
    if (device == FI4J_DEVICE_CPU) return;
    use_device(device);
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreate(&e), "cudaEventCreate");
    *out = e;
  });
}

FI4J_API int fi4j_event_destroy(int device, void* event) {
  return guarded([&] {
    if (device == FI4J_DEVICE_CPU || !event) return;
    use_device(device);
    check_cuda(cudaEventDestroy(static_cast<cudaEvent_t>(event)), "cudaEventDestroy");
  });
}

FI4J_API int fi4j_event_record(int device, void* event, void* stream) {
  return guarded([&] {
    require_cuda_device(device, "event recording");
    if (!event) fail_arg("event", "non-null", "null");
    check_stream(device, stream);
    check_cuda(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
  });
}

FI4J_API int fi4j_event_elapsed_ms(int device, void* start, void* end, float* ms) {
  return guarded([&] {
    require_cuda_device(device, "event timing");
    if (!start || !end) fail_arg("start / end", "non-null events", "null");
    if (!ms) fail_arg("ms", "non-null", "null");
    check_cuda(cudaEventSynchronize(static_cast<cudaEvent_t>(end)), "cudaEventSynchronize");
    check_cuda(cudaEventElapsedTime(ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)),
               "cudaEventElapsedTime");
  });
}

FI4J_API int fi4j_graph_capture_begin(int device, void* stream) {
  return guarded([&] {
    require_cuda_device(device, "graph capture");
    require_capturable(stream);
    check_stream(device, stream);
    check_cuda(cudaStreamBeginCapture(static_cast<cudaStream_t>(stream), cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture");
  });
}

FI4J_API int fi4j_stream_capturing(int device, void* stream, int* capturing) {
  return guarded([&] {
    if (!capturing) fail_arg("capturing", "non-null", "null");
    *capturing = 0;
    if (device < 0) return;  // the CPU backend never captures
    require_cuda_device(device, "capture status");
    check_stream(device, stream);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    check_cuda(cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status), "cudaStreamIsCapturing");
    *capturing = status != cudaStreamCaptureStatusNone ? 1 : 0;
  });
}

FI4J_API int fi4j_graph_capture_end(int device, void* stream, void** out) {
  return guarded([&] {
    require_cuda_device(device, "graph capture");
    require_capturable(stream);
    if (!out) fail_arg("out", "non-null", "null");
    *out = nullptr;
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(err, "cudaGraphInstantiate");
    *out = exec;
  });
}

FI4J_API int fi4j_graph_launch(int device, void* graph_exec, void* stream) {
  return guarded([&] {
    require_cuda_device(device, "graph launch");
    if (!graph_exec) fail_arg("graph_exec", "non-null", "null");
    check_stream(device, stream);
    check_cuda(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph_exec), static_cast<cudaStream_t>(stream)),
               "cudaGraphLaunch");
  });
}

FI4J_API int fi4j_graph_destroy(int device, void* graph_exec) {
  return guarded([&] {
    if (!graph_exec) return;
    require_cuda_device(device, "graph destruction");
    check_cuda(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph_exec)), "cudaGraphExecDestroy");
  });
}

FI4J_API int fi4j_fill_random(int device, void* ptr, int32_t dtype, int64_t n, uint64_t seed, float scale,
                              void* stream) {
  return guarded([&] {
    require(n >= 0, "n", ">= 0", n);
    if (n == 0) return;
    if (!ptr) fail_arg("ptr", "non-null", "null");
    if (dtype != FI4J_F16 && dtype != FI4J_BF16 && dtype != FI4J_F32)
      fail_arg("dtype", "F16, BF16 or F32", dtype_name(dtype));
    if (device == FI4J_DEVICE_CPU) {
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(i)));
        const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
        store_from_float(ptr, dtype, i, (2.f * u - 1.f) * scale);
      }
      return;
    }
    use_device(device);
    check_stream(device, stream);
    cudaGetLastError();
    check_cuda(launch_fill_random(ptr, static_cast<DType>(dtype), n, seed, scale, static_cast<cudaStream_t>(stream)),
               "random fill launch");
  });
}

}  // extern "C"
