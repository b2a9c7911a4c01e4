#include "attention/prefill_jit.h"

#include "fi4j/attention/prefill_geometry.h"
#include "jit/module_loader.h"

namespace fi4j {
namespace jit {
namespace {

using prefill_geometry::TileShape;

/// Index of a block shape in a prefill module's kernels (4x1, 4x2, 8x1, 8x2), then the merge kernel.
int slot(prefill_geometry::TileShape t) { return (t.warps == 8 ? 2 : 0) + t.row_tiles - 1; }
constexpr int kShapeSlots = 4;
constexpr int kMergeSlot = kShapeSlots;

/// A prefill module for the shared loader: one kernel per block shape of prefill_shape_variants (each with its
/// dynamic shared memory opted in) and the merge, named by name expressions that must lower to the symbols the
/// loader looks up.
class PrefillRecipe final : public ModuleRecipe {
 public:
  explicit PrefillRecipe(const PrefillKernelSpec& spec) : spec_(spec) {}
  void check() const override { check_prefill_spec(spec_); }
  std::string key(const std::string& arch) const override { return prefill_key(spec_, arch); }
  std::string source() const override { return prefill_source(spec_); }
  std::vector<std::pair<std::string, std::string>> name_expressions() const override {
    std::vector<std::pair<std::string, std::string>> names;
    for (const TileShape& t : prefill_shape_variants(spec_))
      names.emplace_back(prefill_name_expression(spec_, t), prefill_kernel_symbol(spec_, t));
    names.emplace_back(prefill_merge_name_expression(spec_), prefill_merge_symbol(spec_));
    return names;
  }
  std::vector<KernelEntry> kernels() const override {
    std::vector<KernelEntry> k(kShapeSlots + 1);
    for (const TileShape& t : prefill_shape_variants(spec_))
      k[slot(t)] = {prefill_kernel_symbol(spec_, t), prefill_geometry::smem_bytes(spec_.head_dim, t, spec_.rope)};
    k[kMergeSlot] = {prefill_merge_symbol(spec_), 0};
    return k;
  }

 private:
  const PrefillKernelSpec& spec_;
};

ModuleLoader* g_modules = new ModuleLoader("prefill");  // never freed (exit order)

uint64_t spec_id(const PrefillKernelSpec& s) { return kernel_id(s.dtype, s.head_dim, s.soft_cap, s.rope); }

}  // namespace

const LoadedModule& load_prefill(const PrefillKernelSpec& spec, int device, PrepareInfo* info) {
  return g_modules->get(spec_id(spec), device, PrefillRecipe(spec), info);
}

cudaError_t launch_prefill_module(const LoadedModule& m, const PrefillParams& p, cudaStream_t stream) {
  prefill_geometry::LaunchShape s{};
  const prefill_geometry::LaunchCheck check = prefill_geometry::launch_shape(p, &s);
  if (check == prefill_geometry::LaunchCheck::Unsupported) return cudaErrorNotSupported;
  if (check == prefill_geometry::LaunchCheck::Nothing) return cudaSuccess;
  const cudaKernel_t kernel = m.kernels[slot(s.shape)].kernel;
  const cudaKernel_t merge = m.kernels[kMergeSlot].kernel;
  if (kernel == nullptr || merge == nullptr) return cudaErrorNotSupported;  // not reached: the module holds all
  PrefillParams q = p;
  q.plan.cta_tile_q = s.cta_tile_q;
  if (!s.split) q.plan.num_work = 0;  // a split plan for another block size (or none): run unsplit
  const dim3 grid(static_cast<unsigned>(s.tiles), static_cast<unsigned>(s.kv_heads));
  void* args[] = {&q};
  cudaError_t err = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, dim3(s.shape.threads()), args,
                                     static_cast<size_t>(s.smem_bytes), stream);
  if (err != cudaSuccess || !s.split) return err;
  int rows = s.shape.rows();
  void* merge_args[] = {&q, &rows};
  return cudaLaunchKernel(reinterpret_cast<const void*>(merge), grid, dim3(prefill_geometry::kMergeThreads),
                          merge_args, 0, stream);
}

}  // namespace jit
}  // namespace fi4j
