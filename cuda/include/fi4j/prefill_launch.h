// Host entry point of the ahead-of-time compiled prefill kernel. Plain C++: no CUDA language extensions here.
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/prefill_params.h"

namespace fi4j {

/// Batch prefill (ragged or paged K/V) on tensor cores, sm_80+. Instantiated for dtype F16/BF16, head_dim
/// 64/128/256, soft cap on/off, pos_encoding None/RopeLlama, every mask mode and window; any other configuration
/// (or num_qo_heads not a multiple of num_kv_heads) returns cudaErrorNotSupported. Grid (row tiles upper bound,
/// num_kv_heads); needs no plan or workspace (p.plan is ignored). Neither allocates nor synchronises (capturable).
/// nnz_qo == 0 or batch_size == 0 launches nothing. Otherwise returns the launch's cudaGetLastError().
cudaError_t launch_batch_prefill(const PrefillParams& p, cudaStream_t stream);

/// Dynamic shared memory one prefill block needs for a head dim (64/128/256) with or without RoPE; 0 otherwise.
int prefill_smem_bytes(int head_dim, bool rope);

}  // namespace fi4j
