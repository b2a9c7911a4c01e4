#include "attention/prefill_jit_source.h"

#include "fi4j/attention/prefill_geometry.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/module_source.h"
#include "core/status.h"

namespace fi4j {
namespace jit {
namespace {

const char* type_name(const PrefillKernelSpec& spec) { return spec.dtype == FI4J_BF16 ? "bfloat16_t" : "half_t"; }

const char* boolean(bool b) { return b ? "true" : "false"; }

std::string template_args(const PrefillKernelSpec& spec, TileShape shape) {
  return std::string("fi4j::") + type_name(spec) + ", " + std::to_string(spec.head_dim) + ", " +
         std::to_string(shape.row_tiles) + ", " + std::to_string(shape.warps) + ", " + boolean(spec.soft_cap) + ", " +
         boolean(spec.rope);
}

/// <length><name>, the Itanium form of one unqualified name.
std::string source_name(const std::string& name) { return std::to_string(name.size()) + name; }

}  // namespace

void check_prefill_spec(const PrefillKernelSpec& spec) {
  if (spec.dtype != FI4J_F16 && spec.dtype != FI4J_BF16)
    throw Error(FI4J_ERR_UNSUPPORTED, "dtype " + std::to_string(spec.dtype) +
                                          " has no run-time compiled prefill (supported: F16, BF16)");
  if (!prefill_geometry::head_dim_supported(spec.head_dim))
    throw Error(FI4J_ERR_UNSUPPORTED, "head_dim " + std::to_string(spec.head_dim) +
                                          " has no run-time compiled prefill (multiples of 16 from 16 to 256)");
}

std::vector<TileShape> prefill_shape_variants(const PrefillKernelSpec& spec) {
  check_prefill_spec(spec);
  std::vector<TileShape> shapes;
  for (int cta : {64, 128, 256}) {
    const TileShape t = prefill_geometry::tile_shape(spec.head_dim, spec.rope, cta);
    bool seen = false;
    for (const TileShape& u : shapes) seen = seen || (u.warps == t.warps && u.row_tiles == t.row_tiles);
    if (!seen) shapes.push_back(t);
  }
  return shapes;
}

std::string prefill_name_expression(const PrefillKernelSpec& spec, TileShape shape) {
  return "fi4j::prefill::batch_prefill_kernel<" + template_args(spec, shape) + ">";
}

std::string prefill_kernel_symbol(const PrefillKernelSpec& spec, TileShape shape) {
  check_prefill_spec(spec);
  // void fi4j::prefill::batch_prefill_kernel<T, D, kM, kW, cap, rope>(fi4j::PrefillParams); S_ = fi4j.
  return "_ZN" + source_name("fi4j") + source_name("prefill") + source_name("batch_prefill_kernel") + "INS_" +
         source_name(type_name(spec)) + "ELi" + std::to_string(spec.head_dim) + "ELi" +
         std::to_string(shape.row_tiles) + "ELi" + std::to_string(shape.warps) + "ELb" + (spec.soft_cap ? "1" : "0") +
         "ELb" + (spec.rope ? "1" : "0") + "EEEvNS_" + source_name("PrefillParams") + "E";
}

std::string prefill_merge_name_expression(const PrefillKernelSpec& spec) {
  return std::string("fi4j::prefill::batch_prefill_merge_kernel<fi4j::") + type_name(spec) + ">";
}

std::string prefill_merge_symbol(const PrefillKernelSpec& spec) {
  check_prefill_spec(spec);
  // void fi4j::prefill::batch_prefill_merge_kernel<T>(fi4j::PrefillParams, int).
  return "_ZN" + source_name("fi4j") + source_name("prefill") + source_name("batch_prefill_merge_kernel") + "INS_" +
         source_name(type_name(spec)) + "EEEvNS_" + source_name("PrefillParams") + "Ei";
}

std::string prefill_source(const PrefillKernelSpec& spec) {
  check_prefill_spec(spec);
  const std::string d = std::to_string(spec.head_dim);
  const std::string rope = boolean(spec.rope);
  std::string s;
  s += "// flashinfer4j run-time compiled prefill: the tensor-core kernel of one configuration, per row-tile count.\n";
  s += "#include \"fi4j/attention/prefill.cuh\"\n#include \"fi4j/attention/prefill_geometry.h\"\n\n";
  s += "static_assert(fi4j::prefill::kMergeThreads == fi4j::prefill_geometry::kMergeThreads, \"merge block\");\n";
  for (const TileShape& t : prefill_shape_variants(spec)) {
    const std::string m = std::to_string(t.row_tiles), w = std::to_string(t.warps);
    const std::string shape = "fi4j::prefill_geometry::TileShape{" + w + ", " + m + "}";
    s += "static_assert(fi4j::prefill::smem_bytes<" + d + ", " + m + ", " + w + ", " + rope +
         ">() == fi4j::prefill_geometry::smem_bytes(" + d + ", " + shape + ", " + rope + "), \"prefill shared memory\");\n";
    s += "static_assert(fi4j::prefill::Geometry<" + d + ", " + m + ", " + w + ">::kRowsTile == " + shape +
         ".rows(), \"prefill rows per block\");\n";
    s += "template __global__ void fi4j::prefill::batch_prefill_kernel<" + template_args(spec, t) +
         ">(const __grid_constant__ fi4j::PrefillParams);\n";
  }
  s += "template __global__ void " + prefill_merge_name_expression(spec) +
       "(const __grid_constant__ fi4j::PrefillParams, int);\n";
  return s;
}

Config prefill_config(const PrefillKernelSpec& spec, const std::string& arch) {
  check_prefill_spec(spec);
  return kernel_config(spec.dtype, spec.head_dim, spec.soft_cap, spec.rope, "tc" /* tensor cores */,
                       prefill_source(spec), arch);
}

std::string prefill_key(const PrefillKernelSpec& spec, const std::string& arch) {
  return make_key(fi4j_version(), arch, "prefill", prefill_config(spec, arch));
}

}  // namespace jit
}  // namespace fi4j
