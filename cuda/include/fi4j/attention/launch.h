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

/// Copies p.nnz new K/V tokens into the paged cache (k_cache / v_cache through kv's strides). Tokens outside their
/// request's pages are skipped. Instantiated for F16/BF16 and head_dim 64/128/256, else cudaErrorNotSupported.
/// nnz == 0 launches nothing. Otherwise returns the launch's cudaGetLastError().
cudaError_t launch_append_paged_kv(const AppendParams& p, cudaStream_t stream);

}  // namespace fi4j
