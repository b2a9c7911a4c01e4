#include "attention/prefill_jit.h"

#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "core/cuda_util.h"
#include "fi4j/attention/prefill_geometry.h"
#include "jit/jit_module.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

namespace fi4j {
namespace jit {
namespace {

using prefill_geometry::TileShape;

struct LoadedPrefill {
  std::string key;
  cudaLibrary_t library = nullptr;  // never unloaded: kernels may sit in captured graphs for the process's life
  cudaKernel_t kernel[4] = {nullptr, nullptr, nullptr, nullptr};  // by slot(shape)
  cudaKernel_t merge = nullptr;
};

/// Index of a block shape in LoadedPrefill::kernel.
int slot(prefill_geometry::TileShape t) { return (t.warps == 8 ? 2 : 0) + t.row_tiles - 1; }

using SpecKey = std::tuple<int, int, bool, bool, int>;  // dtype, head_dim, soft cap, rope, device

std::mutex g_mutex;
std::map<SpecKey, LoadedPrefill>* g_loaded = new std::map<SpecKey, LoadedPrefill>();  // never freed (exit order)

const LoadedPrefill& get_loaded(const PrefillKernelSpec& spec, int device, PrepareInfo* info) {
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
  check_prefill_spec(spec);
  const NvrtcApi* api = nvrtc();
  const ComputeCapability cc = compute_capability(device);
  const std::string arch = arch_name(cc.major, cc.minor);
  const std::string key = prefill_key(spec, arch);
  const std::vector<TileShape> variants = prefill_shape_variants(spec);
  double compile_ms = 0;
  KernelCache::Origin origin = KernelCache::Origin::Memory;
  auto cubin = kernel_cache().get_or_compile(
      key,
      [&] {
        // Only a missing cubin needs the compiler: a cached kernel runs without NVRTC.
        if (api == nullptr)
          throw Error(FI4J_ERR_UNSUPPORTED, "prefill kernel " + key + " is not in the cache and needs NVRTC: " +
                                                nvrtc_unavailable_reason());
        std::vector<std::string> names;
        for (const TileShape& t : variants) names.push_back(prefill_name_expression(spec, t));
        names.push_back(prefill_merge_name_expression(spec));
        std::vector<std::string> lowered;
        const auto c0 = std::chrono::steady_clock::now();
        Bytes b = nvrtc_compile(*api, prefill_source(spec), key + ".cu", arch, names, &lowered);
        compile_ms = ms_since(c0);
        // The loader finds kernels by prefill_kernel_symbol (also in cubins from the disk cache): it must be the
        // name NVRTC gave them.
        for (size_t i = 0; i < names.size(); ++i) {
          const std::string expected =
              i < variants.size() ? prefill_kernel_symbol(spec, variants[i]) : prefill_merge_symbol(spec);
          if (lowered[i] != expected)
            throw Error(FI4J_ERR_INTERNAL, "NVRTC named " + names[i] + " " + lowered[i] + ", expected " + expected);
        }
        return b;
      },
      &origin);

  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_loaded->find(sk);
  bool loaded_now = false;
  if (it == g_loaded->end()) {
    DeviceGuard guard(device);
    LoadedPrefill m;
    m.key = key;
    check_cuda(cudaLibraryLoadData(&m.library, cubin->data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
               "cudaLibraryLoadData (run-time compiled prefill)");
    cudaError_t err = cudaSuccess;
    for (const TileShape& t : variants) {
      cudaKernel_t& k = m.kernel[slot(t)];
      err = cudaLibraryGetKernel(&k, m.library, prefill_kernel_symbol(spec, t).c_str());
      // Above the 48 KB default: opt in once, when the module is loaded into the device.
      if (err == cudaSuccess)
        err = cudaFuncSetAttribute(reinterpret_cast<const void*>(k), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   prefill_geometry::smem_bytes(spec.head_dim, t, spec.rope));
      if (err != cudaSuccess) break;
    }
    if (err == cudaSuccess) err = cudaLibraryGetKernel(&m.merge, m.library, prefill_merge_symbol(spec).c_str());
    if (err != cudaSuccess) {
      cudaLibraryUnload(m.library);
      check_cuda(err, "loading run-time compiled prefill");
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

PrepareInfo prepare_prefill(const PrefillKernelSpec& spec, int device) {
  PrepareInfo info;
  get_loaded(spec, device, &info);
  return info;
}

cudaError_t launch_batch_prefill_jit(const PrefillParams& p, cudaStream_t stream) {
  prefill_geometry::LaunchShape s{};
  const prefill_geometry::LaunchCheck check = prefill_geometry::launch_shape(p, &s);
  if (check == prefill_geometry::LaunchCheck::Unsupported) return cudaErrorNotSupported;
  PrefillKernelSpec spec;
  spec.dtype = static_cast<int>(p.dtype);
  spec.head_dim = p.head_dim;
  spec.soft_cap = p.variant.logits_soft_cap > 0.f;
  spec.rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const LoadedPrefill& m = get_loaded(spec, device, nullptr);
  if (check == prefill_geometry::LaunchCheck::Nothing) return cudaSuccess;
  const cudaKernel_t kernel = m.kernel[slot(s.shape)];
  if (kernel == nullptr || m.merge == nullptr) return cudaErrorNotSupported;  // not reached: the module holds all
  PrefillParams q = p;
  q.plan.cta_tile_q = s.cta_tile_q;
  if (!s.split) q.plan.num_work = 0;  // a split plan for another block size (or none): run unsplit
  const dim3 grid(static_cast<unsigned>(s.tiles), static_cast<unsigned>(s.kv_heads));
  void* args[] = {&q};
  err = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, dim3(s.shape.threads()), args,
                         static_cast<size_t>(s.smem_bytes), stream);
  if (err != cudaSuccess || !s.split) return err;
  int rows = s.shape.rows();
  void* merge_args[] = {&q, &rows};
  return cudaLaunchKernel(reinterpret_cast<const void*>(m.merge), grid, dim3(prefill_geometry::kMergeThreads),
                          merge_args, 0, stream);
}

}  // namespace jit
}  // namespace fi4j
