// Argument checks shared by the attention entry points (decode, prefill): devices and architectures,
// pointers and strides as the kernels need them, and the variant options. Each failure is an fi4j::Error with a
// message "<name> must be <expected>, got <actual>".
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "fi4j/attention/params.h"
#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

inline bool is_cpu(int device) { return device == FI4J_DEVICE_CPU; }

/// The CPU backend, or a valid CUDA device made current whose architecture this build has code for.
void check_device(int device);

/// Attention dtype (F16/BF16: else UNSUPPORTED), head counts (positive, qo a multiple of kv: else
/// INVALID_ARGUMENT) and, for the CPU backend, the head dims it runs (even, 2..1024: else UNSUPPORTED).
void check_attention_config(int device, int dtype, int head_dim, int num_qo_heads, int num_kv_heads);

/// Converts a launcher's status: cudaErrorNotSupported is UNSUPPORTED ("<what>: configuration not instantiated"),
/// any other error a CUDA error naming `what`.
void check_cuda_launch(cudaError_t err, const char* what);

/// Non-null when needed; 16-byte aligned on the CUDA backend (the kernels use 16-byte vector accesses).
void check_ptr(const void* p, const char* name, bool needed, bool cuda);

/// Non-negative; a multiple of 8 elements (16 bytes) on the CUDA backend.
void check_stride(int64_t s, const char* name, bool cuda);

/// Converts a C paged-KV description (already checked) into the kernels' PagedKv.
PagedKv to_paged_kv(const fi4j_paged_kv& c);

/// Validates C attention options and converts them (sm_scale <= 0 becomes 1/sqrt(head_dim)).
AttentionVariant make_variant(const fi4j_attention_options& o, int head_dim);

}  // namespace fi4j
