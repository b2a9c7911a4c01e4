// What the run-time compiled modules of every op family share on the host, without the CUDA runtime (tested on
// CI): the architecture name, the NVRTC options, the cache configuration with its source hash, and the compile.
// A family writes its module's source and key on top (e.g. attention/decode_jit_source.h); the loading is
// jit/module_loader.h's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jit/jit_cache.h"
#include "jit/nvrtc_loader.h"

namespace fi4j {
namespace jit {

/// The architecture name NVRTC compiles for, "sm_<major><minor>" (e.g. sm_90 for compute capability 9.0).
std::string arch_name(int major, int minor);

/// NVRTC options for arch: C++17, the architecture (cubin), relaxed constexpr, no fast math.
std::vector<std::string> nvrtc_options(const std::string& arch);

/// The cache configuration of one kernel module: dtype, head_dim, soft_cap, rope, path ("cc" or "tc") and "src", a
/// hash of the generated source, the NVRTC options for arch and the embedded headers (any change recompiles).
Config kernel_config(int dtype, int head_dim, bool soft_cap, bool rope, const char* path, const std::string& source,
                     const std::string& arch);

/// The same configuration (less the source) as the compact id a ModuleLoader keeps the loaded module under.
inline uint64_t kernel_id(int dtype, int head_dim, bool soft_cap, bool rope) {
  return static_cast<uint64_t>(static_cast<uint32_t>(dtype)) << 32 |
         static_cast<uint64_t>(static_cast<uint32_t>(head_dim)) << 2 | (soft_cap ? 2u : 0u) | (rope ? 1u : 0u);
}

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
