// C API of the run-time compilation cache (flashinfer4j.h, "run-time compilation (JIT) cache").
#include <cstring>
#include <string>

#include "flashinfer4j/flashinfer4j.h"
#include "jit_cache.h"
#include "nvrtc_loader.h"
#include "status.h"

using namespace fi4j;

namespace {
thread_local std::string g_dir_text;
}

FI4J_API int fi4j_jit_available(int* available) {
  return guarded([&] {
    if (available == nullptr) fail_arg("available", "non-null", "null");
    *available = jit::nvrtc() != nullptr ? 1 : 0;
  });
}

FI4J_API const char* fi4j_jit_unavailable_reason(void) { return jit::nvrtc_unavailable_reason().c_str(); }

FI4J_API int fi4j_jit_set_cache_dir(const char* dir) {
  return guarded([&] { jit::set_cache_dir(dir == nullptr ? "" : dir); });
}

FI4J_API const char* fi4j_jit_cache_dir(void) {
  int status = guarded([&] { g_dir_text = jit::cache_dir(); });
  return status == FI4J_OK ? g_dir_text.c_str() : nullptr;
}

FI4J_API int fi4j_jit_cache_stats(int64_t* files, int64_t* bytes) {
  return guarded([&] {
    if (files == nullptr) fail_arg("files", "non-null", "null");
    if (bytes == nullptr) fail_arg("bytes", "non-null", "null");
    jit::CacheStats s = jit::DiskCache(jit::cache_dir()).stats();
    *files = s.files;
    *bytes = s.bytes;
  });
}

FI4J_API int fi4j_jit_cache_clear(void) {
  return guarded([&] {
    jit::DiskCache(jit::cache_dir()).clear();
    jit::kernel_cache().forget();
  });
}

FI4J_API int fi4j_jit_cache_key(const char* op, const char* config, char* out, int32_t out_len) {
  return guarded([&] {
    if (op == nullptr) fail_arg("op", "non-null", "null");
    if (config == nullptr) fail_arg("config", "non-null", "null");
    if (out == nullptr) fail_arg("out", "non-null", "null");
    jit::Config parsed = jit::parse_config(config);
    auto arch = parsed.find("arch");
    if (arch == parsed.end()) fail_arg("config", "an entry arch=sm_XX", std::string("\"") + config + "\"");
    std::string arch_name = arch->second;
    parsed.erase(arch);
    std::string key = jit::make_key(fi4j_version(), arch_name, op, parsed);
    if (out_len < static_cast<int64_t>(key.size()) + 1) {
      fail_arg("out_len", ">= " + std::to_string(key.size() + 1), out_len);
    }
    std::memcpy(out, key.c_str(), key.size() + 1);
  });
}
