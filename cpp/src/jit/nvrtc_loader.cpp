// NVRTC found at run time (see nvrtc_loader.h).
#include "jit/nvrtc_loader.h"

#include "core/status.h"

#include <dlfcn.h>

#include <cstdlib>
#include <iterator>
#include <mutex>

namespace fi4j {
namespace jit {

const char* const kNvrtcMissing =
    "NVRTC (libnvrtc.so.13) not found: install the CUDA toolkit's NVRTC (cuda-nvrtc) or put its lib64 folder on "
    "LD_LIBRARY_PATH, or name the library file in $FLASHINFER4J_NVRTC (Java: -Dflashinfer4j.nvrtc=...); the "
    "ahead-of-time kernels still work";

namespace {

template <typename Fn>
bool resolve(void* handle, const char* name, Fn* out, std::string* missing) {
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return false;
  }
  *out = reinterpret_cast<Fn>(sym);
  return true;
}

}  // namespace

namespace {
std::mutex g_path_mutex;
std::string* g_explicit_path = new std::string();  // never freed (read during exit-time lookups)
bool g_looked_up = false;                           // under g_path_mutex
}  // namespace

std::vector<std::string> nvrtc_candidates() {
  std::string explicit_path;
  {
    std::lock_guard<std::mutex> lock(g_path_mutex);
    explicit_path = *g_explicit_path;
  }
  if (explicit_path.empty()) {
    const char* env = std::getenv("FLASHINFER4J_NVRTC");
    if (env != nullptr) explicit_path = env;
  }
  if (!explicit_path.empty()) return {explicit_path};  // an explicit choice is not second-guessed
  const char* names[] = {"libnvrtc.so.13", "libnvrtc.so.12"};
  std::vector<std::string> out(std::begin(names), std::end(names));
  std::vector<std::string> dirs;
  const char* cuda_home = std::getenv("CUDA_HOME");
  if (cuda_home != nullptr && cuda_home[0] != '\0') dirs.push_back(std::string(cuda_home) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  for (const auto& dir : dirs) {
    for (const char* name : names) out.push_back(dir + "/" + name);
  }
  return out;
}

NvrtcLoad load_nvrtc(const std::vector<std::string>& candidates) {
  NvrtcLoad result;
  std::string details;
  for (const auto& candidate : candidates) {
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) continue;  // absent: the common case, listed once below
    NvrtcApi api;
    api.handle = handle;
    api.path = candidate;
    std::string missing;
    bool ok = resolve(handle, "nvrtcGetErrorString", &api.GetErrorString, &missing);
    ok = resolve(handle, "nvrtcVersion", &api.Version, &missing) && ok;
    ok = resolve(handle, "nvrtcCreateProgram", &api.CreateProgram, &missing) && ok;
    ok = resolve(handle, "nvrtcDestroyProgram", &api.DestroyProgram, &missing) && ok;
    ok = resolve(handle, "nvrtcCompileProgram", &api.CompileProgram, &missing) && ok;
    ok = resolve(handle, "nvrtcGetProgramLogSize", &api.GetProgramLogSize, &missing) && ok;
    ok = resolve(handle, "nvrtcGetProgramLog", &api.GetProgramLog, &missing) && ok;
    ok = resolve(handle, "nvrtcGetCUBINSize", &api.GetCUBINSize, &missing) && ok;
    ok = resolve(handle, "nvrtcGetCUBIN", &api.GetCUBIN, &missing) && ok;
    ok = resolve(handle, "nvrtcAddNameExpression", &api.AddNameExpression, &missing) && ok;
    ok = resolve(handle, "nvrtcGetLoweredName", &api.GetLoweredName, &missing) && ok;
    if (ok && api.Version(&api.major, &api.minor) != 0) {
      ok = false;
      missing = "nvrtcVersion failed";
    }
    if (ok) {
      result.ok = true;
      result.api = api;
      return result;
    }
    details += "; " + candidate + " lacks " + missing;
    dlclose(handle);
  }
  std::string tried;
  for (const auto& candidate : candidates) tried += (tried.empty() ? "" : ", ") + candidate;
  result.reason = std::string(kNvrtcMissing) + " (tried " + tried + details + ")";
  return result;
}

namespace {
std::once_flag g_once;
NvrtcLoad* g_load = nullptr;  // never freed: the library stays open for the life of the process

void load_once() {
  std::call_once(g_once, [] {
    g_load = new NvrtcLoad(load_nvrtc(nvrtc_candidates()));
    std::lock_guard<std::mutex> lock(g_path_mutex);
    g_looked_up = true;
  });
}
}  // namespace

void set_nvrtc_path(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_path_mutex);
  if (g_looked_up && path != *g_explicit_path)
    fail_arg("nvrtc path", "set before the first run-time compiled kernel or availability query of this process",
             "\"" + path + "\" after NVRTC was looked up" + (g_explicit_path->empty() ? "" : " at \"" + *g_explicit_path + "\""));
  *g_explicit_path = path;
}

const NvrtcApi* nvrtc() {
  load_once();
  return g_load->ok ? &g_load->api : nullptr;
}

const std::string& nvrtc_unavailable_reason() {
  load_once();
  return g_load->reason;
}

}  // namespace jit
}  // namespace fi4j
