// C API of the run-time compilation cache (flashinfer4j.h, "run-time compilation (JIT) cache").
#include <cstring>
#include <string>

#include "attention/checks.h"
#include "attention/kernel_entries.h"
#include "attention/kernel_table.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/jit_cache.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

using namespace fi4j;

namespace {
thread_local std::string g_dir_text;

/// Validates a kernel config and returns its route (throws UNSUPPORTED with the reason).
Route config_route(int device, const fi4j_kernel_config* c) {
  if (c == nullptr) fail_arg("config", "non-null", "null");
  if (c->op != FI4J_OP_DECODE && c->op != FI4J_OP_PREFILL) fail_arg("config.op", "DECODE (0) or PREFILL (1)", c->op);
  require(c->head_dim >= 1, "config.head_dim", ">= 1", c->head_dim);
  require(c->soft_cap == 0 || c->soft_cap == 1, "config.soft_cap", "0 or 1", c->soft_cap);
  if (c->pos_encoding != FI4J_POS_NONE && c->pos_encoding != FI4J_POS_ROPE_LLAMA)
    fail_arg("config.pos_encoding", "NONE (0) or ROPE_LLAMA (1)", c->pos_encoding);
  if (c->op == FI4J_OP_DECODE)
    require(c->path >= FI4J_PATH_AUTO && c->path <= FI4J_PATH_TENSOR_CORES, "config.path",
            "AUTO (-1), CUDA_CORES (0) or TENSOR_CORES (1)", c->path);
  check_device(device);
  check_attention_config(device, c->dtype, c->head_dim, 1, 1);
  if (c->op == FI4J_OP_PREFILL) {
    if (is_cpu(device)) return Route::Cpu;
    // The same checks as a prefill call: route, then the shared memory of the largest block this configuration uses.
    return check_cuda_prefill(device, c->head_dim, c->pos_encoding == FI4J_POS_ROPE_LLAMA, 0);
  }
  return require_decode_route(!is_cpu(device), c->head_dim, c->path);
}

}  // namespace

FI4J_API int fi4j_kernel_supported(int device, const fi4j_kernel_config* config, int32_t* route) {
  return guarded([&] {
    if (route == nullptr) fail_arg("route", "non-null", "null");
    *route = route_code(config_route(device, config));
  });
}

FI4J_API int fi4j_kernel_prepare(int device, const fi4j_kernel_config* config, fi4j_kernel_prepare_info* info) {
  return guarded([&] {
    config_route(device, config);
    const bool soft_cap = config->soft_cap != 0;
    const bool rope = config->pos_encoding == FI4J_POS_ROPE_LLAMA;
    jit::PrepareInfo prepared;
    // Decode path AUTO warms up the kernel every head dim has: the CUDA-core one (the tensor-core path exists for
    // the ahead-of-time head dims only, which need no preparation).
    const Kernel& k =
        config->op == FI4J_OP_PREFILL
            ? resolve_prefill_kernel(device, config->dtype, config->head_dim, soft_cap, rope, &prepared)
            : resolve_decode_kernel(device, config->dtype, config->head_dim, soft_cap, rope,
                                    config->path == FI4J_PATH_AUTO ? FI4J_PATH_CUDA_CORES : config->path, &prepared);
    fi4j_kernel_prepare_info out{};
    fill_kernel_info(k, prepared, &out);
    if (info != nullptr) *info = out;
  });
}

FI4J_API int32_t fi4j_attention_aot_head_dims(int32_t* out, int32_t capacity) {
  for (int i = 0; i < attention_kernels::kNumAotHeadDims && i < capacity && out != nullptr; ++i)
    out[i] = attention_kernels::kAotHeadDims[i];
  return attention_kernels::kNumAotHeadDims;
}

FI4J_API int fi4j_jit_available(int* available) {
  return guarded([&] {
    if (available == nullptr) fail_arg("available", "non-null", "null");
    *available = jit::nvrtc() != nullptr ? 1 : 0;
  });
}

FI4J_API const char* fi4j_jit_unavailable_reason(void) { return jit::nvrtc_unavailable_reason().c_str(); }

FI4J_API int fi4j_jit_set_nvrtc_path(const char* path) {
  return guarded([&] { jit::set_nvrtc_path(path == nullptr ? "" : path); });
}

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
