// Prefill entry points: validate -> build PrefillParams -> dispatch (CPU reference, ahead-of-time CUDA kernels or
// run-time compiled ones, as prefill_route.h decides), and the host mask packers. The checks mirror decode_ops.cpp's for
// decode, with the same message form "<name> must be <expected>, got <actual>".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "cpu/cpu_prefill.h"
#include "attention/prefill_plan.h"
#include "core/cuda_util.h"
#include "fi4j/attention/prefill_launch.h"
#include "fi4j/attention/prefill_params.h"
#include "attention/checks.h"
#include "attention/kernel_table.h"
#include "attention/kernel_entries.h"
#include "core/kernel_registry.h"
#include "core/status.h"

using namespace fi4j;

namespace fi4j {

// Declared in kernel_table.h. Shared memory that does not fit: e.g. RoPE at head dim 128 or 256 on sm_86/sm_89,
// which have about 99 KB per block.
Route check_cuda_prefill(int device, int head_dim, bool rope, int cta_tile_q, int smem_limit) {
  const Route route = require_prefill_route(true, head_dim);
  const int limit = smem_limit >= 0 ? smem_limit : smem_optin_limit(device);
  const int need = prefill_smem_bytes(head_dim, rope, cta_tile_q);
  if (need > limit)
    throw Error(FI4J_ERR_UNSUPPORTED, "prefill at head_dim " + std::to_string(head_dim) + (rope ? " with RoPE" : "") +
                                          " needs " + std::to_string(need) + " bytes of shared memory per block; device " +
                                          std::to_string(device) + " allows " + std::to_string(limit));
  return route;
}

}  // namespace fi4j

namespace {

std::string at(const char* name, long long i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

/// A CSR offset array on the host: starts at 0, non-decreasing, ends within `limit` (described by limit_what).
void check_indptr_host(const int32_t* indptr, int batch, const char* name, long long limit,
                       const std::string& limit_what) {
  if (indptr[0] != 0) fail_arg(at(name, 0), "0", indptr[0]);
  for (int b = 0; b < batch; ++b)
    if (indptr[b + 1] < indptr[b])
      fail_arg(at(name, b + 1), ">= " + at(name, b) + " (" + std::to_string(indptr[b]) + ")", indptr[b + 1]);
  if (indptr[batch] > limit) fail_arg(at(name, batch), "<= " + limit_what + " (" + std::to_string(limit) + ")",
                                      indptr[batch]);
}

PagedKv make_paged_kv(const fi4j_paged_kv& c, const fi4j_prefill_args& a, bool cuda) {
  if (c.dtype != a.dtype)
    fail_arg("paged_kv.dtype", std::string("the query dtype ") + dtype_name(a.dtype), dtype_name(c.dtype));
  require(c.num_kv_heads == a.num_kv_heads, "paged_kv.num_kv_heads",
          "num_kv_heads (" + std::to_string(a.num_kv_heads) + ")", c.num_kv_heads);
  require(c.head_dim == a.head_dim, "paged_kv.head_dim", "head_dim (" + std::to_string(a.head_dim) + ")",
          c.head_dim);
  require(c.batch_size == a.batch_size, "paged_kv.batch_size", "batch_size (" + std::to_string(a.batch_size) + ")",
          c.batch_size);
  require(c.page_size >= 1, "paged_kv.page_size", ">= 1", c.page_size);
  require(c.num_pages >= 0, "paged_kv.num_pages", ">= 0", c.num_pages);
  require(c.num_indices >= 0, "paged_kv.num_indices", ">= 0", c.num_indices);
  check_stride(c.page_stride, "paged_kv.page_stride", cuda);
  check_stride(c.token_stride, "paged_kv.token_stride", cuda);
  check_stride(c.head_stride, "paged_kv.head_stride", cuda);
  check_ptr(c.k, "paged_kv.k", c.num_pages > 0, cuda);
  check_ptr(c.v, "paged_kv.v", c.num_pages > 0, cuda);
  check_ptr(c.kv_indptr, "paged_kv.kv_indptr", true, false);
  check_ptr(c.kv_last_page_len, "paged_kv.kv_last_page_len", c.batch_size > 0, false);
  check_ptr(c.kv_indices, "paged_kv.kv_indices", c.num_indices > 0, false);
  return to_paged_kv(c);
}

void check_mask_mode(int mode, const char* name) {
  if (mode != FI4J_MASK_NONE && mode != FI4J_MASK_CAUSAL && mode != FI4J_MASK_CUSTOM)
    fail_arg(name, "NONE (0), CAUSAL (1) or CUSTOM (2)", mode);
}

int64_t packed_bytes(int64_t bits) { return (bits + 7) / 8; }

/// Little-endian bit order: element o is bit o % 8 of byte o / 8; the last byte's unused bits are 0.
void pack(const uint8_t* mask, int64_t n, uint8_t* packed) {
  for (int64_t byte = 0; byte < packed_bytes(n); ++byte) {
    uint8_t bits = 0;
    for (int64_t o = byte * 8; o < n && o < byte * 8 + 8; ++o)
      if (mask[o]) bits = static_cast<uint8_t>(bits | (1u << (o % 8)));
    packed[byte] = bits;
  }
}

/// Validates everything about a prefill call and converts it; on the CPU backend also the index arrays and mask
/// offsets (host memory), so that the reference never reads outside them.
PrefillParams make_params(int device, const fi4j_prefill_args& a) {
  const bool cuda = !is_cpu(device);
  check_attention_config(device, a.dtype, a.head_dim, a.num_qo_heads, a.num_kv_heads);
  require(a.batch_size >= 0, "batch_size", ">= 0", a.batch_size);
  require(a.nnz_qo >= 0, "nnz_qo", ">= 0", a.nnz_qo);
  PrefillParams p{};
  p.dtype = static_cast<DType>(a.dtype);
  p.batch_size = a.batch_size;
  p.num_qo_heads = a.num_qo_heads;
  p.num_kv_heads = a.num_kv_heads;
  p.head_dim = a.head_dim;

  if (!a.qo_indptr) require(a.batch_size == 1, "batch_size", "1 when qo_indptr is null (single request)",
                            a.batch_size);
  p.qo_indptr = static_cast<const int32_t*>(a.qo_indptr);
  p.nnz_qo = a.nnz_qo;
  const bool rows = a.nnz_qo > 0 && a.batch_size > 0;
  check_ptr(a.q, "q", rows, cuda);
  check_ptr(a.o, "o", rows, cuda);
  check_stride(a.q_stride_n, "q_stride_n", cuda);
  check_stride(a.q_stride_h, "q_stride_h", cuda);
  check_stride(a.o_stride_n, "o_stride_n", cuda);
  check_stride(a.o_stride_h, "o_stride_h", cuda);
  p.q = a.q;
  p.q_stride_n = a.q_stride_n;
  p.q_stride_h = a.q_stride_h;
  p.o = a.o;
  p.o_stride_n = a.o_stride_n;
  p.o_stride_h = a.o_stride_h;
  p.lse = static_cast<float*>(a.lse);

  if (a.kv_storage == FI4J_KV_RAGGED) {
    p.kv_storage = KvStorage::Ragged;
    require(a.nnz_kv >= 0, "nnz_kv", ">= 0", a.nnz_kv);
    if (!a.kv_indptr) require(a.batch_size == 1, "batch_size", "1 when kv_indptr is null (single request)",
                              a.batch_size);
    check_ptr(a.k, "k", a.nnz_kv > 0, cuda);
    check_ptr(a.v, "v", a.nnz_kv > 0, cuda);
    check_stride(a.k_stride_n, "k_stride_n", cuda);
    check_stride(a.k_stride_h, "k_stride_h", cuda);
    check_stride(a.v_stride_n, "v_stride_n", cuda);
    check_stride(a.v_stride_h, "v_stride_h", cuda);
    p.ragged.k = a.k;
    p.ragged.k_stride_n = a.k_stride_n;
    p.ragged.k_stride_h = a.k_stride_h;
    p.ragged.v = a.v;
    p.ragged.v_stride_n = a.v_stride_n;
    p.ragged.v_stride_h = a.v_stride_h;
    p.ragged.kv_indptr = static_cast<const int32_t*>(a.kv_indptr);
    p.ragged.nnz_kv = a.nnz_kv;
  } else if (a.kv_storage == FI4J_KV_PAGED) {
    p.kv_storage = KvStorage::Paged;
    p.paged = make_paged_kv(a.paged_kv, a, cuda);
  } else {
    fail_arg("kv_storage", "RAGGED (0) or PAGED (1)", a.kv_storage);
  }

  check_mask_mode(a.mask_mode, "mask_mode");
  p.mask_mode = static_cast<MaskMode>(a.mask_mode);
  if (p.mask_mode == MaskMode::Custom) {
    require(a.custom_mask_bytes >= 0, "custom_mask_bytes", ">= 0", a.custom_mask_bytes);
    check_ptr(a.custom_mask, "custom_mask", a.custom_mask_bytes > 0, false);
    if (!a.mask_indptr) require(a.batch_size == 1, "batch_size", "1 when mask_indptr is null (single request)",
                                a.batch_size);
    p.mask.bits = static_cast<const uint8_t*>(a.custom_mask);
    p.mask.indptr = static_cast<const int32_t*>(a.mask_indptr);
  }
  p.variant = make_variant(a.options, a.head_dim);

  require(a.num_work >= 0, "num_work", ">= 0", a.num_work);
  require(a.cta_tile_q >= 0, "cta_tile_q", ">= 0", a.cta_tile_q);
  require(a.workspace_bytes >= 0, "workspace_bytes", ">= 0", a.workspace_bytes);
  p.plan.num_work = a.num_work;
  p.plan.cta_tile_q = a.cta_tile_q;
  p.plan.workspace = a.workspace;
  p.plan.workspace_bytes = a.workspace_bytes;
  if (a.num_work > 0) {  // a split plan: the work list and partial outputs live in the workspace
    if (a.cta_tile_q != 64 && a.cta_tile_q != 128 && a.cta_tile_q != 256)
      fail_arg("cta_tile_q", "64, 128 or 256 with a split plan (num_work " + std::to_string(a.num_work) + ")",
               a.cta_tile_q);
    check_ptr(a.workspace, "workspace", true, false);
    const int64_t need = prefill_split_layout(a.num_work, a.num_kv_heads, a.cta_tile_q, a.head_dim).total;
    if (a.workspace_bytes < need)
      fail_arg("workspace_bytes", ">= " + std::to_string(need) + " for the plan's " + std::to_string(a.num_work) +
                                      " work items", a.workspace_bytes);
  }

  if (cuda || a.batch_size == 0) return p;
  // CPU backend: index arrays are host memory, checked here
  if (p.qo_indptr) check_indptr_host(p.qo_indptr, a.batch_size, "qo_indptr", a.nnz_qo, "nnz_qo");
  if (p.kv_storage == KvStorage::Ragged && p.ragged.kv_indptr)
    check_indptr_host(p.ragged.kv_indptr, a.batch_size, "kv_indptr", a.nnz_kv, "nnz_kv");
  if (p.kv_storage == KvStorage::Paged)
    check_page_table_host(p.paged, a.paged_kv.num_indices, "paged_kv.", "paged_kv.num_indices");
  if (p.mask_mode == MaskMode::Custom) {
    const int32_t* mi = p.mask.indptr;
    if (mi && mi[0] != 0) fail_arg("mask_indptr[0]", "0", mi[0]);
    for (int b = 0; b < a.batch_size; ++b) {
      const int64_t qo = p.qo_indptr ? p.qo_indptr[b + 1] - p.qo_indptr[b] : a.nnz_qo;
      int64_t kv = 0;
      if (p.kv_storage == KvStorage::Ragged) {
        kv = p.ragged.kv_indptr ? p.ragged.kv_indptr[b + 1] - p.ragged.kv_indptr[b] : a.nnz_kv;
      } else {
        const int64_t pages = p.paged.kv_indptr[b + 1] - p.paged.kv_indptr[b];
        kv = pages == 0 ? 0 : int64_t{p.paged.page_size} * (pages - 1) + p.paged.kv_last_page_len[b];
      }
      const int64_t need = packed_bytes(qo * kv);
      const int64_t start = mi ? mi[b] : 0;
      const int64_t end = mi ? mi[b + 1] : a.custom_mask_bytes;
      if (end < start + need)
        fail_arg(mi ? at("mask_indptr", b + 1) : std::string("custom_mask_bytes"),
                 ">= " + std::to_string(start + need) + " (request " + std::to_string(b) + "'s " +
                     std::to_string(qo) + " x " + std::to_string(kv) + " mask takes " + std::to_string(need) +
                     " bytes from byte " + std::to_string(start) + ")",
                 end);
    }
    if (mi && mi[a.batch_size] > a.custom_mask_bytes)
      fail_arg(at("mask_indptr", a.batch_size),
               "<= custom_mask_bytes (" + std::to_string(a.custom_mask_bytes) + ")", mi[a.batch_size]);
  }
  return p;
}

}  // namespace

extern "C" {

FI4J_API int fi4j_prefill_supported(int device, int32_t dtype, int32_t head_dim, int32_t num_qo_heads,
                                    int32_t num_kv_heads) {
  return guarded([&] {
    check_device(device);
    check_attention_config(device, dtype, head_dim, num_qo_heads, num_kv_heads);
    if (!is_cpu(device)) check_cuda_prefill(device, head_dim, false, 64);
  });
}

FI4J_API int fi4j_batch_prefill_plan(int device, fi4j_prefill_plan* plan, void* workspace, int64_t workspace_bytes,
                                     void* stream) {
  return guarded([&] {
    if (!plan) fail_arg("plan", "non-null", "null");
    check_device(device);
    require(workspace_bytes >= 0, "workspace_bytes", ">= 0", workspace_bytes);
    // What fi4j_prefill_supported says first, so that an unsupported configuration is reported before anything
    // about the batch; then the kernel, resolved once for every run of this plan.
    check_attention_config(device, plan->dtype, plan->head_dim, plan->num_qo_heads, plan->num_kv_heads);
    if (plan->pos_encoding != FI4J_POS_NONE && plan->pos_encoding != FI4J_POS_ROPE_LLAMA)
      fail_arg("pos_encoding", "NONE (0) or ROPE_LLAMA (1)", plan->pos_encoding);
    const bool rope = plan->pos_encoding == FI4J_POS_ROPE_LLAMA;
    if (!is_cpu(device)) check_cuda_prefill(device, plan->head_dim, false, 64);
    jit::PrepareInfo info;
    fill_kernel_info(resolve_prefill_kernel(device, plan->dtype, plan->head_dim, plan->soft_cap != 0, rope, &info),
                     info, &plan->kernel);
    require(plan->batch_size >= 0, "batch_size", ">= 0", plan->batch_size);
    require(plan->num_kv_heads > 0, "num_kv_heads", "> 0", plan->num_kv_heads);
    require(plan->num_qo_heads > 0, "num_qo_heads", "> 0", plan->num_qo_heads);
    if (plan->num_qo_heads % plan->num_kv_heads != 0)
      fail_arg("num_qo_heads", "a multiple of num_kv_heads (" + std::to_string(plan->num_kv_heads) + ")",
               plan->num_qo_heads);
    require(plan->head_dim >= 1, "head_dim", ">= 1", plan->head_dim);
    require(plan->page_size >= 0, "page_size", ">= 0 (0 for ragged K/V)", plan->page_size);
    check_mask_mode(plan->mask_mode, "mask_mode");
    check_ptr(plan->qo_indptr_host, "qo_indptr_host", true, false);
    check_ptr(plan->kv_len_host, "kv_len_host", plan->batch_size > 0, false);
    check_indptr_host(plan->qo_indptr_host, plan->batch_size, "qo_indptr_host", INT32_MAX, "2^31-1");
    for (int b = 0; b < plan->batch_size; ++b)
      require(plan->kv_len_host[b] >= 0, at("kv_len_host", b), ">= 0", plan->kv_len_host[b]);
    plan->num_work = 0;
    plan->workspace_bytes = 0;
    // Query rows per block (prefill_choose_cta_tile_q): 64 when every request's packed rows (qo_len x group) fit
    // one 64-row tile (decode-like steps and short appends waste less of a tile), else 256 or 128 rows as the head
    // dim and the device's shared memory allow. RoPE is not known here; the kernel then runs 64-row blocks (and
    // ignores a split planned for other blocks).
    int64_t max_rows = 0;
    const int64_t group = plan->num_qo_heads / plan->num_kv_heads;
    for (int b = 0; b < plan->batch_size; ++b)
      max_rows = std::max<int64_t>(max_rows, static_cast<int64_t>(plan->qo_indptr_host[b + 1] - plan->qo_indptr_host[b]) * group);
    if (is_cpu(device)) {
      plan->cta_tile_q = 0;
      return;
    }
    check_stream(device, stream);
    const int limit = smem_optin_limit(device);
    plan->cta_tile_q = prefill_choose_cta_tile_q(plan->head_dim, false, max_rows, limit);
    // The block every run of this plan launches fits (with RoPE: the 64-row RoPE block), so runs need not check it.
    check_cuda_prefill(device, plan->head_dim, rope, plan->cta_tile_q, limit);
    // Split-KV when the row tiles x KV heads cannot fill the GPU (prefill_plan.h).
    int sms = 0;
    check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
    PrefillSplitInput in;
    in.batch_size = plan->batch_size;
    in.qo_indptr = plan->qo_indptr_host;
    in.kv_len = plan->kv_len_host;
    in.group = static_cast<int>(group);
    in.num_kv_heads = plan->num_kv_heads;
    in.head_dim = plan->head_dim;
    in.rows_tile = plan->cta_tile_q;
    in.causal = plan->mask_mode == FI4J_MASK_CAUSAL;
    in.window_left = plan->window_left;
    in.num_sms = sms;
    in.blocks_per_sm = plan->cta_tile_q == 64 ? 2 : 1;
    in.workspace_bytes = workspace == nullptr ? 0 : workspace_bytes;
    const PrefillSplitPlan split = plan_prefill_split(in);
    if (split.num_work() == 0) return;
    check_ptr(workspace, "workspace", true, false);
    const std::vector<unsigned char> image = prefill_split_image(split, plan->num_kv_heads, plan->cta_tile_q,
                                                                 plan->head_dim);
    check_cuda(cudaMemcpyAsync(workspace, image.data(), image.size(), cudaMemcpyHostToDevice,
                               static_cast<cudaStream_t>(stream)),
               "cudaMemcpyAsync (prefill work list)");
    check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize (prefill plan)");
    plan->num_work = split.num_work();
    plan->workspace_bytes = split.bytes;
  });
}

FI4J_API int fi4j_batch_prefill(int device, const fi4j_prefill_args* a, void* stream) {
  return guarded([&] {
    if (!a) fail_arg("args", "non-null", "null");
    check_device(device);
    PrefillParams p = make_params(device, *a);
    const bool rope = p.variant.pos_encoding == PosEncoding::RopeLlama;
    const bool cap = p.variant.logits_soft_cap > 0.f;
    if (!is_cpu(device)) {
      const Kernel* kernel = nullptr;
      if (a->kernel != 0) {  // planned: the plan resolved the kernel and checked its shared memory
        kernel = &kernel_registry().find(a->kernel, "kernel");
        check_kernel_matches(*kernel, prefill_kernel_key(device, a->dtype, p.head_dim, cap, rope), "kernel");
      } else {
        int limit = -1;  // read once per call, only when this call chooses the block size
        if (p.plan.cta_tile_q == 0) {  // not planned (single prefill): choose from this call's rows
          const long long rows = p.qo_indptr == nullptr
                                     ? static_cast<long long>(p.nnz_qo) * (p.num_qo_heads / p.num_kv_heads)
                                     : static_cast<long long>(INT32_MAX);
          limit = smem_optin_limit(device);
          p.plan.cta_tile_q = prefill_choose_cta_tile_q(p.head_dim, rope, rows, limit);
        }
        check_cuda_prefill(device, p.head_dim, rope, p.plan.cta_tile_q, limit);
        kernel = &resolve_prefill_kernel(device, a->dtype, p.head_dim, cap, rope, nullptr);
      }
      check_stream(device, stream);
      require(p.num_kv_heads <= 65535, "num_kv_heads", "<= 65535 on the CUDA backend (grid y)", p.num_kv_heads);
      if (p.lse && (reinterpret_cast<uintptr_t>(p.lse) & 3u) != 0)
        fail_arg("lse", "4-byte aligned", "address % 4 = " + std::to_string(reinterpret_cast<uintptr_t>(p.lse) % 4));
      if (p.batch_size == 0 || p.nnz_qo == 0) return;
      cudaGetLastError();  // a stale error left by another library must not be reported as ours
      check_cuda_launch(launch_prefill_kernel(*kernel, p, static_cast<cudaStream_t>(stream)),
                        kernel->route == Route::Jit ? "run-time compiled batch prefill launch" : "batch prefill launch");
      return;
    }
    if (a->kernel != 0)
      check_kernel_matches(kernel_registry().find(a->kernel, "kernel"),
                           prefill_kernel_key(device, a->dtype, p.head_dim, cap, rope), "kernel");
    if (p.batch_size == 0 || p.nnz_qo == 0) return;
    cpu::batch_prefill(p);
  });
}

FI4J_API int fi4j_packbits(const uint8_t* mask, int64_t n, uint8_t* packed) {
  return guarded([&] {
    require(n >= 0, "n", ">= 0", n);
    check_ptr(mask, "mask", n > 0, false);
    check_ptr(packed, "packed", n > 0, false);
    pack(mask, n, packed);
  });
}

FI4J_API int fi4j_segment_packbits(const uint8_t* mask, const int32_t* indptr, int32_t batch_size, uint8_t* packed,
                                   int64_t packed_capacity, int32_t* packed_indptr) {
  return guarded([&] {
    require(batch_size >= 0, "batch_size", ">= 0", batch_size);
    require(packed_capacity >= 0, "packed_capacity", ">= 0", packed_capacity);
    check_ptr(indptr, "indptr", true, false);
    check_ptr(packed_indptr, "packed_indptr", true, false);
    check_indptr_host(indptr, batch_size, "indptr", INT32_MAX, "2^31-1");
    int64_t total = 0;
    for (int b = 0; b < batch_size; ++b) total += packed_bytes(indptr[b + 1] - indptr[b]);
    require(total <= INT32_MAX, "packed size", "<= 2^31-1 bytes (int32 offsets)", total);
    require(packed_capacity >= total, "packed_capacity", ">= " + std::to_string(total) + " (the packed segments)",
            packed_capacity);
    check_ptr(mask, "mask", indptr[batch_size] > 0, false);
    check_ptr(packed, "packed", total > 0, false);
    int64_t out = 0;
    packed_indptr[0] = 0;
    for (int b = 0; b < batch_size; ++b) {
      const int64_t len = indptr[b + 1] - indptr[b];
      pack(mask + indptr[b], len, packed + out);
      out += packed_bytes(len);
      packed_indptr[b + 1] = static_cast<int32_t>(out);
    }
  });
}

}  // extern "C"
