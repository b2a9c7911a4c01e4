// Host entry points of the ahead-of-time compiled attention kernels (decode, append; prefill: prefill_launch.h). Plain C++: no CUDA language extensions here.
// The launchers neither allocate nor synchronise, so they can be captured in a CUDA graph. Arguments are
// validated by the caller (cpp/src/attention); the launchers only refuse configurations that have no kernel.
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/attention/params.h"

namespace fi4j {

/// Batch decode over a paged KV cache (also single decode: kv.kv_indptr == nullptr).
/// Instantiated for dtype F16/BF16, head_dim 64/128/256, soft cap on/off, pos_encoding None/RopeLlama; any other
/// configuration returns cudaErrorNotSupported. Grid (work items or batch_size, num_kv_heads), then the merge of
/// split requests; a batch of 0 launches nothing.
/// Otherwise returns the launch's cudaGetLastError().
cudaError_t launch_batch_decode(const DecodeParams& p, cudaStream_t stream);

/// One decode kernel instantiation over `items` blocks x num_kv_heads (no merge).
using DecodeLaunchFn = cudaError_t (*)(const DecodeParams& p, int items, cudaStream_t stream);
/// The split-KV merge of one (dtype, head dim); pdl: launch it as a programmatic dependent launch (sm_90+).
using DecodeMergeFn = cudaError_t (*)(const DecodeParams& p, cudaStream_t stream, bool pdl);

/// The ahead-of-time launcher of a decode configuration on a path, or nullptr when none is instantiated. Called
/// once per configuration (the kernel registry keeps it); launch_batch_decode calls it on every launch.
DecodeLaunchFn aot_decode_launcher(DType dtype, int head_dim, bool soft_cap, bool rope, DecodePath path);
/// The ahead-of-time merge of a (dtype, head dim), or nullptr.
DecodeMergeFn aot_decode_merger(DType dtype, int head_dim);

/// Runs a decode with resolved launchers: nothing for an empty batch, else the kernel over the work items (or the
/// requests) and, for a split plan, the merge.
cudaError_t run_aot_decode(DecodeLaunchFn launch, DecodeMergeFn merge, bool pdl, const DecodeParams& p,
                           cudaStream_t stream);

/// Copies p.nnz new K/V tokens into the paged cache (k_cache / v_cache through kv's strides). Tokens outside their
/// request's pages are skipped. Instantiated for F16/BF16 and head_dim 64/128/256, else cudaErrorNotSupported.
/// nnz == 0 launches nothing. Otherwise returns the launch's cudaGetLastError().
cudaError_t launch_append_paged_kv(const AppendParams& p, cudaStream_t stream);

}  // namespace fi4j
