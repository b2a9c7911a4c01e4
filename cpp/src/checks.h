// Argument checks shared by the attention entry points (decode, prefill): devices and architectures,
// pointers and strides as the kernels need them, and the variant options. Each failure is an fi4j::Error with a
// message "<name> must be <expected>, got <actual>".
#pragma once

#include <cstdint>

#include "fi4j/params.h"
#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

inline bool is_cpu(int device) { return device == FI4J_DEVICE_CPU; }

/// The CPU backend, or a valid CUDA device made current whose architecture this build has code for.
void check_device(int device);

/// Non-null when needed; 16-byte aligned on the CUDA backend (the kernels use 16-byte vector accesses).
void check_ptr(const void* p, const char* name, bool needed, bool cuda);

/// Non-negative; a multiple of 8 elements (16 bytes) on the CUDA backend.
void check_stride(int64_t s, const char* name, bool cuda);

/// Converts a C paged-KV description (already checked) into the kernels' PagedKv.
PagedKv to_paged_kv(const fi4j_paged_kv& c);

/// Validates C attention options and converts them (sm_scale <= 0 becomes 1/sqrt(head_dim)).
AttentionVariant make_variant(const fi4j_attention_options& o, int head_dim);

}  // namespace fi4j
