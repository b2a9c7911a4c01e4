#include "core/checks.h"

#include <cmath>
#include <string>

#include <cuda_runtime_api.h>

#include "core/cuda_util.h"
#include "core/status.h"

namespace fi4j {

namespace {

/// Whether code built for the architectures in FI4J_CUDA_ARCHITECTURES ("80", "90", "90a", "100-real", ...)
/// can run on compute capability cc (major*10+minor): plain entries carry PTX and run on cc >= arch; "a"
/// (architecture-specific) entries run on exactly that cc.
bool arch_runs_on(int cc) {
  const std::string list = fi4j_cuda_architectures();
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string entry = list.substr(pos, end - pos);
    pos = end + 1;
    int arch = 0;
    size_t i = 0;
    while (i < entry.size() && entry[i] >= '0' && entry[i] <= '9') arch = arch * 10 + (entry[i++] - '0');
    if (arch == 0) continue;
    const bool specific = i < entry.size() && entry[i] == 'a';
    if (specific ? cc == arch : cc >= arch) return true;
  }
  return false;
}

/// Throws UNSUPPORTED when this build has no code for the device's architecture (e.g. the sm90 jar on an A100).
void check_arch(int device) {
  static thread_local int checked_device = -2;
  if (checked_device == device) return;
  const ComputeCapability capability = compute_capability(device);
  const int major = capability.major, minor = capability.minor;
  const int cc = capability.code();
  if (!arch_runs_on(cc))
    throw Error(FI4J_ERR_UNSUPPORTED, "this build of flashinfer4j has kernels for CUDA architectures " +
                                          std::string(fi4j_cuda_architectures()) + ", which cannot run on device " +
                                          std::to_string(device) + " of compute capability " + std::to_string(major) +
                                          "." + std::to_string(minor) +
                                          ": use the natives jar of its architecture (classifier linux-x86_64-sm" +
                                          std::to_string(cc >= 100 ? 100 : cc >= 90 ? 90 : cc >= 89 ? 89 : 80) + ")");
  checked_device = device;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

void check_device(int device) {
  if (is_cpu(device)) return;
  use_device(device);
  check_arch(device);
}

void check_attention_config(int device, int dtype, int head_dim, int num_qo_heads, int num_kv_heads) {
  if (dtype != FI4J_F16 && dtype != FI4J_BF16)
    throw Error(FI4J_ERR_UNSUPPORTED, std::string("dtype ") + dtype_name(dtype) +
                                          " is not supported for attention (supported: F16, BF16)");
  require(num_kv_heads > 0, "num_kv_heads", "> 0", num_kv_heads);
  require(num_qo_heads > 0, "num_qo_heads", "> 0", num_qo_heads);
  if (num_qo_heads % num_kv_heads != 0)
    fail_arg("num_qo_heads", "a multiple of num_kv_heads (" + std::to_string(num_kv_heads) + ")", num_qo_heads);
  if (is_cpu(device) && (head_dim < 2 || head_dim > 1024 || head_dim % 2 != 0))
    throw Error(FI4J_ERR_UNSUPPORTED, "head_dim " + std::to_string(head_dim) +
                                          " is not supported by the CPU backend (even, 2..1024)");
}

void check_cuda_launch(cudaError_t err, const char* what) {
  if (err == cudaErrorNotSupported)
    throw Error(FI4J_ERR_UNSUPPORTED, std::string(what) + ": configuration not instantiated in this build");
  check_cuda(err, what);
}

void check_ptr(const void* p, const char* name, bool needed, bool cuda) {
  if (!needed) return;
  if (!p) fail_arg(name, "non-null", "null");
  if (cuda && !aligned16(p))
    fail_arg(name, "16-byte aligned on the CUDA backend", "address % 16 = " + std::to_string(reinterpret_cast<uintptr_t>(p) % 16));
}

void check_stride(int64_t s, const char* name, bool cuda) {
  require(s >= 0, name, ">= 0", s);
  if (cuda && s % 8 != 0) require(false, name, "a multiple of 8 elements (16 bytes) on the CUDA backend", s);
}

PagedKv to_paged_kv(const fi4j_paged_kv& c) {
  PagedKv kv{};
  kv.k = c.k;
  kv.v = c.v;
  kv.page_stride = c.page_stride;
  kv.token_stride = c.token_stride;
  kv.head_stride = c.head_stride;
  kv.num_pages = c.num_pages;
  kv.page_size = c.page_size;
  kv.num_kv_heads = c.num_kv_heads;
  kv.head_dim = c.head_dim;
  kv.kv_indptr = static_cast<const int32_t*>(c.kv_indptr);
  kv.kv_indices = static_cast<const int32_t*>(c.kv_indices);
  kv.kv_last_page_len = static_cast<const int32_t*>(c.kv_last_page_len);
  kv.batch_size = c.batch_size;
  kv.single_kv_len = 0;
  return kv;
}

AttentionVariant make_variant(const fi4j_attention_options& o, int head_dim) {
  AttentionVariant v{};
  if (!std::isfinite(o.sm_scale)) fail_arg("options.sm_scale", "finite", o.sm_scale);
  v.sm_scale = o.sm_scale > 0.f ? o.sm_scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (!(o.logits_soft_cap >= 0.f) || !std::isfinite(o.logits_soft_cap))
    fail_arg("options.logits_soft_cap", ">= 0 and finite (0 = off)", o.logits_soft_cap);
  v.logits_soft_cap = o.logits_soft_cap;
  v.window_left = o.window_left < 0 ? -1 : o.window_left;
  if (o.pos_encoding != FI4J_POS_NONE && o.pos_encoding != FI4J_POS_ROPE_LLAMA)
    fail_arg("options.pos_encoding", "NONE (0) or ROPE_LLAMA (1)", o.pos_encoding);
  v.pos_encoding = static_cast<PosEncoding>(o.pos_encoding);
  if (v.pos_encoding == PosEncoding::RopeLlama) {
    if (!(o.rope_scale > 0.f) || !std::isfinite(o.rope_scale)) fail_arg("options.rope_scale", "> 0", o.rope_scale);
    if (!(o.rope_theta > 0.f) || !std::isfinite(o.rope_theta)) fail_arg("options.rope_theta", "> 0", o.rope_theta);
  }
  v.rope_rcp_scale = o.rope_scale > 0.f ? 1.0f / o.rope_scale : 1.0f;
  v.rope_theta = o.rope_theta > 0.f ? o.rope_theta : 1e4f;
  return v;
}

}  // namespace fi4j
