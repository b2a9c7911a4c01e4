package io.github.flashinfer4j.attention;


/**
 * Layout of one page of a paged KV cache: NHD is {@code [page_size, num_kv_heads, head_dim]}, HND is
 * {@code [num_kv_heads, page_size, head_dim]}. Single-request K/V tensors use the same names without the page.
 */
public enum KvLayout {
  /** Tokens before heads: a page is [pageSize, numKvHeads, headDim]. */
  NHD,
  /** Heads before tokens: a page is [numKvHeads, pageSize, headDim]. */
  HND
}
