// Run-time compiled prefill, the host-only half: the configuration of one kernel module, its cache key, its
// generated source and the kernel names in it. No CUDA runtime here (tested on CI); loading and launching are in
// prefill_jit.cpp, compilation in jit/module_source.h (nvrtc_compile).
#pragma once

#include <string>
#include <vector>

#include "fi4j/attention/prefill_geometry.h"
#include "jit/module_source.h"

namespace fi4j {
namespace jit {

/// One run-time compiled prefill module: the tensor-core kernel (prefill.cuh) of this configuration, instantiated
/// for every block shape a call may pick (prefill_geometry::tile_shape: 4x1 always; 8x1 without RoPE; 8x2 for head
/// dims <= 128 without RoPE), and the split-KV merge kernel. Mask mode, window, scales and the soft cap's value are
/// run-time arguments.
struct PrefillKernelSpec {
  int dtype = 0;         // fi4j_dtype: F16 or BF16
  int head_dim = 0;      // prefill_geometry::head_dim_supported
  bool soft_cap = false;
  bool rope = false;     // pos_encoding ROPE_LLAMA
};

/// Validates the spec (dtype F16/BF16, supported head dim); throws Error(UNSUPPORTED) naming what is wrong.
void check_prefill_spec(const PrefillKernelSpec& spec);

using prefill_geometry::TileShape;

/// The block shapes the module holds a kernel for.
std::vector<TileShape> prefill_shape_variants(const PrefillKernelSpec& spec);

/// The C++ name of the kernel instantiation for a block shape ("fi4j::prefill::batch_prefill_kernel<
/// fi4j::bfloat16_t, 96, 1, 4, false, false>": T, D, row tiles, warps, soft cap, rope), as NVRTC's name
/// expressions take it.
std::string prefill_name_expression(const PrefillKernelSpec& spec, TileShape shape);

/// Its symbol in the cubin (Itanium mangling of the NVRTC branch's types, where T is fi4j::half_t or
/// fi4j::bfloat16_t). The loader looks kernels up by it, also for cubins from the disk cache, when no NVRTC is
/// at hand to lower the name; a compile checks it against NVRTC's lowered name.
std::string prefill_kernel_symbol(const PrefillKernelSpec& spec, TileShape shape);

/// The same for the split-KV merge kernel (fi4j::prefill::batch_prefill_merge_kernel<T>).
std::string prefill_merge_name_expression(const PrefillKernelSpec& spec);
std::string prefill_merge_symbol(const PrefillKernelSpec& spec);

/// The configuration that the cache key covers: dtype, head_dim, soft cap, rope, path (tensor cores) and a hash of
/// the generated source, the embedded headers and the compile options.
Config prefill_config(const PrefillKernelSpec& spec, const std::string& arch);
/// make_key(library version, arch, "prefill", prefill_config(...)).
std::string prefill_key(const PrefillKernelSpec& spec, const std::string& arch);

/// The generated translation unit of the module (includes the embedded headers): explicit instantiations of the
/// kernel for each block shape and of the merge kernel, and static_asserts that prefill_geometry.h (the launcher's arithmetic) matches the kernel.
std::string prefill_source(const PrefillKernelSpec& spec);

}  // namespace jit
}  // namespace fi4j
