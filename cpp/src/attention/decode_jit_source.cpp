#include "attention/decode_jit_source.h"

#include "attention/kernel_table.h"
#include "fi4j/attention/decode_geometry.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/module_source.h"
#include "core/status.h"

namespace fi4j {
namespace jit {

const char* const kDecodeEntry = "fi4j_jit_decode";
const char* const kMergeEntry = "fi4j_jit_decode_merge";

void check_decode_spec(const DecodeKernelSpec& spec) {
  if (spec.dtype != FI4J_F16 && spec.dtype != FI4J_BF16)
    throw Error(FI4J_ERR_UNSUPPORTED, "dtype " + std::to_string(spec.dtype) +
                                          " has no run-time compiled decode (supported: F16, BF16)");
  if (!decode::head_dim_supported(spec.head_dim))
    throw Error(FI4J_ERR_UNSUPPORTED, "head_dim " + std::to_string(spec.head_dim) +
                                          " has no run-time compiled decode (multiples of 16 from 16 to 256)");
}

std::string decode_source(const DecodeKernelSpec& spec) {
  check_decode_spec(spec);
  const char* type = spec.dtype == FI4J_BF16 ? "fi4j::bfloat16_t" : "fi4j::half_t";
  std::string s;
  s += "// flashinfer4j run-time compiled decode: CUDA-core kernel and split-KV merge of one configuration.\n";
  s += "#include \"fi4j/attention/decode.cuh\"\n#include \"fi4j/attention/decode_merge.cuh\"\n\nnamespace {\n";
  s += std::string("using T = ") + type + ";\n";
  s += "constexpr int kHeadDim = " + std::to_string(spec.head_dim) + ";\n";
  s += std::string("constexpr bool kSoftCap = ") + (spec.soft_cap ? "true" : "false") + ";\n";
  s += std::string("constexpr bool kRope = ") + (spec.rope ? "true" : "false") + ";\n}  // namespace\n\n";
  s += "extern \"C\" __global__ void __launch_bounds__(fi4j::decode::kThreads, "
       "fi4j::decode::min_blocks_per_sm(kRope))\n";
  s += std::string("    ") + kDecodeEntry + "(const __grid_constant__ fi4j::DecodeParams p) {\n";
  s += "  fi4j::decode::batch_decode_block<T, kHeadDim, kSoftCap, kRope>(p);\n}\n\n";
  s += "extern \"C\" __global__ void __launch_bounds__(fi4j::decode_merge::kThreads)\n";
  s += std::string("    ") + kMergeEntry + "(const __grid_constant__ fi4j::DecodeParams p) {\n";
  s += "  fi4j::decode_merge::merge_block<T, kHeadDim>(p);\n}\n";
  return s;
}

Config decode_config(const DecodeKernelSpec& spec, const std::string& arch) {
  check_decode_spec(spec);
  return kernel_config(spec.dtype, spec.head_dim, spec.soft_cap, spec.rope, "cc" /* CUDA cores */,
                       decode_source(spec), arch);
}

std::string decode_key(const DecodeKernelSpec& spec, const std::string& arch) {
  return make_key(fi4j_version(), arch, "decode", decode_config(spec, arch));
}


}  // namespace jit
}  // namespace fi4j
