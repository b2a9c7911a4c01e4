// NVRTC found at run time: dlopen of libnvrtc (13, then 12) and dlsym of the few functions a compile needs, so
// that the library has no link-time dependency on NVRTC and loads on machines without it. Internal.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fi4j {
namespace jit {

/// The NVRTC functions a compile uses, with nvrtcResult as int and nvrtcProgram as void* (no nvrtc.h needed).
struct NvrtcApi {
  void* handle = nullptr;
  std::string path;  // the name or path that dlopen accepted
  int major = 0, minor = 0;
  const char* (*GetErrorString)(int result) = nullptr;
  int (*Version)(int* major, int* minor) = nullptr;
  int (*CreateProgram)(void** prog, const char* src, const char* name, int num_headers, const char* const* headers,
                       const char* const* include_names) = nullptr;
  int (*DestroyProgram)(void** prog) = nullptr;
  int (*CompileProgram)(void* prog, int num_options, const char* const* options) = nullptr;
  int (*GetProgramLogSize)(void* prog, size_t* size) = nullptr;
  int (*GetProgramLog)(void* prog, char* log) = nullptr;
  int (*GetCUBINSize)(void* prog, size_t* size) = nullptr;
  int (*GetCUBIN)(void* prog, char* cubin) = nullptr;
  int (*AddNameExpression)(void* prog, const char* name_expression) = nullptr;
  int (*GetLoweredName)(void* prog, const char* name_expression, const char** lowered_name) = nullptr;
};

struct NvrtcLoad {
  bool ok = false;
  NvrtcApi api;        // filled when ok
  std::string reason;  // why not, when !ok
};

/// The message when no usable NVRTC is found (the start of NvrtcLoad::reason; names the explicit setting too).
extern const char* const kNvrtcMissing;

/// Library names and paths tried, in order: an explicit library (set_nvrtc_path, else $FLASHINFER4J_NVRTC) alone
/// when one is given; else libnvrtc.so.13, libnvrtc.so.12 (the loader's search path, which also finds a copy that
/// another library, e.g. a Maven-packaged CUDA redistributable, has loaded into the process), then both under
/// $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
std::vector<std::string> nvrtc_candidates();
/// Sets the explicit library for this process's NVRTC lookup ("" = none). Throws Error(INVALID_ARGUMENT) once the
/// lookup has run (it runs once per process, at the first run-time compiled kernel or availability query) with a
/// different explicit library.
void set_nvrtc_path(const std::string& path);
/// Tries candidates in order; the first that opens and has every function wins (others are closed again).
NvrtcLoad load_nvrtc(const std::vector<std::string>& candidates);
/// The process-wide NVRTC, loaded on first use (thread-safe, once); nullptr when absent.
const NvrtcApi* nvrtc();
/// "" when nvrtc() is available, else why not.
const std::string& nvrtc_unavailable_reason();

}  // namespace jit
}  // namespace fi4j
