#include "jit/module_source.h"

#include "core/status.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/jit_headers.h"

namespace fi4j {
namespace jit {

std::string arch_name(int major, int minor) { return "sm_" + std::to_string(major * 10 + minor); }

uint64_t embedded_headers_hash() {
  std::string all;
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i) {
    all += kEmbeddedHeaders[i].name;
    all += '\n';
    all += kEmbeddedHeaders[i].text;
    all += '\n';
  }
  return fnv1a64(all);
}

std::vector<std::string> nvrtc_options(const std::string& arch) {
  // NVRTC has no --expt-relaxed-constexpr (nvcc only): with -default-device every unannotated function, constexpr
  // ones included, is already device code.
  return {"-std=c++17", "-arch=" + arch, "-default-device"};
}

Config kernel_config(int dtype, int head_dim, bool soft_cap, bool rope, const char* path, const std::string& source,
                     const std::string& arch) {
  std::string inputs = source;
  for (const auto& o : nvrtc_options(arch)) inputs += "\n" + o;
  Config c;
  c["dtype"] = dtype == FI4J_BF16 ? "bf16" : "f16";
  c["head_dim"] = std::to_string(head_dim);
  c["soft_cap"] = soft_cap ? "1" : "0";
  c["rope"] = rope ? "1" : "0";
  c["path"] = path;
  c["src"] = hex16(fnv1a64(inputs) ^ embedded_headers_hash());
  return c;
}

Bytes nvrtc_compile(const NvrtcApi& api, const std::string& source, const std::string& name,
                    const std::string& arch, const std::vector<std::string>& name_expressions,
                    std::vector<std::string>* lowered) {
  std::vector<const char*> header_texts, header_names;
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i) {
    header_texts.push_back(kEmbeddedHeaders[i].text);
    header_names.push_back(kEmbeddedHeaders[i].name);
  }
  void* prog = nullptr;
  int rc = api.CreateProgram(&prog, source.c_str(), name.c_str(), static_cast<int>(header_texts.size()),
                             header_texts.data(), header_names.data());
  if (rc != 0)
    throw Error(FI4J_ERR_INTERNAL, std::string("NVRTC: nvrtcCreateProgram failed: ") + api.GetErrorString(rc));
  struct Destroy {
    const NvrtcApi& api;
    void** prog;
    ~Destroy() { api.DestroyProgram(prog); }
  } destroy{api, &prog};
  for (const auto& e : name_expressions) {
    rc = api.AddNameExpression(prog, e.c_str());
    if (rc != 0)
      throw Error(FI4J_ERR_INTERNAL, "NVRTC: nvrtcAddNameExpression(" + e + ") failed: " + api.GetErrorString(rc));
  }
  const std::vector<std::string> options = nvrtc_options(arch);
  std::vector<const char*> option_ptrs;
  for (const auto& o : options) option_ptrs.push_back(o.c_str());
  rc = api.CompileProgram(prog, static_cast<int>(option_ptrs.size()), option_ptrs.data());
  if (rc != 0) {
    size_t log_size = 0;
    std::string log;
    if (api.GetProgramLogSize(prog, &log_size) == 0 && log_size > 1) {
      log.resize(log_size);
      if (api.GetProgramLog(prog, &log[0]) != 0) log.clear();
      while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    }
    throw Error(FI4J_ERR_INTERNAL, "NVRTC could not compile " + name + " for " + arch + " (" +
                                       api.GetErrorString(rc) + "); NVRTC " + std::to_string(api.major) + "." +
                                       std::to_string(api.minor) + " log:\n" + log);
  }
  size_t size = 0;
  rc = api.GetCUBINSize(prog, &size);
  if (rc != 0 || size == 0)
    throw Error(FI4J_ERR_INTERNAL, "NVRTC: no cubin for " + name + " (" + api.GetErrorString(rc) + ")");
  Bytes cubin(size);
  rc = api.GetCUBIN(prog, cubin.data());
  if (rc != 0) throw Error(FI4J_ERR_INTERNAL, std::string("NVRTC: nvrtcGetCUBIN failed: ") + api.GetErrorString(rc));
  if (lowered != nullptr) {
    lowered->clear();
    for (const auto& e : name_expressions) {
      const char* symbol = nullptr;
      rc = api.GetLoweredName(prog, e.c_str(), &symbol);
      if (rc != 0 || symbol == nullptr)
        throw Error(FI4J_ERR_INTERNAL, "NVRTC: nvrtcGetLoweredName(" + e + ") failed: " + api.GetErrorString(rc));
      lowered->push_back(symbol);
    }
  }
  return cubin;
}

}  // namespace jit
}  // namespace fi4j
