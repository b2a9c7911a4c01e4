#include "attention/decode_jit.h"

#include "fi4j/attention/decode_geometry.h"
#include "fi4j/common/launch_util.h"
#include "jit/module_loader.h"

namespace fi4j {
namespace jit {
namespace {

/// Kernel slots of a decode module.
constexpr int kDecodeSlot = 0;
constexpr int kMergeSlot = 1;

/// A decode module for the shared loader: the CUDA-core kernel (dynamic shared memory opted in) and the merge.
class DecodeRecipe final : public ModuleRecipe {
 public:
  explicit DecodeRecipe(const DecodeKernelSpec& spec) : spec_(spec) {}
  void check() const override { check_decode_spec(spec_); }
  std::string key(const std::string& arch) const override { return decode_key(spec_, arch); }
  std::string source() const override { return decode_source(spec_); }
  std::vector<KernelEntry> kernels() const override {
    return {{kDecodeEntry, decode::decode_smem_bytes(spec_.head_dim, spec_.rope)}, {kMergeEntry, 0}};
  }

 private:
  const DecodeKernelSpec& spec_;
};

ModuleLoader* g_modules = new ModuleLoader("decode");  // never freed (exit order)

uint64_t spec_id(const DecodeKernelSpec& s) { return kernel_id(s.dtype, s.head_dim, s.soft_cap, s.rope); }

}  // namespace

const LoadedModule& load_decode(const DecodeKernelSpec& spec, int device, PrepareInfo* info) {
  return g_modules->get(spec_id(spec), device, DecodeRecipe(spec), info);
}

cudaError_t launch_decode_module(const LoadedModule& m, const DecodeParams& p, cudaStream_t stream) {
  if (p.kv.batch_size == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  const bool split = p.work.num_work > 0;
  const int items = split ? p.work.num_work : p.kv.batch_size;
  const LoadedKernel& decode = m.kernels[kDecodeSlot];
  void* args[] = {const_cast<DecodeParams*>(&p)};
  cudaError_t err = cudaLaunchKernel(reinterpret_cast<const void*>(decode.kernel),
                                     dim3(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads)),
                                     dim3(decode::kThreads), args, static_cast<size_t>(decode.smem_bytes), stream);
  if (err != cudaSuccess || !split) return err;
  // As the ahead-of-time merge: programmatic dependent launch on sm_90+ (the kernel waits on griddepcontrol).
  const PdlLaunchConfig merge_launch(dim3(static_cast<unsigned>(p.kv.batch_size),
                                          static_cast<unsigned>(decode_merge::head_blocks(
                                              p.kv.head_dim, p.num_qo_heads, p.work.num_work, p.kv.batch_size))),
                                     dim3(decode_merge::kThreads), stream, pdl_supported(m.cc_major));
  return cudaLaunchKernelExC(&merge_launch.config, reinterpret_cast<const void*>(m.kernels[kMergeSlot].kernel),
                             args);
}

}  // namespace jit
}  // namespace fi4j
