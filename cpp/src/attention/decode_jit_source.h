// Run-time compiled decode, the host-only half: the configuration of one kernel module, its cache key and its
// generated source (compiled by jit/module_source.h). No CUDA runtime here (tested on CI); loading and launching
// are in decode_jit.cpp.
#pragma once

#include <string>
#include <vector>

#include "jit/module_source.h"

namespace fi4j {
namespace jit {

/// One run-time compiled decode module: the CUDA-core kernel (decode.cuh) for this configuration and the split-KV
/// merge (decode_merge.cuh) of its head dim, as extern "C" entries kDecodeEntry and kMergeEntry.
struct DecodeKernelSpec {
  int dtype = 0;         // fi4j_dtype: F16 or BF16
  int head_dim = 0;      // decode::head_dim_supported
  bool soft_cap = false;
  bool rope = false;     // pos_encoding ROPE_LLAMA
};

extern const char* const kDecodeEntry;
extern const char* const kMergeEntry;

/// Validates the spec (dtype F16/BF16, supported head dim); throws Error(UNSUPPORTED) naming what is wrong.
void check_decode_spec(const DecodeKernelSpec& spec);

/// The configuration that the cache key covers: dtype, head_dim, soft cap, rope, path (cuda_cores) and a hash of
/// the generated source, the embedded headers and the compile options, so that a changed kernel never loads a
/// stale cubin of the same library version.
Config decode_config(const DecodeKernelSpec& spec, const std::string& arch);
/// make_key(library version, arch, "decode", decode_config(...)).
std::string decode_key(const DecodeKernelSpec& spec, const std::string& arch);

/// The generated translation unit of the module (includes the embedded headers).
std::string decode_source(const DecodeKernelSpec& spec);


}  // namespace jit
}  // namespace fi4j
