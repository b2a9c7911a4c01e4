#include "jit_prefill_source.h"

#include "fi4j/prefill_geometry.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit_decode_source.h"
#include "status.h"

namespace fi4j {
namespace jit {
namespace {

const char* type_name(const PrefillKernelSpec& spec) { return spec.dtype == FI4J_BF16 ? "bfloat16_t" : "half_t"; }

const char* boolean(bool b) { return b ? "true" : "false"; }

std::string template_args(const PrefillKernelSpec& spec, int kM) {
  return std::string("fi4j::") + type_name(spec) + ", " + std::to_string(spec.head_dim) + ", " + std::to_string(kM) +
         ", " + boolean(spec.soft_cap) + ", " + boolean(spec.rope);
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

std::vector<int> prefill_row_tile_variants(const PrefillKernelSpec& spec) {
  check_prefill_spec(spec);
  // kM = 2 is what a call asking for 128-row blocks gets where the configuration allows it.
  if (prefill_geometry::row_tiles_per_warp(spec.head_dim, spec.rope, 128) == 2) return {1, 2};
  return {1};
}

std::string prefill_name_expression(const PrefillKernelSpec& spec, int kM) {
  return "fi4j::prefill::batch_prefill_kernel<" + template_args(spec, kM) + ">";
}

std::string prefill_kernel_symbol(const PrefillKernelSpec& spec, int kM) {
  check_prefill_spec(spec);
  // void fi4j::prefill::batch_prefill_kernel<T, D, kM, cap, rope>(fi4j::PrefillParams); S_ = fi4j.
  return "_ZN" + source_name("fi4j") + source_name("prefill") + source_name("batch_prefill_kernel") + "INS_" +
         source_name(type_name(spec)) + "ELi" + std::to_string(spec.head_dim) + "ELi" + std::to_string(kM) + "ELb" +
         (spec.soft_cap ? "1" : "0") + "ELb" + (spec.rope ? "1" : "0") + "EEEvNS_" + source_name("PrefillParams") +
         "E";
}

std::string prefill_source(const PrefillKernelSpec& spec) {
  check_prefill_spec(spec);
  const std::string d = std::to_string(spec.head_dim);
  const std::string rope = boolean(spec.rope);
  std::string s;
  s += "// flashinfer4j run-time compiled prefill: the tensor-core kernel of one configuration, per row-tile count.\n";
  s += "#include \"fi4j/prefill.cuh\"\n#include \"fi4j/prefill_geometry.h\"\n\n";
  s += "static_assert(fi4j::prefill::kThreads == fi4j::prefill_geometry::kThreads, \"prefill block size\");\n";
  for (int kM : prefill_row_tile_variants(spec)) {
    const std::string m = std::to_string(kM);
    s += "static_assert(fi4j::prefill::smem_bytes<" + d + ", " + m + ", " + rope +
         ">() == fi4j::prefill_geometry::smem_bytes(" + d + ", " + m + ", " + rope + "), \"prefill shared memory\");\n";
    s += "static_assert(fi4j::prefill::Geometry<" + d + ", " + m + ">::kRowsTile == fi4j::prefill_geometry::rows_tile(" +
         m + "), \"prefill rows per block\");\n";
    s += "template __global__ void fi4j::prefill::batch_prefill_kernel<" + template_args(spec, kM) +
         ">(const __grid_constant__ fi4j::PrefillParams);\n";
  }
  return s;
}

Config prefill_config(const PrefillKernelSpec& spec, const std::string& arch) {
  check_prefill_spec(spec);
  std::string inputs = prefill_source(spec);
  for (const auto& o : nvrtc_options(arch)) inputs += "\n" + o;
  Config c;
  c["dtype"] = spec.dtype == FI4J_BF16 ? "bf16" : "f16";
  c["head_dim"] = std::to_string(spec.head_dim);
  c["soft_cap"] = spec.soft_cap ? "1" : "0";
  c["rope"] = spec.rope ? "1" : "0";
  c["path"] = "tc";  // tensor cores
  c["src"] = hex16(fnv1a64(inputs) ^ embedded_headers_hash());
  return c;
}

std::string prefill_key(const PrefillKernelSpec& spec, const std::string& arch) {
  return make_key(fi4j_version(), arch, "prefill", prefill_config(spec, arch));
}

}  // namespace jit
}  // namespace fi4j
