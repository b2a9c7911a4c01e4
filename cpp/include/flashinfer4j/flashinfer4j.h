/*
 * flashinfer4j C API: the only header the JavaCPP preset parses.
 *
 * Plain C. Every function returns an fi4j_status; on failure fi4j_last_error() (thread-local) holds a message
 * naming the argument, the expected and the actual value. Device memory is typed void* so that no Java array
 * overload can hand host memory to a kernel. Device -1 (FI4J_DEVICE_CPU) is the CPU reference backend: its
 * "device" memory is host memory and its ops run the reference implementation.
 */
#ifndef FLASHINFER4J_H_
#define FLASHINFER4J_H_

#include <stdint.h>

#if defined(FI4J_BUILDING_LIBRARY)
#define FI4J_API __attribute__((visibility("default")))
#else
#define FI4J_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum fi4j_status {
  FI4J_OK = 0,
  FI4J_ERR_INVALID_ARGUMENT = 1,
  FI4J_ERR_UNSUPPORTED = 2,
  FI4J_ERR_CUDA = 3,
  FI4J_ERR_NO_DEVICE = 4,
  FI4J_ERR_OUT_OF_MEMORY = 5,
  FI4J_ERR_INTERNAL = 6
};

enum fi4j_dtype {
  FI4J_F16 = 0,
  FI4J_BF16 = 1,
  FI4J_F32 = 2,
  FI4J_I32 = 3,
  FI4J_U8 = 4,
  FI4J_FP8_E4M3 = 5,
  FI4J_FP8_E5M2 = 6
};

enum fi4j_pos_encoding { FI4J_POS_NONE = 0, FI4J_POS_ROPE_LLAMA = 1 };

#define FI4J_DEVICE_CPU (-1)

/* ---- library and devices ---- */

/** Message of the last failed call on this thread ("" when none). */
FI4J_API const char* fi4j_last_error(void);
/** Library version as major*10000 + minor*100 + patch. */
FI4J_API int fi4j_version(void);
/** CUDA runtime version the library was built against (e.g. 13000). */
FI4J_API int fi4j_cuda_runtime_version(void);
/** Comma-separated CUDA architectures compiled into this build, e.g. "90". */
FI4J_API const char* fi4j_cuda_architectures(void);
/** Number of usable CUDA devices; 0 (and FI4J_OK) when there is no driver or no device. */
FI4J_API int fi4j_device_count(int* count);
/** Why no CUDA device is usable ("" when one is). */
FI4J_API const char* fi4j_no_device_reason(void);

typedef struct fi4j_device_info {
  char name[256];
  int major;
  int minor;
  int multiprocessor_count;
  int64_t total_memory;
  int64_t free_memory;
} fi4j_device_info;

FI4J_API int fi4j_get_device_info(int device, fi4j_device_info* info);

/* ---- memory and streams ---- */

/** Allocates bytes on the device (256-byte aligned); device -1 allocates host memory. */
FI4J_API int fi4j_malloc(int device, int64_t bytes, void** out);
FI4J_API int fi4j_free(int device, void* ptr);
/** Synchronous copy between host (device -1) and/or device memory. */
FI4J_API int fi4j_memcpy(int dst_device, void* dst, int src_device, const void* src, int64_t bytes);
/** Copy on a stream (asynchronous when both sides are device memory or the host side is pinned). */
FI4J_API int fi4j_memcpy_async(int dst_device, void* dst, int src_device, const void* src, int64_t bytes,
                               void* stream);
FI4J_API int fi4j_memset(int device, void* ptr, int value, int64_t bytes);
/** Converts n host elements between F32 and F16/BF16/F32 (round to nearest even). */
FI4J_API int fi4j_convert_host(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n);

FI4J_API int fi4j_stream_create(int device, void** out);
FI4J_API int fi4j_stream_destroy(int device, void* stream);
FI4J_API int fi4j_stream_synchronize(int device, void* stream);
FI4J_API int fi4j_device_synchronize(int device);
/**
 * Live memory and streams this library handed out on `device` (-1: the CPU backend): allocations of fi4j_malloc not
 * yet freed, their bytes (as asked for), and streams of fi4j_stream_create not yet destroyed. Any out may be NULL.
 * The same registry makes fi4j_free of a pointer it did not allocate (or freed before, or with another device)
 * and fi4j_stream_destroy of a stream it did not create FI4J_ERR_INVALID_ARGUMENT rather than a crash, and
 * rejects a copy or memset that starts inside an allocation and runs past its end or names the wrong device.
 * Pointers it does not know (memory of other libraries) are not checked.
 */
FI4J_API int fi4j_memory_stats(int device, int64_t* live_allocations, int64_t* live_bytes, int64_t* live_streams);

/* ---- paged KV cache ---- */

/**
 * A paged KV cache and the page table over it. Strides are in elements; layouts NHD, HND and the combined
 * K/V tensor are all expressed through page/token/head strides (V shares K's strides). Index arrays are int32
 * in the memory of `device`. The library checks strides, sizes and alignment; the contents of the index arrays
 * are checked here only for the CPU backend (host memory). For CUDA the caller validates them on the host
 * (the Java PageTable does, before it uploads them), and the kernels still skip any page id outside
 * [0, num_pages) rather than touch memory outside the cache.
 */
typedef struct fi4j_paged_kv {
  const void* k;
  const void* v;
  int64_t page_stride;
  int64_t token_stride;
  int64_t head_stride;
  int32_t num_pages;
  int32_t page_size;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t dtype;
  const void* kv_indptr;
  const void* kv_indices;
  const void* kv_last_page_len;
  int32_t batch_size;
  int32_t num_indices;
} fi4j_paged_kv;

/**
 * Append: token n of keys/values [nnz, num_kv_heads, head_dim] goes to request batch_indices[n] at position
 * positions[n] of the cache described by kv (whose k/v are written). Tokens outside their request's pages are
 * never written (the CPU backend reports them as FI4J_ERR_INVALID_ARGUMENT; the Java API validates them on the
 * host before either backend runs).
 */
typedef struct fi4j_append_args {
  int32_t nnz;
  const void* keys;
  int64_t keys_stride_n;
  int64_t keys_stride_h;
  const void* values;
  int64_t values_stride_n;
  int64_t values_stride_h;
  const void* batch_indices;
  const void* positions;
  fi4j_paged_kv kv;
} fi4j_append_args;

FI4J_API int fi4j_append_paged_kv(int device, const fi4j_append_args* args, void* stream);

/* ---- decode ---- */

/** Variant options shared by attention ops. sm_scale <= 0 means 1/sqrt(head_dim). */
typedef struct fi4j_attention_options {
  float sm_scale;
  float logits_soft_cap;
  int32_t window_left;
  int32_t pos_encoding;
  float rope_scale;
  float rope_theta;
} fi4j_attention_options;

/* ---- the kernel registry: what a plan resolved ---- */

enum fi4j_kernel_op { FI4J_OP_DECODE = 0, FI4J_OP_PREFILL = 1 };
/** Which kernel serves a configuration: the CPU reference, an ahead-of-time kernel, or one compiled at run time. */
enum fi4j_kernel_route { FI4J_ROUTE_CPU = 0, FI4J_ROUTE_AOT = 1, FI4J_ROUTE_JIT = 2 };
/** Where fi4j_kernel_prepare found a run-time compiled kernel. */
enum fi4j_jit_origin { FI4J_JIT_NONE = 0, FI4J_JIT_MEMORY = 1, FI4J_JIT_DISK = 2, FI4J_JIT_COMPILED = 3 };

/**
 * What resolving a configuration found: its route, what a run-time kernel took, and the registry handle that plans
 * keep and runs pass back (the route is decided once, at plan time; run() launches the handle).
 */
typedef struct fi4j_kernel_prepare_info {
  int32_t route;      /* fi4j_kernel_route */
  int32_t origin;     /* fi4j_jit_origin (FI4J_JIT_NONE unless route is JIT) */
  int32_t loaded;     /* 1 when this call loaded the compiled module into the device */
  double compile_ms;  /* NVRTC time when origin is COMPILED, else 0 */
  double total_ms;    /* time of the whole call */
  char key[160];      /* cache key of the run-time compiled kernel ("" unless route is JIT) */
  int64_t kernel;     /* the kernel registry's handle of the resolved kernel: plans pass it to every run */
} fi4j_kernel_prepare_info;

enum fi4j_split_mode {
  FI4J_SPLIT_AUTO = 0,   /* split long KV into chunks when requests x KV heads cannot fill the GPU */
  FI4J_SPLIT_NEVER = 1,  /* one block per (request, KV head) */
  FI4J_SPLIT_FIXED = 2   /* fixed chunk size for every request: bit-identical across batch compositions */
};

enum fi4j_decode_path { FI4J_PATH_AUTO = -1, FI4J_PATH_CUDA_CORES = 0, FI4J_PATH_TENSOR_CORES = 1 };

/**
 * Decode plan: inputs describe the batch (host copies of kv_indptr and kv_last_page_len) and the choices;
 * fi4j_batch_decode_plan fills the outputs and writes the work list into the workspace. The same plan is
 * then passed to every fi4j_batch_decode of that batch composition (e.g. once per layer).
 */
typedef struct fi4j_decode_plan {
  /* inputs */
  int32_t batch_size;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t page_size;
  int32_t window_left;
  const int32_t* kv_indptr_host;        /* [batch_size + 1] */
  const int32_t* kv_last_page_len_host; /* [batch_size] */
  int32_t split_mode;                   /* fi4j_split_mode */
  int32_t fixed_chunk;                  /* tokens per chunk for FI4J_SPLIT_FIXED (> 0) */
  int32_t path;                         /* fi4j_decode_path */
  int32_t graph_slots;                  /* > 0: CUDA-graph mode, a work list of exactly this many items */
  int32_t dtype;                        /* fi4j_dtype of q, the cache and out */
  int32_t soft_cap;                     /* 1: logits soft cap on (any cap > 0) */
  int32_t pos_encoding;                 /* fi4j_pos_encoding */
  /* outputs */
  int32_t num_work;                     /* 0: no split */
  int32_t chosen_path;                  /* FI4J_PATH_CUDA_CORES or FI4J_PATH_TENSOR_CORES */
  int32_t chunk_size;                   /* tokens per work item (0 without split) */
  int64_t workspace_bytes;              /* bytes of workspace this plan uses */
  fi4j_kernel_prepare_info kernel;      /* the resolved kernel of the chosen path (kernel.kernel: its handle) */
} fi4j_decode_plan;

/**
 * Workspace bytes that a decode plan with up to max_work work items needs for a batch (the caller owns and
 * allocates it; the default Java wrapper allocates 128 MiB).
 */
FI4J_API int64_t fi4j_decode_workspace_bytes(int32_t max_work, int32_t batch_size, int32_t num_qo_heads,
                                             int32_t head_dim);

/**
 * Plans a batch decode on the host and copies the work list into the workspace (device memory of `device`, or
 * host memory for the CPU backend) with one copy on `stream`. The CPU backend never splits.
 */
FI4J_API int fi4j_batch_decode_plan(int device, fi4j_decode_plan* plan, void* workspace, int64_t workspace_bytes,
                                    void* stream);

/**
 * Batch decode over a paged cache: q and o are [batch, num_qo_heads, head_dim] with element strides;
 * lse is [batch, num_qo_heads] float32 (base 2) or NULL. Single decode is the same call with
 * kv.kv_indptr == NULL, batch 1, kv_len = single_kv_len and all tokens in page 0.
 * With a plan (num_work > 0 or a tensor-core path), pass its outputs and the workspace it wrote.
 */
typedef struct fi4j_decode_args {
  int32_t num_qo_heads;
  int32_t dtype;
  const void* q;
  int64_t q_stride_n;
  int64_t q_stride_h;
  void* o;
  int64_t o_stride_n;
  int64_t o_stride_h;
  void* lse;
  fi4j_paged_kv kv;
  int32_t single_kv_len;
  fi4j_attention_options options;
  /* from the plan (all zero: no split, CUDA cores, resolved in this call) */
  int32_t num_work;
  int32_t path;
  void* workspace;
  int64_t workspace_bytes;
  int64_t kernel;  /* the plan's kernel handle (fi4j_decode_plan.kernel.kernel); 0: route this call */
} fi4j_decode_args;

FI4J_API int fi4j_batch_decode(int device, const fi4j_decode_args* args, void* stream);

/**
 * Checks a decode configuration against what this build can run on a device, without launching; FI4J_OK or
 * FI4J_ERR_UNSUPPORTED with a message that names the unsupported part.
 */
FI4J_API int fi4j_decode_supported(int device, int32_t dtype, int32_t head_dim, int32_t num_qo_heads,
                                   int32_t num_kv_heads);

/* ---- prefill ---- */

/**
 * Which keys a query row may see (SPEC.md, Attention). NONE: every key; CAUSAL: bottom-right aligned, key j is
 * seen by query row i when j <= i + kv_len - qo_len; CUSTOM: bit (i * kv_len + j) of the request's packed mask.
 * The sliding window (options.window_left) applies on top of each.
 */
enum fi4j_mask_mode { FI4J_MASK_NONE = 0, FI4J_MASK_CAUSAL = 1, FI4J_MASK_CUSTOM = 2 };

/** Where a prefill's keys and values live: ragged tensors [nnz_kv, num_kv_heads, head_dim] or a paged cache. */
enum fi4j_kv_storage { FI4J_KV_RAGGED = 0, FI4J_KV_PAGED = 1 };

/**
 * Prefill plan: inputs describe the batch (host arrays) and its options; fi4j_batch_prefill_plan checks them,
 * fills the outputs and writes whatever the backend's run needs into the workspace. The same plan then serves
 * every fi4j_batch_prefill of that batch composition (e.g. once per layer). The CPU backend plans nothing
 * (all outputs 0).
 */
typedef struct fi4j_prefill_plan {
  /* inputs */
  int32_t batch_size;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t page_size;               /* tokens per page; 0 for ragged K/V */
  int32_t mask_mode;               /* fi4j_mask_mode */
  int32_t window_left;             /* < 0: off */
  const int32_t* qo_indptr_host;   /* [batch_size + 1] */
  const int32_t* kv_len_host;      /* [batch_size] keys of each request */
  int32_t dtype;                   /* fi4j_dtype of q, k, v and out */
  int32_t soft_cap;                /* 1: logits soft cap on (any cap > 0) */
  int32_t pos_encoding;            /* fi4j_pos_encoding */
  /* outputs */
  int32_t num_work;                /* work items of a split plan; 0: no split */
  int32_t cta_tile_q;              /* query rows per block the backend chose; 0: not applicable */
  int64_t workspace_bytes;         /* bytes of workspace this plan uses */
  fi4j_kernel_prepare_info kernel; /* the resolved kernel (kernel.kernel: its handle) */
} fi4j_prefill_plan;

/**
 * Prefill attention for a batch of requests. Request b owns query rows qo_indptr[b] .. qo_indptr[b+1]-1 of q,
 * o and lse (q and o [nnz_qo, num_qo_heads, head_dim] with element strides, lse [nnz_qo, num_qo_heads] float32
 * contiguous, base 2, or NULL) and attends to its kv_len keys:
 *  - ragged (kv_storage FI4J_KV_RAGGED): rows kv_indptr[b] .. kv_indptr[b+1]-1 of k and v
 *    ([nnz_kv, num_kv_heads, head_dim] with token and head strides, so NHD and HND are both strides);
 *  - paged (FI4J_KV_PAGED): the pages of request b in paged_kv (whose dtype, num_kv_heads, head_dim and
 *    batch_size must agree with these).
 * Single prefill is a batch of one: qo_indptr NULL means one request of nnz_qo rows, kv_indptr NULL one request
 * of nnz_kv keys, mask_indptr NULL one mask at byte 0 (each allowed only with batch_size 1).
 * A custom mask (mask_mode FI4J_MASK_CUSTOM) is packed as fi4j_segment_packbits writes it: request b's
 * qo_len x kv_len bits, row-major, start at byte mask_indptr[b] of custom_mask (custom_mask_bytes in all).
 * Index arrays and the mask live in the memory of `device`; their contents are checked here for the CPU backend
 * only (the Java wrappers check them on the host before uploading). Rows that see no key get 0 and LSE -inf.
 */
typedef struct fi4j_prefill_args {
  int32_t dtype;
  int32_t batch_size;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  /* queries and outputs */
  const void* qo_indptr;
  int32_t nnz_qo;
  const void* q;
  int64_t q_stride_n;
  int64_t q_stride_h;
  void* o;
  int64_t o_stride_n;
  int64_t o_stride_h;
  void* lse;
  /* keys and values */
  int32_t kv_storage;
  const void* k;
  int64_t k_stride_n;
  int64_t k_stride_h;
  const void* v;
  int64_t v_stride_n;
  int64_t v_stride_h;
  const void* kv_indptr;
  int32_t nnz_kv;
  fi4j_paged_kv paged_kv;
  /* masking and variant */
  int32_t mask_mode;
  const void* custom_mask;
  const void* mask_indptr;
  int64_t custom_mask_bytes;
  fi4j_attention_options options;
  /* from the plan (all zero on the CPU backend) */
  int32_t num_work;
  int32_t cta_tile_q;
  void* workspace;
  int64_t workspace_bytes;
  int64_t kernel;  /* the plan's kernel handle (fi4j_prefill_plan.kernel.kernel); 0: route this call */
} fi4j_prefill_args;

/**
 * Checks a prefill configuration against what this build can run on a device, without launching; FI4J_OK or
 * FI4J_ERR_UNSUPPORTED with a message that names the unsupported part.
 */
FI4J_API int fi4j_prefill_supported(int device, int32_t dtype, int32_t head_dim, int32_t num_qo_heads,
                                    int32_t num_kv_heads);

/** Plans a batch prefill (see fi4j_prefill_plan); the workspace is memory of `device` (host for the CPU). */
FI4J_API int fi4j_batch_prefill_plan(int device, fi4j_prefill_plan* plan, void* workspace, int64_t workspace_bytes,
                                     void* stream);

FI4J_API int fi4j_batch_prefill(int device, const fi4j_prefill_args* args, void* stream);

/**
 * Packs n booleans (one byte each, non-zero = keep) into (n + 7) / 8 bytes, little-endian bit order: element o is
 * bit o % 8 of byte o / 8; unused high bits of the last byte are 0. Host memory.
 */
FI4J_API int fi4j_packbits(const uint8_t* mask, int64_t n, uint8_t* packed);

/**
 * Packs each segment mask[indptr[b] .. indptr[b+1]) on its own, padded to whole bytes: segment b starts at byte
 * packed_indptr[b] (packed_indptr[0] = 0, packed_indptr[batch_size] = the bytes written). packed holds
 * packed_capacity bytes (sum over b of ceil(len_b / 8) are needed). Host memory.
 */
FI4J_API int fi4j_segment_packbits(const uint8_t* mask, const int32_t* indptr, int32_t batch_size, uint8_t* packed,
                                   int64_t packed_capacity, int32_t* packed_indptr);

/* ---- timing and CUDA graphs ---- */

/** A CUDA event for timing (cudaEventDefault); device -1 gives NULL and host timing is the caller's. */
FI4J_API int fi4j_event_create(int device, void** out);
FI4J_API int fi4j_event_destroy(int device, void* event);
FI4J_API int fi4j_event_record(int device, void* event, void* stream);
/** Milliseconds between two recorded events, after waiting for the second. */
FI4J_API int fi4j_event_elapsed_ms(int device, void* start, void* end, float* ms);

/** Starts capturing the work queued on stream (not the default stream) into a graph (thread-local mode). */
FI4J_API int fi4j_graph_capture_begin(int device, void* stream);
/** *capturing = 1 when work queued on stream now would be captured into a graph (cudaStreamIsCapturing), else 0. */
FI4J_API int fi4j_stream_capturing(int device, void* stream, int* capturing);
/** Ends the capture and instantiates the graph; *out is the executable graph. */
FI4J_API int fi4j_graph_capture_end(int device, void* stream, void** out);
FI4J_API int fi4j_graph_launch(int device, void* graph_exec, void* stream);
FI4J_API int fi4j_graph_destroy(int device, void* graph_exec);

/** Fills n elements (F16, BF16 or F32) with pseudo-random values uniform in [-scale, scale] from seed. */
FI4J_API int fi4j_fill_random(int device, void* ptr, int32_t dtype, int64_t n, uint64_t seed, float scale,
                              void* stream);

/* ---- run-time compilation (JIT) cache ---- */

/**
 * *available = 1 when NVRTC (libnvrtc.so.13 or .12, found at run time) can compile kernels on this machine, else 0
 * and fi4j_jit_unavailable_reason() says what to install. The ahead-of-time kernels work either way.
 */
FI4J_API int fi4j_jit_available(int* available);
/** Why run-time compilation is unavailable ("" when it is available). */
FI4J_API const char* fi4j_jit_unavailable_reason(void);
/**
 * Names the NVRTC library file to use (NULL or "": none; then $FLASHINFER4J_NVRTC, else the default search) for this
 * process's one NVRTC lookup, e.g. a libnvrtc that a Maven-packaged CUDA redistributable extracted. An explicit
 * library is the only candidate. FI4J_ERR_INVALID_ARGUMENT once the lookup has run with another setting.
 */
FI4J_API int fi4j_jit_set_nvrtc_path(const char* path);
/**
 * Sets the directory of the compiled-kernel cache for this process; NULL or "" returns to the default:
 * $FLASHINFER4J_CACHE_DIR, else $XDG_CACHE_HOME/flashinfer4j, else ~/.cache/flashinfer4j. Created when first
 * written (mode 0755).
 */
FI4J_API int fi4j_jit_set_cache_dir(const char* dir);
/** The cache directory now in force (valid on this thread until its next fi4j_jit_cache_dir call); NULL on error. */
FI4J_API const char* fi4j_jit_cache_dir(void);
/** Number and total bytes of the cached kernel files (*.cubin) in the cache directory; 0 when it does not exist. */
FI4J_API int fi4j_jit_cache_stats(int64_t* files, int64_t* bytes);
/** Removes the cached kernel files (*.cubin) of the cache directory, and no other file. */
FI4J_API int fi4j_jit_cache_clear(void);
/**
 * The cache key (and file name, less its extension) of kernel `op` for config, a "k=v;k=v" string in any order
 * that must name the architecture as arch=sm_XX (e.g. "arch=sm_90;dtype=bf16;head_dim=96"). Written with its
 * terminating NUL into out (out_len bytes; 160 are always enough).
 */
FI4J_API int fi4j_jit_cache_key(const char* op, const char* config, char* out, int32_t out_len);

/* ---- kernel configurations: support, routing and warm-up ---- */

/** The kernel a configuration needs. Decode: dtype F16/BF16, any head dim (the CUDA backend runs 64, 128, 256
 * ahead of time and the other multiples of 16 from 16 to 256 compiled at run time, CUDA-core path only).
 * Prefill (single, ragged and paged): the same dtypes and head dims, every mask mode and window (run-time
 * arguments of one kernel); path is ignored. */
typedef struct fi4j_kernel_config {
  int32_t op;            /* fi4j_kernel_op */
  int32_t dtype;         /* fi4j_dtype of q, k, v, o */
  int32_t head_dim;
  int32_t soft_cap;      /* 1: logits soft cap on (any cap > 0), 0: off */
  int32_t pos_encoding;  /* fi4j_pos_encoding */
  int32_t path;          /* decode: fi4j_decode_path (AUTO, CUDA_CORES or TENSOR_CORES); prefill: ignored */
} fi4j_kernel_config;


/**
 * FI4J_OK with *route set when the device runs config; FI4J_ERR_UNSUPPORTED (message: the head dim or dtype,
 * and what to install when run-time compilation is needed but NVRTC is missing) when it does not;
 * FI4J_ERR_INVALID_ARGUMENT for a malformed config. Compiles nothing.
 */
FI4J_API int fi4j_kernel_supported(int device, const fi4j_kernel_config* config, int32_t* route);
/**
 * Makes config ready to run on the device: for a run-time compiled kernel, takes the cubin from this process's
 * memory, the disk cache or NVRTC (compiling once per process and storing it in the cache), and loads it into the
 * device. Nothing to do for the CPU and ahead-of-time kernels. info may be NULL.
 */
FI4J_API int fi4j_kernel_prepare(int device, const fi4j_kernel_config* config, fi4j_kernel_prepare_info* info);

/**
 * The head dims that have ahead-of-time attention kernels (decode and prefill), in increasing order: writes up to
 * capacity of them to out and returns how many there are (call with capacity 0 to size out).
 */
FI4J_API int32_t fi4j_attention_aot_head_dims(int32_t* out, int32_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* FLASHINFER4J_H_ */
