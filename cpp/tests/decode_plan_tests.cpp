// Host tests of the decode planner (attention/decode_plan: plan_decode, decode_workspace_layout), no GPU needed.
// Each successful plan is checked against an independent reading of its contract: the work list covers every
// token of each request's range (after the sliding window) exactly once, in order, in chunks of chunk_size (the last
// one shorter), merge_indptr delimits each request's items, idle graph slots are marked, and the workspace size is
// recomputed here from the layout the header documents (request | kv_start | kv_end | merge_indptr as int32, then
// partial O and LSE as float32, each piece 256-byte aligned). Expected chunk sizes are worked out by hand from the
// documented rules (target blocks per SM, 256-token minimum chunk, 64-token granule). Exit code = failed checks.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "attention/decode_plan.h"
#include "attention/kernel_table.h"
#include "check.h"
#include "core/status.h"
#include "flashinfer4j/flashinfer4j.h"

using fi4j::DecodePlanInput;
using fi4j::DecodePlanResult;

namespace {

/// A batch of KV lengths laid out in pages (or given page counts and last-page lengths directly).
struct Batch {
  int page_size = 16;
  std::vector<int32_t> indptr{0};
  std::vector<int32_t> last;

  static Batch of_lens(const std::vector<int64_t>& lens, int page_size) {
    Batch b;
    b.page_size = page_size;
    for (int64_t len : lens) {
      const int64_t pages = (len + page_size - 1) / page_size;
      b.indptr.push_back(static_cast<int32_t>(b.indptr.back() + pages));
      b.last.push_back(static_cast<int32_t>(pages == 0 ? 0 : len - (pages - 1) * page_size));
    }
    return b;
  }
  int size() const { return static_cast<int>(last.size()); }
};

struct Case {
  Batch batch;
  int num_qo_heads = 32;
  int num_kv_heads = 8;
  int head_dim = 128;
  int window_left = -1;
  int split_mode = FI4J_SPLIT_AUTO;
  int fixed_chunk = 0;
  int path = FI4J_PATH_AUTO;
  int graph_slots = 0;
  int num_sms = 132;
  int cc = 90;
  int64_t workspace_bytes = int64_t{256} << 20;

  DecodePlanInput input() const {
    DecodePlanInput in;
    in.batch_size = batch.size();
    in.num_qo_heads = num_qo_heads;
    in.num_kv_heads = num_kv_heads;
    in.head_dim = head_dim;
    in.page_size = batch.page_size;
    in.window_left = window_left;
    in.kv_indptr = batch.indptr.data();
    in.kv_last_page_len = batch.last.data();
    in.split_mode = split_mode;
    in.fixed_chunk = fixed_chunk;
    in.path = path;
    in.graph_slots = graph_slots;
    in.num_sms = num_sms;
    in.compute_capability = cc;
    in.workspace_bytes = workspace_bytes;
    return in;
  }
};

struct Outcome {
  bool ok = false;
  int status = FI4J_OK;
  std::string message;
  DecodePlanResult plan;
};

Outcome plan(const Case& c) {
  Outcome o;
  try {
    o.plan = fi4j::plan_decode(c.input());
    o.ok = true;
  } catch (const fi4j::Error& e) {
    o.status = e.status;
    o.message = e.what();
  }
  return o;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

int64_t align256(int64_t v) { return (v + 255) / 256 * 256; }

/// The workspace bytes of n work items, recomputed from the documented layout.
int64_t expected_workspace(int64_t n, int64_t batch, int64_t hqo, int64_t dim) {
  const int64_t ints = 4 * (3 * n + batch + 1);
  const int64_t o = align256(ints) + 4 * n * hqo * dim;
  const int64_t lse = align256(o) + 4 * n * hqo;
  return align256(lse);
}

/// KV length of request b as the page table describes it.
int64_t kv_len(const Batch& b, int r) {
  const int64_t pages = b.indptr[r + 1] - b.indptr[r];
  return pages == 0 ? 0 : (pages - 1) * b.page_size + b.last[r];
}

/// Checks a successful plan against the contract; returns the number of real (non-idle) work items.
int check_work_list(const Case& c, const DecodePlanResult& r, const char* what) {
  const int batch = c.batch.size();
  const int n = r.num_work;
  if (n == 0) {
    CHECK(r.int_section.empty());
    CHECK(r.chunk_size == 0 || c.split_mode == FI4J_SPLIT_FIXED);
    CHECK(r.workspace_bytes == 0);
    return 0;
  }
  CHECK(r.chunk_size >= 1);
  // chunks the planner chooses itself are whole 64-token tiles of at least 256 tokens
  if (c.split_mode != FI4J_SPLIT_FIXED) CHECK(r.chunk_size % 64 == 0 && r.chunk_size >= 256);
  CHECK(static_cast<int64_t>(r.int_section.size()) == 3 * int64_t{n} + batch + 1);
  CHECK(r.workspace_bytes == expected_workspace(n, batch, c.num_qo_heads, c.head_dim));
  CHECK(r.workspace_bytes <= c.workspace_bytes);
  if (static_cast<int64_t>(r.int_section.size()) != 3 * int64_t{n} + batch + 1) {
    std::printf("  (%s: int section of %zu ints for %d items)\n", what, r.int_section.size(), n);
    return 0;
  }
  const int32_t* request = r.int_section.data();
  const int32_t* kv_start = request + n;
  const int32_t* kv_end = kv_start + n;
  const int32_t* merge = kv_end + n;
  CHECK(merge[0] == 0);
  int failures_before = g_failed;
  for (int b = 0; b < batch; ++b) {
    const int64_t len = kv_len(c.batch, b);
    const int64_t first = c.window_left >= 0 ? std::max<int64_t>(0, len - 1 - c.window_left) : 0;
    CHECK(merge[b + 1] >= merge[b]);
    // every token of [first, len) exactly once, in order, chunk_size at a time
    int64_t next = first;
    for (int w = merge[b]; w < merge[b + 1] && w < n; ++w) {
      CHECK(request[w] == b);
      CHECK(kv_start[w] == next);
      CHECK(kv_end[w] > kv_start[w]);
      CHECK(kv_end[w] - kv_start[w] <= r.chunk_size);
      if (w + 1 < merge[b + 1]) CHECK(kv_end[w] - kv_start[w] == r.chunk_size);
      next = kv_end[w];
    }
    CHECK(next == len);
    const int64_t range = len - first;
    CHECK(merge[b + 1] - merge[b] == (range + r.chunk_size - 1) / r.chunk_size);
  }
  const int real = merge[batch];
  CHECK(real <= n);
  for (int w = real; w < n; ++w) {  // idle graph slots
    CHECK(request[w] == -1 && kv_start[w] == 0 && kv_end[w] == 0);
  }
  if (g_failed != failures_before) std::printf("  (in %s)\n", what);
  return real;
}

Outcome expect_ok(const Case& c, const char* what) {
  Outcome o = plan(c);
  CHECK(o.ok);
  if (!o.ok) {
    std::printf("  (%s failed: %s)\n", what, o.message.c_str());
    return o;
  }
  check_work_list(c, o.plan, what);
  return o;
}

void expect_error(const Case& c, int status, const char* fragment, const char* what) {
  Outcome o = plan(c);
  CHECK(!o.ok);
  CHECK(o.status == status);
  CHECK(has(o.message, fragment));
  if (o.ok || o.status != status || !has(o.message, fragment)) {
    std::printf("  (%s: ok=%d status=%d message '%s', wanted '%s')\n", what, o.ok, o.status, o.message.c_str(),
                fragment);
  }
  if (status == FI4J_ERR_INVALID_ARGUMENT && !o.ok) CHECK(has(o.message, " must be ") && has(o.message, ", got "));
}

// ---- the cases ----

void test_cpu_never_splits() {
  Case c;
  c.batch = Batch::of_lens({32768}, 16);
  c.num_sms = 0;
  c.cc = 0;
  Outcome o = expect_ok(c, "CPU");
  CHECK(o.plan.num_work == 0 && o.plan.chunk_size == 0 && o.plan.path == FI4J_PATH_CUDA_CORES);
  c.split_mode = FI4J_SPLIT_FIXED;  // the reference has one path and never splits, even when asked to
  c.fixed_chunk = 64;
  c.path = FI4J_PATH_TENSOR_CORES;
  o = expect_ok(c, "CPU fixed chunk, tensor cores asked");
  CHECK(o.plan.num_work == 0 && o.plan.path == FI4J_PATH_CUDA_CORES);
  c.head_dim = 96;  // a run-time compiled head dim: no tensor-core kernel, but the CPU does not care
  o = expect_ok(c, "CPU head dim 96, tensor cores asked");
  CHECK(o.plan.path == FI4J_PATH_CUDA_CORES);
  c.graph_slots = 4;
  expect_error(c, FI4J_ERR_UNSUPPORTED, "CUDA-graph", "CPU graph mode");
}

void test_no_split_when_requests_fill_the_gpu() {
  // CUDA cores (group 2, sm_80): 4 blocks per SM; 132 SMs x 4 = 528 (request, KV head) blocks fill the GPU.
  Case c;
  c.num_qo_heads = 16;
  c.num_kv_heads = 8;
  c.cc = 80;
  c.batch = Batch::of_lens(std::vector<int64_t>(66, 8192), 16);  // 66 x 8 = 528
  Outcome o = expect_ok(c, "fills, CUDA cores");
  CHECK(o.plan.path == FI4J_PATH_CUDA_CORES);
  CHECK(o.plan.num_work == 0 && o.plan.chunk_size == 0);
  c.batch = Batch::of_lens(std::vector<int64_t>(65, 8192), 16);  // 520 < 528: split
  o = expect_ok(c, "one request short of filling, CUDA cores");
  CHECK(o.plan.num_work > 65);
  // Tensor cores (group 4): 2 blocks per SM fill; at head dim 64 the kernel is built for 4 but a batch filling 2
  // per SM is not split further.
  c.num_qo_heads = 32;
  c.head_dim = 64;
  c.batch = Batch::of_lens(std::vector<int64_t>(33, 8192), 16);  // 33 x 8 = 264 = 132 x 2
  o = expect_ok(c, "fills, tensor cores D64");
  CHECK(o.plan.path == FI4J_PATH_TENSOR_CORES);
  CHECK(o.plan.num_work == 0);
  c.batch = Batch::of_lens(std::vector<int64_t>(32, 8192), 16);
  o = expect_ok(c, "one request short of filling, tensor cores D64");
  // 4 blocks per SM at D64 -> 528 / 8 = 66 items -> ceil(32 x 8192 / 66) = 3972 -> 4032 -> 3 chunks a request
  CHECK(o.plan.chunk_size == 4032);
  CHECK(o.plan.num_work == 96);
  // SPLIT_NEVER: one block per (request, KV head) however long the request
  c.split_mode = FI4J_SPLIT_NEVER;
  c.batch = Batch::of_lens({1 << 20}, 16);
  o = expect_ok(c, "split never");
  CHECK(o.plan.num_work == 0 && o.plan.chunk_size == 0);
}

void test_one_long_request() {
  // 1 x 32768 tokens, 32/8 heads, D 128, 132 SMs, sm_90: tensor cores, 2 blocks per SM -> 264 target blocks ->
  // 33 items wanted over 8 KV heads -> ceil(32768 / 33) = 993 -> rounded up to the 64-token granule: 1024 -> 32
  // chunks.
  Case c;
  c.batch = Batch::of_lens({32768}, 16);
  Outcome o = expect_ok(c, "one long request");
  CHECK(o.plan.path == FI4J_PATH_TENSOR_CORES);
  CHECK(o.plan.chunk_size == 1024);
  CHECK(o.plan.num_work == 32);
  // The same on CUDA cores (group 1, sm_80): 4 blocks per SM -> 528 / 8 = 66 items -> ceil(32768 / 66) = 497 -> 512
  // -> 64 chunks.
  c.num_qo_heads = 8;
  c.cc = 80;
  o = expect_ok(c, "one long request, CUDA cores");
  CHECK(o.plan.path == FI4J_PATH_CUDA_CORES);
  CHECK(o.plan.chunk_size == 512);
  CHECK(o.plan.num_work == 64);
  // An odd length, pages of 1: the last chunk is the remainder.
  c.batch = Batch::of_lens({33001}, 1);
  o = expect_ok(c, "odd length, page size 1");
  CHECK(o.plan.chunk_size % 64 == 0 && o.plan.chunk_size >= 256);
  CHECK(o.plan.num_work == (33001 + o.plan.chunk_size - 1) / o.plan.chunk_size);
  // A short request is not worth splitting: the minimum chunk (256) holds it whole, and one chunk per request is
  // no split at all.
  c.batch = Batch::of_lens({100}, 16);
  o = expect_ok(c, "short request");
  CHECK(o.plan.num_work == 0 && o.plan.chunk_size == 0);
  c.batch = Batch::of_lens({257}, 16);  // just over the minimum chunk: two chunks of 256 and 1
  o = expect_ok(c, "257 tokens");
  CHECK(o.plan.num_work == 2 && o.plan.chunk_size == 256);
}

void test_mixed_and_empty_requests() {
  Case c;
  c.batch = Batch::of_lens({0, 5000, 0, 3, 0}, 16);
  Outcome o = expect_ok(c, "empty requests around a long one");
  CHECK(o.plan.num_work > 0);
  if (o.plan.num_work > 0) {
    const int32_t* merge = o.plan.int_section.data() + 3 * o.plan.num_work;
    CHECK(merge[0] == 0 && merge[1] == 0);                   // request 0: nothing
    CHECK(merge[3] == merge[2]);                             // request 2: nothing
    CHECK(merge[4] - merge[3] == 1);                         // request 3: one short chunk
    CHECK(merge[5] == merge[4] && merge[5] == o.plan.num_work);
  }
  c.batch = Batch::of_lens({0, 0, 0}, 16);
  o = expect_ok(c, "all requests empty");
  CHECK(o.plan.num_work == 0);
  c.batch = Batch::of_lens({}, 16);
  o = expect_ok(c, "no requests");
  CHECK(o.plan.num_work == 0);
  Case n = c;  // batch 0 needs no page-table arrays at all
  DecodePlanInput in = n.input();
  in.kv_indptr = nullptr;
  in.kv_last_page_len = nullptr;
  bool ok = true;
  try {
    CHECK(fi4j::plan_decode(in).num_work == 0);
  } catch (const fi4j::Error&) {
    ok = false;
  }
  CHECK(ok);
  in.batch_size = 1;  // but a batch does
  ok = false;
  try {
    fi4j::plan_decode(in);
  } catch (const fi4j::Error& e) {
    ok = e.status == FI4J_ERR_INVALID_ARGUMENT && has(e.what(), "kv_indptr");
  }
  CHECK(ok);
  // empty requests in fixed-chunk mode get no items either
  c.batch = Batch::of_lens({0, 10, 0, 25}, 4);
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 8;
  o = expect_ok(c, "fixed chunk with empty requests");
  CHECK(o.plan.num_work == 2 + 4);
}

void test_page_size_edges() {
  Case c;
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 7;
  // a full last page, a last page of one token, a last page of zero tokens (the previous page ends the request)
  c.batch.page_size = 16;
  c.batch.indptr = {0, 3, 6, 8};
  c.batch.last = {16, 1, 0};
  Outcome o = expect_ok(c, "last page full / one / zero");
  CHECK(o.plan.num_work == (48 + 6) / 7 + (33 + 6) / 7 + (16 + 6) / 7);
  // page size 1: every page holds one token
  c.batch = Batch::of_lens({1, 2, 15}, 1);
  o = expect_ok(c, "page size 1");
  CHECK(o.plan.num_work == 1 + 1 + 3);
  // a page larger than the whole request
  c.batch = Batch::of_lens({5}, 4096);
  o = expect_ok(c, "page size 4096");
  CHECK(o.plan.num_work == 1);
  // the bounds of the last page length
  c.batch.page_size = 16;
  c.batch.indptr = {0, 2};
  c.batch.last = {17};
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "kv_last_page_len[0]", "last page longer than a page");
  c.batch.last = {-1};
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "kv_last_page_len[0]", "negative last page");
  c.batch.indptr = {0, 2, 2};
  c.batch.last = {3, 1};
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "kv_last_page_len[1]", "last page of a request with no pages");
  c.batch.indptr = {1, 2};
  c.batch.last = {3};
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "kv_indptr[0]", "indptr not starting at 0");
  c.batch.indptr = {0, 3, 2};
  c.batch.last = {3, 3};
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "kv_indptr[2]", "decreasing indptr");
  c.batch = Batch::of_lens({5}, 16);
  c.batch.page_size = 0;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "page_size", "page size 0");
}

void test_sliding_window() {
  Case c;
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 10;
  c.window_left = 24;  // each request attends to its last 25 tokens
  c.batch = Batch::of_lens({100, 25, 3, 0}, 16);
  Outcome o = expect_ok(c, "window, fixed chunk");  // ranges [75, 100), [0, 25), [0, 3), empty
  CHECK(o.plan.num_work == 3 + 3 + 1);
  if (o.plan.num_work == 7) CHECK(o.plan.int_section[7] == 75);  // kv_start of the first item
  c.window_left = 0;  // the last token alone
  o = expect_ok(c, "window 0");
  CHECK(o.plan.num_work == 3);
  // In AUTO mode a window makes a long request short: nothing left worth splitting.
  c.split_mode = FI4J_SPLIT_AUTO;
  c.window_left = 100;
  c.batch = Batch::of_lens({32768}, 16);
  o = expect_ok(c, "window shortens a long request");
  CHECK(o.plan.num_work == 0);
  // A window wider than the request changes nothing.
  c.window_left = 1 << 30;
  Outcome wide = expect_ok(c, "window wider than the request");
  c.window_left = -1;
  Outcome none = expect_ok(c, "no window");
  CHECK(wide.ok && none.ok && wide.plan.int_section == none.plan.int_section &&
        wide.plan.chunk_size == none.plan.chunk_size);
}

void test_fixed_chunk() {
  Case c;
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 128;
  // fixed chunks split even a batch that fills the GPU, and keep one chunk per request (no AUTO shortcut)
  c.batch = Batch::of_lens(std::vector<int64_t>(200, 300), 16);
  Outcome o = expect_ok(c, "fixed chunk, full GPU");
  CHECK(o.plan.num_work == 200 * 3 && o.plan.chunk_size == 128);
  c.fixed_chunk = 1 << 20;
  c.batch = Batch::of_lens({10, 20}, 16);
  o = expect_ok(c, "fixed chunk longer than every request");
  CHECK(o.plan.num_work == 2 && o.plan.chunk_size == 1 << 20);
  // bit-identical across batch compositions: a request gets the same chunks whatever else is in the batch
  c.fixed_chunk = 100;
  c.batch = Batch::of_lens({1234}, 16);
  Outcome alone = expect_ok(c, "fixed chunk, alone");
  c.batch = Batch::of_lens({77, 1234, 5000}, 16);
  Outcome among = expect_ok(c, "fixed chunk, among others");
  if (alone.ok && among.ok && alone.plan.num_work > 0 && among.plan.num_work > 0) {
    const int na = alone.plan.num_work, nb = among.plan.num_work;
    const int32_t* mb = among.plan.int_section.data() + 3 * nb;
    CHECK(mb[2] - mb[1] == na);
    for (int i = 0; i < na && mb[1] + i < nb; ++i) {
      CHECK(alone.plan.int_section[na + i] == among.plan.int_section[nb + mb[1] + i]);          // kv_start
      CHECK(alone.plan.int_section[2 * na + i] == among.plan.int_section[2 * nb + mb[1] + i]);  // kv_end
    }
  }
  c.fixed_chunk = 0;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "fixed_chunk", "fixed chunk 0");
  c.fixed_chunk = 0;
  c.split_mode = FI4J_SPLIT_AUTO;  // ignored outside FIXED
  expect_ok(c, "fixed chunk 0 outside FIXED");
  c.split_mode = 3;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "split_mode", "split mode 3");
}

void test_workspace_refusal() {
  Case c;
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 10;
  c.batch = Batch::of_lens({95, 40}, 16);  // 10 + 4 items
  const int64_t need = expected_workspace(14, 2, c.num_qo_heads, c.head_dim);
  c.workspace_bytes = need;
  Outcome o = expect_ok(c, "workspace exactly large enough");
  CHECK(o.plan.num_work == 14 && o.plan.workspace_bytes == need);
  c.workspace_bytes = need - 1;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "workspace_bytes", "workspace one byte short");
  c.workspace_bytes = 0;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "workspace_bytes", "no workspace");
  // AUTO fits its chunks to the workspace: longer chunks, fewer items, never more than it holds
  c.split_mode = FI4J_SPLIT_AUTO;
  c.batch = Batch::of_lens({32768}, 16);
  c.workspace_bytes = int64_t{256} << 20;
  Outcome roomy = expect_ok(c, "AUTO, roomy workspace");
  c.workspace_bytes = expected_workspace(5, 1, c.num_qo_heads, c.head_dim);
  Outcome tight = expect_ok(c, "AUTO, workspace of 5 items");
  CHECK(tight.plan.num_work >= 2 && tight.plan.num_work <= 5);
  CHECK(tight.plan.chunk_size > roomy.plan.chunk_size);
  // ... and a workspace too small for even two items leaves nothing worth splitting
  c.workspace_bytes = expected_workspace(1, 1, c.num_qo_heads, c.head_dim);
  o = expect_ok(c, "AUTO, workspace of one item");
  CHECK(o.plan.num_work == 0);
  // layout helper: the pieces in order, aligned
  const fi4j::DecodeWorkspaceLayout l = fi4j::decode_workspace_layout(7, 3, 32, 128);
  CHECK(l.request == 0 && l.kv_start == 28 && l.kv_end == 56 && l.merge_indptr == 84 && l.int_bytes == 100);
  CHECK(l.partial_o == 256 && l.partial_lse == align256(256 + 4 * 7 * 32 * 128));
  CHECK(l.total == expected_workspace(7, 3, 32, 128));
}

void test_tensor_core_choice() {
  struct Row {
    int hqo, hkv, dim, cc, path, want;
  };
  const Row rows[] = {
      {8, 8, 128, 80, FI4J_PATH_AUTO, FI4J_PATH_CUDA_CORES},     // group 1, sm_80
      {24, 8, 128, 89, FI4J_PATH_AUTO, FI4J_PATH_CUDA_CORES},    // group 3, sm_89
      {32, 8, 128, 80, FI4J_PATH_AUTO, FI4J_PATH_TENSOR_CORES},  // group 4
      {64, 8, 64, 86, FI4J_PATH_AUTO, FI4J_PATH_TENSOR_CORES},   // group 8
      {8, 8, 128, 90, FI4J_PATH_AUTO, FI4J_PATH_TENSOR_CORES},   // sm_90: every group
      {16, 8, 256, 100, FI4J_PATH_AUTO, FI4J_PATH_TENSOR_CORES}, // sm_100
      {64, 8, 96, 90, FI4J_PATH_AUTO, FI4J_PATH_CUDA_CORES},     // run-time compiled head dim: CUDA cores
      {64, 8, 192, 80, FI4J_PATH_AUTO, FI4J_PATH_CUDA_CORES},
      {64, 8, 128, 90, FI4J_PATH_CUDA_CORES, FI4J_PATH_CUDA_CORES},      // asked for stays
      {8, 8, 64, 80, FI4J_PATH_TENSOR_CORES, FI4J_PATH_TENSOR_CORES},
  };
  for (const Row& row : rows) {
    Case c;
    c.batch = Batch::of_lens({100, 200}, 16);
    c.num_qo_heads = row.hqo;
    c.num_kv_heads = row.hkv;
    c.head_dim = row.dim;
    c.cc = row.cc;
    c.path = row.path;
    Outcome o = expect_ok(c, "path choice");
    CHECK(o.plan.path == row.want);
    if (o.plan.path != row.want)
      std::printf("  (path for %d/%d D%d cc %d asked %d: %d, wanted %d)\n", row.hqo, row.hkv, row.dim, row.cc,
                  row.path, o.plan.path, row.want);
  }
  Case c;
  c.batch = Batch::of_lens({100}, 16);
  c.head_dim = 96;
  c.path = FI4J_PATH_TENSOR_CORES;
  // The refusal is the route table's (the C API asks it before planning), not the planner's.
  bool refused = false;
  try {
    fi4j::require_decode_route(true, 96, FI4J_PATH_TENSOR_CORES);
  } catch (const fi4j::Error& e) {
    refused = e.status == FI4J_ERR_UNSUPPORTED && std::strstr(e.what(), "tensor-core") != nullptr;
  }
  CHECK(refused);
  c.path = 2;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "path", "path 2");
  c.path = FI4J_PATH_AUTO;
  c.num_qo_heads = 12;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "num_qo_heads", "12 qo heads over 8 KV heads");
  c.num_kv_heads = 0;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "num_kv_heads", "no KV heads");
}

void test_graph_slots() {
  Case c;
  c.batch = Batch::of_lens({3000, 0, 70}, 16);
  c.graph_slots = 64;
  Outcome o = expect_ok(c, "graph mode");
  CHECK(o.plan.num_work == 64);  // the fixed layout of the captured graph: every slot, idle ones marked
  CHECK(check_work_list(c, o.plan, "graph mode") <= 64);
  // a batch that fills the GPU still gets the graph layout
  c.batch = Batch::of_lens(std::vector<int64_t>(40, 500), 16);
  o = expect_ok(c, "graph mode, full GPU");
  CHECK(o.plan.num_work == 64);
  // slots == batch: one chunk per request at least fits
  c.graph_slots = 40;
  o = expect_ok(c, "graph slots == batch");
  CHECK(o.plan.num_work == 40);
  c.graph_slots = 39;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "graph_slots", "fewer slots than requests");
  c.graph_slots = -1;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "graph_slots", "negative slots");
  // fixed chunks that need more items than the graph has slots
  c.graph_slots = 50;
  c.split_mode = FI4J_SPLIT_FIXED;
  c.fixed_chunk = 100;  // 40 x 5 = 200 items
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "fixed_chunk", "fixed chunks beyond the graph slots");
  c.fixed_chunk = 500;  // 40 items in 50 slots
  o = expect_ok(c, "fixed chunks within the graph slots");
  CHECK(o.plan.num_work == 50);
  // graph mode with SPLIT_NEVER still lays out its slots
  c.split_mode = FI4J_SPLIT_NEVER;
  o = expect_ok(c, "graph mode, split never");
  CHECK(o.plan.num_work == 50);
  // the workspace must hold every slot
  c.split_mode = FI4J_SPLIT_AUTO;
  c.workspace_bytes = expected_workspace(50, 40, c.num_qo_heads, c.head_dim) - 1;
  expect_error(c, FI4J_ERR_INVALID_ARGUMENT, "workspace_bytes", "graph slots beyond the workspace");
}

void test_determinism() {
  Case c;
  c.batch = Batch::of_lens({4097, 0, 17, 9000, 1}, 8);
  c.window_left = 5000;
  const std::vector<int32_t> indptr = c.batch.indptr, last = c.batch.last;
  Outcome a = expect_ok(c, "determinism a");
  Outcome b = expect_ok(c, "determinism b");
  CHECK(a.plan.num_work == b.plan.num_work && a.plan.path == b.plan.path && a.plan.chunk_size == b.plan.chunk_size &&
        a.plan.workspace_bytes == b.plan.workspace_bytes && a.plan.int_section == b.plan.int_section);
  CHECK(c.batch.indptr == indptr && c.batch.last == last);  // the inputs are read, not written
  CHECK(a.plan.num_work > 0);
}

void test_basic_validation() {
  Case c;
  c.batch = Batch::of_lens({5}, 16);
  DecodePlanInput in = c.input();
  in.batch_size = -1;
  bool ok = false;
  try {
    fi4j::plan_decode(in);
  } catch (const fi4j::Error& e) {
    ok = e.status == FI4J_ERR_INVALID_ARGUMENT && has(e.what(), "batch_size must be >= 0, got -1");
  }
  CHECK(ok);
}

}  // namespace

int main() {
  test_cpu_never_splits();
  test_no_split_when_requests_fill_the_gpu();
  test_one_long_request();
  test_mixed_and_empty_requests();
  test_page_size_edges();
  test_sliding_window();
  test_fixed_chunk();
  test_workspace_refusal();
  test_tensor_core_choice();
  test_graph_slots();
  test_determinism();
  test_basic_validation();
  std::printf("decode_plan_tests: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed;
}
