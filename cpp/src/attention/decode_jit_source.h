// Run-time compiled decode, the host-only half: the configuration of one kernel module, its cache key, its
// generated source and its compilation with NVRTC. No CUDA runtime here (tested on CI); loading and launching
// are in decode_jit.cpp.
#pragma once

#include <string>
#include <vector>

#include "jit/jit_cache.h"
#include "jit/nvrtc_loader.h"

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

/// The architecture name NVRTC compiles for, "sm_<major><minor>" (e.g. sm_90 for compute capability 9.0).
std::string arch_name(int major, int minor);

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

/// NVRTC options for arch: C++17, the architecture (cubin), relaxed constexpr, no fast math.
std::vector<std::string> nvrtc_options(const std::string& arch);

/// The cache configuration of one kernel module: dtype, head_dim, soft_cap, rope, path ("cc" or "tc") and "src", a
/// hash of the generated source, the NVRTC options for arch and the embedded headers (any change recompiles).
Config kernel_config(int dtype, int head_dim, bool soft_cap, bool rope, const char* path, const std::string& source,
                     const std::string& arch);

/// FNV-1a of all embedded headers (name and text).
uint64_t embedded_headers_hash();

/// Compiles source (named name, for the log) with NVRTC for arch and returns the cubin. Throws
/// Error(FI4J_ERR_INTERNAL) with NVRTC's log when compilation fails. Each of name_expressions (a C++ name such as
/// a template kernel's instantiation) is registered with the program, and its lowered (symbol) name is stored at
/// the same index of *lowered when lowered is not null.
Bytes nvrtc_compile(const NvrtcApi& api, const std::string& source, const std::string& name,
                    const std::string& arch, const std::vector<std::string>& name_expressions = {},
                    std::vector<std::string>* lowered = nullptr);

}  // namespace jit
}  // namespace fi4j
