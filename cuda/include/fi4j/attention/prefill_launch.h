// Host entry point of the ahead-of-time compiled prefill kernel. Plain C++: no CUDA language extensions here.
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/attention/prefill_params.h"

namespace fi4j {

/// Batch prefill (ragged or paged K/V) on tensor cores, sm_80+. Instantiated ahead of time for dtype F16/BF16,
/// head_dim 64/128/256 (other head dims: cpp/src/attention/prefill_jit.h), soft cap on/off, pos_encoding None/RopeLlama, every mask mode and window; any other configuration
/// (or num_qo_heads not a multiple of num_kv_heads) returns cudaErrorNotSupported. Grid (row tiles upper bound,
/// num_kv_heads); needs no workspace. p.plan.cta_tile_q picks the block shape (prefill_cta_tile_q); 0 picks 64 for a
/// single request that fits one 64-row tile, else 256 (callers that know the device use prefill_choose_cta_tile_q). Neither allocates nor synchronises (capturable).
/// nnz_qo == 0 or batch_size == 0 launches nothing. Otherwise returns the launch's cudaGetLastError().
cudaError_t launch_batch_prefill(const PrefillParams& p, cudaStream_t stream);

/// One ahead-of-time prefill instantiation (every block shape, RoPE on and off, the split merge): what
/// launch_batch_prefill does for its configuration, without choosing it.
using PrefillLaunchFn = cudaError_t (*)(const PrefillParams& p, cudaStream_t stream);

/// The ahead-of-time launcher of a prefill configuration, or nullptr when none is instantiated. Called once per
/// configuration (the kernel registry keeps it); launch_batch_prefill calls it on every launch.
PrefillLaunchFn aot_prefill_launcher(DType dtype, int head_dim, bool soft_cap);

/// Query rows per block the kernel uses when asked for cta_tile_q (PrefillPlanView::cta_tile_q): 256 (8 warps x 2
/// row tiles; 128 for head_dim > 128), 128 (8 warps), anything else 64 (4 warps); with RoPE always 64.
int prefill_cta_tile_q(int head_dim, bool rope, int cta_tile_q);

/// Dynamic shared memory one prefill block needs for a head dim (any multiple of 16 from 16 to 256: the
/// ahead-of-time ones and those compiled at run time) with or without RoPE at the block size
/// prefill_cta_tile_q(head_dim, rope, cta_tile_q); 0 for other head dims. From fi4j/attention/prefill_geometry.h.
int prefill_smem_bytes(int head_dim, bool rope, int cta_tile_q);

/// The block size (query rows) to ask for: 64 when every request has at most max_rows <= 64 packed rows (qo_len x
/// group) or with RoPE, else the largest of 256 and 128 that the head dim allows and whose shared memory fits
/// smem_limit (the device's opt-in per-block maximum), else 64.
int prefill_choose_cta_tile_q(int head_dim, bool rope, long long max_rows, int smem_limit);

}  // namespace fi4j
