#include "attention/decode_jit.h"

#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "core/cuda_util.h"
#include "fi4j/attention/decode_geometry.h"
#include "fi4j/common/launch_util.h"
#include "jit/jit_module.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

namespace fi4j {
namespace jit {
namespace {

struct LoadedDecode {
  std::string key;
  cudaLibrary_t library = nullptr;  // never unloaded: kernels may sit in captured graphs for the process's life
  cudaKernel_t decode = nullptr;
  cudaKernel_t merge = nullptr;
  int smem_bytes = 0;
  bool pdl = false;  // programmatic dependent launch of the merge (sm_90+)
};

using SpecKey = std::tuple<int, int, bool, bool, int>;  // dtype, head_dim, soft cap, rope, device

std::mutex g_mutex;
std::map<SpecKey, LoadedDecode>* g_loaded = new std::map<SpecKey, LoadedDecode>();  // never freed (exit order)

const LoadedDecode& get_loaded(const DecodeKernelSpec& spec, int device, PrepareInfo* info) {
  const auto t0 = std::chrono::steady_clock::now();
  const SpecKey sk{spec.dtype, spec.head_dim, spec.soft_cap, spec.rope, device};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_loaded->find(sk);
    if (it != g_loaded->end()) {
      if (info != nullptr) {
        info->key = it->second.key;
        info->total_ms = ms_since(t0);
      }
      return it->second;
    }
  }
  check_decode_spec(spec);
  const NvrtcApi* api = nvrtc();
  const ComputeCapability cc = compute_capability(device);
  const std::string arch = arch_name(cc.major, cc.minor);
  const std::string key = decode_key(spec, arch);
  double compile_ms = 0;
  KernelCache::Origin origin = KernelCache::Origin::Memory;
  auto cubin = kernel_cache().get_or_compile(
      key,
      [&] {
        // Only a missing cubin needs the compiler: a cached kernel runs without NVRTC.
        if (api == nullptr)
          throw Error(FI4J_ERR_UNSUPPORTED, "decode kernel " + key + " is not in the cache and needs NVRTC: " +
                                                nvrtc_unavailable_reason());
        const auto c0 = std::chrono::steady_clock::now();
        Bytes b = nvrtc_compile(*api, decode_source(spec), key + ".cu", arch);
        compile_ms = ms_since(c0);
        return b;
      },
      &origin);

  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_loaded->find(sk);
  bool loaded_now = false;
  if (it == g_loaded->end()) {
    DeviceGuard guard(device);
    LoadedDecode m;
    m.key = key;
    m.smem_bytes = decode::decode_smem_bytes(spec.head_dim, spec.rope);
    m.pdl = pdl_supported(cc.major);
    check_cuda(cudaLibraryLoadData(&m.library, cubin->data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
               "cudaLibraryLoadData (run-time compiled decode)");
    cudaError_t err = cudaLibraryGetKernel(&m.decode, m.library, kDecodeEntry);
    if (err == cudaSuccess) err = cudaLibraryGetKernel(&m.merge, m.library, kMergeEntry);
    // Above the 48 KB default: opt in once, when the module is loaded into the device.
    if (err == cudaSuccess)
      err = cudaFuncSetAttribute(reinterpret_cast<const void*>(m.decode), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 m.smem_bytes);
    if (err != cudaSuccess) {
      cudaLibraryUnload(m.library);
      check_cuda(err, "loading run-time compiled decode");
    }
    it = g_loaded->emplace(sk, m).first;
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

}  // namespace

PrepareInfo prepare_decode(const DecodeKernelSpec& spec, int device) {
  PrepareInfo info;
  get_loaded(spec, device, &info);
  return info;
}

cudaError_t launch_batch_decode_jit(const DecodeParams& p, cudaStream_t stream) {
  DecodeKernelSpec spec;
  spec.dtype = static_cast<int>(p.dtype);
  spec.head_dim = p.kv.head_dim;
  spec.soft_cap = p.variant.logits_soft_cap > 0.f;
  spec.rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const LoadedDecode& m = get_loaded(spec, device, nullptr);
  if (p.kv.batch_size == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  const bool split = p.work.num_work > 0;
  const int items = split ? p.work.num_work : p.kv.batch_size;
  void* args[] = {const_cast<DecodeParams*>(&p)};
  err = cudaLaunchKernel(reinterpret_cast<const void*>(m.decode),
                         dim3(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads)),
                         dim3(decode::kThreads), args, static_cast<size_t>(m.smem_bytes), stream);
  if (err != cudaSuccess || !split) return err;
  // As the ahead-of-time merge: programmatic dependent launch on sm_90+ (the kernel waits on griddepcontrol).
  const PdlLaunchConfig merge_launch(dim3(static_cast<unsigned>(p.kv.batch_size),
                                    static_cast<unsigned>(decode_merge::head_blocks(p.kv.head_dim, p.num_qo_heads,
                                                                                    p.work.num_work, p.kv.batch_size))),
                               dim3(decode_merge::kThreads), stream, m.pdl);
  return cudaLaunchKernelExC(&merge_launch.config, reinterpret_cast<const void*>(m.merge), args);
}

}  // namespace jit
}  // namespace fi4j
