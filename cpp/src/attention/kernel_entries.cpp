#include "attention/kernel_entries.h"

#include <cstring>

#include "attention/decode_jit.h"
#include "attention/kernel_table.h"
#include "attention/prefill_jit.h"
#include "core/checks.h"
#include "core/cuda_util.h"
#include "core/status.h"
#include "fi4j/attention/launch.h"
#include "fi4j/attention/prefill_launch.h"
#include "fi4j/common/launch_util.h"

namespace fi4j {

KernelKey decode_kernel_key(int device, int dtype, int head_dim, bool soft_cap, bool rope, int path) {
  const bool cuda = !is_cpu(device);
  KernelKey key;
  key.op = FI4J_OP_DECODE;
  key.dtype = dtype;
  key.head_dim = head_dim;
  key.soft_cap = soft_cap;
  key.rope = rope;
  key.path = cuda ? path : FI4J_PATH_CUDA_CORES;  // the reference has one path
  key.device = cuda ? device : FI4J_DEVICE_CPU;
  return key;
}

KernelKey prefill_kernel_key(int device, int dtype, int head_dim, bool soft_cap, bool rope) {
  KernelKey key;
  key.op = FI4J_OP_PREFILL;
  key.dtype = dtype;
  key.head_dim = head_dim;
  key.soft_cap = soft_cap;
  key.rope = rope;
  key.device = is_cpu(device) ? FI4J_DEVICE_CPU : device;
  return key;
}

const Kernel& resolve_decode_kernel(int device, int dtype, int head_dim, bool soft_cap, bool rope, int path,
                                    jit::PrepareInfo* info) {
  const bool cuda = !is_cpu(device);
  return kernel_registry().resolve(decode_kernel_key(device, dtype, head_dim, soft_cap, rope, path),
                                   [&](const KernelKey& k) {
    Kernel e;
    e.route = require_attention_route(FI4J_OP_DECODE, cuda, head_dim, k.path);
    if (!cuda) return e;
    e.pdl = pdl_supported(compute_capability(device).major);
    if (e.route == Route::Jit) {
      jit::DecodeKernelSpec spec;
      spec.dtype = dtype;
      spec.head_dim = head_dim;
      spec.soft_cap = soft_cap;
      spec.rope = rope;
      e.module = &jit::load_decode(spec, device, info);
      return e;
    }
    const DType t = static_cast<DType>(dtype);
    e.launch = reinterpret_cast<const void*>(
        aot_decode_launcher(t, head_dim, soft_cap, rope, static_cast<DecodePath>(k.path)));
    e.merge = reinterpret_cast<const void*>(aot_decode_merger(t, head_dim));
    if (e.launch == nullptr || e.merge == nullptr)
      throw Error(FI4J_ERR_UNSUPPORTED, "batch decode launch: configuration not instantiated in this build");
    return e;
  });
}

const Kernel& resolve_prefill_kernel(int device, int dtype, int head_dim, bool soft_cap, bool rope,
                                     jit::PrepareInfo* info) {
  const bool cuda = !is_cpu(device);
  return kernel_registry().resolve(prefill_kernel_key(device, dtype, head_dim, soft_cap, rope), [&](const KernelKey&) {
    Kernel e;
    e.route = require_attention_route(FI4J_OP_PREFILL, cuda, head_dim, -1);
    if (!cuda) return e;
    e.pdl = pdl_supported(compute_capability(device).major);
    if (e.route == Route::Jit) {
      jit::PrefillKernelSpec spec;
      spec.dtype = dtype;
      spec.head_dim = head_dim;
      spec.soft_cap = soft_cap;
      spec.rope = rope;
      e.module = &jit::load_prefill(spec, device, info);
      return e;
    }
    e.launch = reinterpret_cast<const void*>(aot_prefill_launcher(static_cast<DType>(dtype), head_dim, soft_cap));
    if (e.launch == nullptr)
      throw Error(FI4J_ERR_UNSUPPORTED, "batch prefill launch: configuration not instantiated in this build");
    return e;
  });
}

cudaError_t launch_decode_kernel(const Kernel& k, const DecodeParams& p, cudaStream_t stream) {
  if (k.route == Route::Jit) return jit::launch_decode_module(*static_cast<const jit::LoadedModule*>(k.module), p, stream);
  return run_aot_decode(reinterpret_cast<DecodeLaunchFn>(k.launch), reinterpret_cast<DecodeMergeFn>(k.merge), k.pdl,
                        p, stream);
}

cudaError_t launch_prefill_kernel(const Kernel& k, const PrefillParams& p, cudaStream_t stream) {
  if (k.route == Route::Jit)
    return jit::launch_prefill_module(*static_cast<const jit::LoadedModule*>(k.module), p, stream);
  return reinterpret_cast<PrefillLaunchFn>(k.launch)(p, stream);
}

void fill_kernel_info(const Kernel& k, const jit::PrepareInfo& info, fi4j_kernel_prepare_info* out) {
  fi4j_kernel_prepare_info r{};
  r.route = route_code(k.route);
  if (k.route == Route::Jit) {
    r.origin = info.origin == jit::KernelCache::Origin::Compiled ? FI4J_JIT_COMPILED
               : info.origin == jit::KernelCache::Origin::Disk   ? FI4J_JIT_DISK
                                                                  : FI4J_JIT_MEMORY;
    r.loaded = info.loaded ? 1 : 0;
    r.compile_ms = info.compile_ms;
    r.total_ms = info.total_ms;
    const std::string& key = info.key.empty() ? static_cast<const jit::LoadedModule*>(k.module)->key : info.key;
    std::strncpy(r.key, key.c_str(), sizeof(r.key) - 1);
  }
  r.kernel = k.handle;
  *out = r;
}

void check_kernel_matches(const Kernel& k, const KernelKey& expected, const char* name) {
  if (k.key == expected) return;
  const auto describe = [](const KernelKey& c) {
    return std::string(c.op == FI4J_OP_DECODE ? "decode" : "prefill") + " dtype " + dtype_name(c.dtype) +
           " head_dim " + std::to_string(c.head_dim) + (c.soft_cap ? " soft cap" : "") + (c.rope ? " RoPE" : "") +
           (c.op == FI4J_OP_DECODE ? " path " + std::to_string(c.path) : std::string()) + " on device " +
           std::to_string(c.device);
  };
  fail_arg(name, "the kernel of " + describe(expected) + " (plan again for this configuration)", describe(k.key));
}

}  // namespace fi4j
