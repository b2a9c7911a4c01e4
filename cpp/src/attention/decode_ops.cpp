// Attention and cache entry points: validate -> build kernel params -> dispatch to the CPU reference or CUDA.
// This file is the one place that knows which configurations each backend runs.
#include <cmath>
#include <string>

#include <cuda_runtime_api.h>

#include "cpu/cpu_reference.h"
#include "attention/decode_plan.h"
#include "core/cuda_util.h"
#include "fi4j/attention/launch.h"
#include "fi4j/attention/params.h"
#include "attention/checks.h"
#include "attention/kernel_entries.h"
#include "attention/kernel_table.h"
#include "core/kernel_registry.h"
#include "core/status.h"

using namespace fi4j;

namespace {

/// Head dims the CUDA append kernel copies (a plain 16-byte copy: the AOT set and every JIT decode head dim, no
/// compiler needed).
bool cuda_append_head_dim_supported(int head_dim) {
  return decode_head_dim_aot(head_dim) || decode_head_dim_jit(head_dim);
}

/// Throws UNSUPPORTED naming the part of a decode configuration this build cannot run on the device; returns the
/// route that runs it (kernel_table.h: CPU reference, ahead-of-time kernel or run-time compiled kernel).
Route check_decode_supported(int device, int dtype, int head_dim, int num_qo_heads, int num_kv_heads, int path) {
  check_attention_config(device, dtype, head_dim, num_qo_heads, num_kv_heads);
  return require_decode_route(!is_cpu(device), head_dim, path);
}

/// The kernel a decode call launches: the plan's (checked against this call's configuration), or, without a plan
/// handle, the one this configuration resolves to (routed here).
const Kernel& decode_kernel_of(int device, const fi4j_decode_args& a) {
  const bool cap = a.options.logits_soft_cap > 0.f;
  const bool rope = a.options.pos_encoding == FI4J_POS_ROPE_LLAMA;
  if (a.kernel == 0) return resolve_decode_kernel(device, a.dtype, a.kv.head_dim, cap, rope, a.path, nullptr);
  const Kernel& k = kernel_registry().find(a.kernel, "kernel");
  check_kernel_matches(k, decode_kernel_key(device, a.dtype, a.kv.head_dim, cap, rope, a.path), "kernel");
  return k;
}

/// Validates a C paged-KV description and converts it; `writes` marks the append target.
PagedKv make_paged_kv(int device, const fi4j_paged_kv& c, int dtype) {
  const bool cuda = !is_cpu(device);
  if (c.dtype != dtype)
    fail_arg("kv.dtype", std::string("equal to the query dtype ") + dtype_name(dtype), dtype_name(c.dtype));
  require(c.page_size >= 1, "kv.page_size", ">= 1", c.page_size);
  require(c.num_pages >= 0, "kv.num_pages", ">= 0", c.num_pages);
  require(c.num_kv_heads >= 1, "kv.num_kv_heads", ">= 1", c.num_kv_heads);
  require(c.batch_size >= 0, "kv.batch_size", ">= 0", c.batch_size);
  require(c.num_indices >= 0, "kv.num_indices", ">= 0", c.num_indices);
  check_stride(c.page_stride, "kv.page_stride", cuda);
  check_stride(c.token_stride, "kv.token_stride", cuda);
  check_stride(c.head_stride, "kv.head_stride", cuda);
  check_ptr(c.k, "kv.k", c.num_pages > 0, cuda);
  check_ptr(c.v, "kv.v", c.num_pages > 0, cuda);
  return to_paged_kv(c);
}

void check_page_table_pointers(const PagedKv& kv, int64_t num_indices) {
  if (!kv.kv_indptr) fail_arg("kv.kv_indptr", "non-null", "null");
  if (kv.batch_size > 0 && !kv.kv_last_page_len) fail_arg("kv.kv_last_page_len", "non-null", "null");
  if (num_indices > 0 && !kv.kv_indices) fail_arg("kv.kv_indices", "non-null", "null");
}

}  // namespace

extern "C" {

FI4J_API int fi4j_decode_supported(int device, int32_t dtype, int32_t head_dim, int32_t num_qo_heads,
                                   int32_t num_kv_heads) {
  return guarded([&] {
    check_device(device);
    check_decode_supported(device, dtype, head_dim, num_qo_heads, num_kv_heads, FI4J_PATH_AUTO);
  });
}

FI4J_API int fi4j_batch_decode(int device, const fi4j_decode_args* a, void* stream) {
  return guarded([&] {
    if (!a) fail_arg("args", "non-null", "null");
    check_device(device);
    const bool cuda = !is_cpu(device);
    require(a->path == FI4J_PATH_CUDA_CORES || a->path == FI4J_PATH_TENSOR_CORES, "path",
            "CUDA_CORES (0) or TENSOR_CORES (1) (a planned path)", a->path);
    check_attention_config(device, a->dtype, a->kv.head_dim, a->num_qo_heads, a->kv.num_kv_heads);
    const Kernel& kernel = decode_kernel_of(device, *a);
    DecodeParams p{};
    p.dtype = static_cast<DType>(a->dtype);
    p.kv = make_paged_kv(device, a->kv, a->dtype);
    p.num_qo_heads = a->num_qo_heads;
    if (a->kv.kv_indptr == nullptr) {  // single-request mode
      require(a->kv.batch_size == 1, "kv.batch_size", "1 in single-request mode (kv_indptr null)", a->kv.batch_size);
      require(a->single_kv_len >= 0, "single_kv_len", ">= 0", a->single_kv_len);
      require(a->single_kv_len <= a->kv.page_size, "single_kv_len", "<= kv.page_size in single-request mode",
              a->single_kv_len);
      p.kv.single_kv_len = a->single_kv_len;
      check_ptr(a->kv.k, "kv.k", a->single_kv_len > 0, cuda);
      check_ptr(a->kv.v, "kv.v", a->single_kv_len > 0, cuda);
    } else {
      check_page_table_pointers(p.kv, a->kv.num_indices);
      if (!cuda) check_page_table_host(p.kv, a->kv.num_indices, "", "the number of page indices");
    }
    const int64_t batch = p.kv.batch_size;
    if (cuda) {
      check_stream(device, stream);
      require(a->kv.num_kv_heads <= 65535, "kv.num_kv_heads", "<= 65535 on the CUDA backend (grid y)",
              a->kv.num_kv_heads);
      if (a->lse && (reinterpret_cast<uintptr_t>(a->lse) & 3u) != 0)
        fail_arg("lse", "4-byte aligned", "address % 4 = " + std::to_string(reinterpret_cast<uintptr_t>(a->lse) % 4));
    }
    check_ptr(a->q, "q", batch > 0, cuda);
    check_ptr(a->o, "o", batch > 0, cuda);
    check_stride(a->q_stride_n, "q_stride_n", cuda);
    check_stride(a->q_stride_h, "q_stride_h", cuda);
    check_stride(a->o_stride_n, "o_stride_n", cuda);
    check_stride(a->o_stride_h, "o_stride_h", cuda);
    p.q = a->q;
    p.q_stride_n = a->q_stride_n;
    p.q_stride_h = a->q_stride_h;
    p.o = a->o;
    p.o_stride_n = a->o_stride_n;
    p.o_stride_h = a->o_stride_h;
    p.lse = static_cast<float*>(a->lse);
    p.variant = make_variant(a->options, a->kv.head_dim);
    require(a->num_work >= 0, "num_work", ">= 0", a->num_work);
    p.path = static_cast<DecodePath>(a->path);
    if (a->num_work > 0 && cuda) {
      if (a->kv.kv_indptr == nullptr) fail_arg("num_work", "0 in single-request mode", a->num_work);
      const DecodeWorkspaceLayout l = decode_workspace_layout(a->num_work, batch, a->num_qo_heads, a->kv.head_dim);
      check_ptr(a->workspace, "workspace", true, true);
      require(a->workspace_bytes >= l.total, "workspace_bytes",
              ">= " + std::to_string(l.total) + " for the plan's " + std::to_string(a->num_work) + " work items",
              a->workspace_bytes);
      char* ws = static_cast<char*>(a->workspace);
      p.work.request = reinterpret_cast<const int32_t*>(ws + l.request);
      p.work.kv_start = reinterpret_cast<const int32_t*>(ws + l.kv_start);
      p.work.kv_end = reinterpret_cast<const int32_t*>(ws + l.kv_end);
      p.work.merge_indptr = reinterpret_cast<const int32_t*>(ws + l.merge_indptr);
      p.work.num_work = a->num_work;
      p.work.partial_o = reinterpret_cast<float*>(ws + l.partial_o);
      p.work.partial_lse = reinterpret_cast<float*>(ws + l.partial_lse);
    }
    if (batch == 0) return;
    if (!cuda) {
      cpu::batch_decode(p);
      return;
    }
    cudaGetLastError();  // a stale error left by another library must not be reported as ours
    check_cuda_launch(launch_decode_kernel(kernel, p, static_cast<cudaStream_t>(stream)),
                      kernel.route == Route::Jit ? "batch decode launch (run-time compiled)" : "batch decode launch");
  });
}

FI4J_API int64_t fi4j_decode_workspace_bytes(int32_t max_work, int32_t batch_size, int32_t num_qo_heads,
                                             int32_t head_dim) {
  if (max_work < 0 || batch_size < 0 || num_qo_heads < 0 || head_dim < 0) return -1;
  return decode_workspace_layout(max_work, batch_size, num_qo_heads, head_dim).total;
}

FI4J_API int fi4j_batch_decode_plan(int device, fi4j_decode_plan* plan, void* workspace, int64_t workspace_bytes,
                                    void* stream) {
  return guarded([&] {
    if (!plan) fail_arg("plan", "non-null", "null");
    check_device(device);
    require(workspace_bytes >= 0, "workspace_bytes", ">= 0", workspace_bytes);
    // The route of the requested path first (what fi4j_decode_supported says), so that an unsupported configuration
    // is reported before anything about the batch; the kernel of the chosen path is resolved after planning.
    check_decode_supported(device, plan->dtype, plan->head_dim, plan->num_qo_heads, plan->num_kv_heads, plan->path);
    DecodePlanInput in{};
    in.batch_size = plan->batch_size;
    in.num_qo_heads = plan->num_qo_heads;
    in.num_kv_heads = plan->num_kv_heads;
    in.head_dim = plan->head_dim;
    in.page_size = plan->page_size;
    in.window_left = plan->window_left;
    in.kv_indptr = plan->kv_indptr_host;
    in.kv_last_page_len = plan->kv_last_page_len_host;
    in.split_mode = plan->split_mode;
    in.fixed_chunk = plan->fixed_chunk;
    in.path = plan->path;
    in.graph_slots = plan->graph_slots;
    in.workspace_bytes = workspace_bytes;
    if (!is_cpu(device)) {
      check_cuda(cudaDeviceGetAttribute(&in.num_sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
      in.compute_capability = compute_capability(device).code();
    }
    if (!is_cpu(device)) check_stream(device, stream);
    DecodePlanResult r = plan_decode(in);
    if (r.num_work > 0) {
      check_ptr(workspace, "workspace", true, true);
      check_cuda(cudaMemcpyAsync(workspace, r.int_section.data(), r.int_section.size() * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)),
                 "cudaMemcpyAsync (decode work list)");
      // the host vector dies with this call: the copy from pageable memory must have consumed it
      check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize (decode plan)");
    }
    plan->num_work = r.num_work;
    plan->chosen_path = r.path;
    plan->chunk_size = r.chunk_size;
    plan->workspace_bytes = r.workspace_bytes;
    jit::PrepareInfo info;
    const Kernel& k = resolve_decode_kernel(device, plan->dtype, plan->head_dim, plan->soft_cap != 0,
                                            plan->pos_encoding == FI4J_POS_ROPE_LLAMA, r.path, &info);
    fill_kernel_info(k, info, &plan->kernel);
  });
}

FI4J_API int fi4j_append_paged_kv(int device, const fi4j_append_args* a, void* stream) {
  return guarded([&] {
    if (!a) fail_arg("args", "non-null", "null");
    check_device(device);
    const bool cuda = !is_cpu(device);
    const int dtype = a->kv.dtype;
    if (dtype_size(dtype) != 2)
      throw Error(FI4J_ERR_UNSUPPORTED, std::string("append of dtype ") + dtype_name(dtype) +
                                            " is not supported (supported: F16, BF16)");
    if (cuda && !cuda_append_head_dim_supported(a->kv.head_dim))
      throw Error(FI4J_ERR_UNSUPPORTED, "head_dim " + std::to_string(a->kv.head_dim) +
                                            " is not supported by the CUDA append (64, 128, 256 and the other "
                                            "multiples of 16 from 16 to 256)");
    require(a->kv.head_dim >= 1, "kv.head_dim", ">= 1", a->kv.head_dim);
    AppendParams p{};
    p.dtype = static_cast<DType>(dtype);
    p.kv = make_paged_kv(device, a->kv, dtype);
    check_page_table_pointers(p.kv, a->kv.num_indices);
    require(a->nnz >= 0, "nnz", ">= 0", a->nnz);
    check_ptr(a->keys, "keys", a->nnz > 0, cuda);
    check_ptr(a->values, "values", a->nnz > 0, cuda);
    check_ptr(a->batch_indices, "batch_indices", a->nnz > 0, false);
    check_ptr(a->positions, "positions", a->nnz > 0, false);
    check_stride(a->keys_stride_n, "keys_stride_n", cuda);
    check_stride(a->keys_stride_h, "keys_stride_h", cuda);
    check_stride(a->values_stride_n, "values_stride_n", cuda);
    check_stride(a->values_stride_h, "values_stride_h", cuda);
    p.nnz = a->nnz;
    p.keys = a->keys;
    p.keys_stride_n = a->keys_stride_n;
    p.keys_stride_h = a->keys_stride_h;
    p.values = a->values;
    p.values_stride_n = a->values_stride_n;
    p.values_stride_h = a->values_stride_h;
    p.batch_indices = static_cast<const int32_t*>(a->batch_indices);
    p.positions = static_cast<const int32_t*>(a->positions);
    p.k_cache = const_cast<void*>(a->kv.k);
    p.v_cache = const_cast<void*>(a->kv.v);
    if (p.nnz == 0) return;
    if (!cuda) {
      check_page_table_host(p.kv, a->kv.num_indices, "", "the number of page indices");
      for (int n = 0; n < p.nnz; ++n) {
        int b = p.batch_indices[n];
        if (b < 0 || b >= p.kv.batch_size)
          fail_arg("batch_indices[" + std::to_string(n) + "]", "in [0, " + std::to_string(p.kv.batch_size) + ")", b);
        int pages = p.kv.kv_indptr[b + 1] - p.kv.kv_indptr[b];
        long long len = pages == 0 ? 0 : static_cast<long long>(p.kv.page_size) * (pages - 1) + p.kv.kv_last_page_len[b];
        if (p.positions[n] < 0 || p.positions[n] >= len)
          fail_arg("positions[" + std::to_string(n) + "]",
                   "in [0, " + std::to_string(len) + ") (the pages of request " + std::to_string(b) + ")",
                   p.positions[n]);
      }
      cpu::append_paged_kv(p);
      return;
    }
    check_stream(device, stream);
    cudaGetLastError();  // a stale error left by another library must not be reported as ours
    check_cuda_launch(launch_append_paged_kv(p, static_cast<cudaStream_t>(stream)), "append launch");
  });
}

}  // extern "C"
