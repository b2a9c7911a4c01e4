// Argument checks of the attention entry points (decode, append, prefill) on top of core/checks.h: the attention
// configuration, the paged KV cache's page table, the variant options. Each failure is an fi4j::Error with a
// message "<name> must be <expected>, got <actual>".
#pragma once

#include <cstdint>

#include "core/checks.h"
#include "fi4j/attention/params.h"
#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

/// Attention dtype (F16/BF16: else UNSUPPORTED), head counts (positive, qo a multiple of kv: else
/// INVALID_ARGUMENT) and, for the CPU backend, the head dims it runs (even, 2..1024: else UNSUPPORTED).
void check_attention_config(int device, int dtype, int head_dim, int num_qo_heads, int num_kv_heads);

/// Converts a C paged-KV description (already checked) into the kernels' PagedKv.
PagedKv to_paged_kv(const fi4j_paged_kv& c);

/// The contents of a paged cache's page table on the host: kv_indptr starts at 0, never decreases and ends within
/// num_indices; kv_last_page_len within 0..page_size (0 exactly when a request has no pages); kv_indices within
/// the pages. prefix: what messages put before the field names ("" for decode and append, "paged_kv." for
/// prefill); num_indices_name: how they name num_indices. Strings are built only on failure.
void check_page_table_host(const PagedKv& kv, int64_t num_indices, const char* prefix,
                           const char* num_indices_name);

/// Validates C attention options and converts them (sm_scale <= 0 becomes 1/sqrt(head_dim)).
AttentionVariant make_variant(const fi4j_attention_options& o, int head_dim);

}  // namespace fi4j
