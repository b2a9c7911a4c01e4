// Host tests of the kernel registry (no GPU needed): the registry itself (compiled in: its internals are hidden in
// the library) and, through the C API on the CPU backend, the handles that plans return and runs pass back.
// Exit code = number of failed checks.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "check.h"
#include "core/kernel_registry.h"
#include "core/status.h"
#include "flashinfer4j/flashinfer4j.h"

static bool contains(const char* s, const char* part) { return std::strstr(s, part) != nullptr; }

static fi4j::KernelKey key(int head_dim, int path = 0) {
  fi4j::KernelKey k;
  k.op = FI4J_OP_DECODE;
  k.dtype = FI4J_BF16;
  k.head_dim = head_dim;
  k.path = path;
  k.device = 0;
  return k;
}

static void test_registry() {
  using namespace fi4j;
  KernelRegistry r;
  int made = 0;
  auto make = [&](const KernelKey&) {
    ++made;
    Kernel e;
    e.route = Route::Aot;
    return e;
  };
  const Kernel& a = r.resolve(key(128), make);
  const Kernel& b = r.resolve(key(128), make);
  CHECK(&a == &b && made == 1);  // resolved once
  CHECK(a.handle != 0 && a.key == key(128) && a.route == Route::Aot);
  const Kernel& c = r.resolve(key(128, 1), make);
  CHECK(&c != &a && c.handle != a.handle && made == 2);
  CHECK(&r.find(a.handle, "kernel") == &a && &r.find(c.handle, "kernel") == &c);
  CHECK(r.size() == 2);
  // anything but a handle from resolve is refused, naming the argument
  for (int64_t bad : {int64_t{0}, int64_t{1}, int64_t{-1}, a.handle + 5, a.handle ^ (int64_t{1} << 50)}) {
    bool threw = false;
    try {
      r.find(bad, "args.kernel");
    } catch (const Error& e) {
      threw = e.status == FI4J_ERR_INVALID_ARGUMENT && contains(e.what(), "args.kernel");
    }
    CHECK(threw);
  }
  // an unsupported configuration throws from make and leaves nothing behind
  bool threw = false;
  try {
    r.resolve(key(72), [](const KernelKey&) -> Kernel { throw Error(FI4J_ERR_UNSUPPORTED, "head_dim 72"); });
  } catch (const Error& e) {
    threw = e.status == FI4J_ERR_UNSUPPORTED;
  }
  CHECK(threw && r.size() == 2);
  // many threads resolving the same keys get the same entries; handles stay valid while others insert
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const Kernel& k = r.resolve(key(16 * (1 + (i + t) % 16)), [](const KernelKey&) { return Kernel{}; });
        if (&r.find(k.handle, "kernel") != &k || !(k.key == key(16 * (1 + (i + t) % 16)))) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
  std::set<int64_t> handles;
  for (int d = 16; d <= 256; d += 16) handles.insert(r.resolve(key(d), make).handle);
  CHECK(handles.size() == 16);
}

static void test_c_api() {
  int32_t dims[8] = {};
  CHECK(fi4j_attention_aot_head_dims(nullptr, 0) == 3);
  CHECK(fi4j_attention_aot_head_dims(dims, 8) == 3 && dims[0] == 64 && dims[1] == 128 && dims[2] == 256);

  // warm-up and plans resolve through one table: the same configuration gives the same handle
  fi4j_kernel_config c{};
  c.op = FI4J_OP_DECODE;
  c.dtype = FI4J_F16;
  c.head_dim = 2;
  c.path = FI4J_PATH_AUTO;
  fi4j_kernel_prepare_info i1{}, i2{}, ip{};
  CHECK(fi4j_kernel_prepare(FI4J_DEVICE_CPU, &c, &i1) == FI4J_OK && i1.route == FI4J_ROUTE_CPU && i1.kernel != 0);
  CHECK(fi4j_kernel_prepare(FI4J_DEVICE_CPU, &c, &i2) == FI4J_OK && i2.kernel == i1.kernel);
  c.op = FI4J_OP_PREFILL;
  CHECK(fi4j_kernel_prepare(FI4J_DEVICE_CPU, &c, &ip) == FI4J_OK && ip.kernel != i1.kernel);

  int32_t indptr[] = {0, 1}, last[] = {1};
  fi4j_decode_plan plan{};
  plan.batch_size = 1;
  plan.num_qo_heads = 2;
  plan.num_kv_heads = 1;
  plan.head_dim = 2;
  plan.page_size = 1;
  plan.window_left = -1;
  plan.kv_indptr_host = indptr;
  plan.kv_last_page_len_host = last;
  plan.path = FI4J_PATH_AUTO;
  plan.dtype = FI4J_F16;
  CHECK(fi4j_batch_decode_plan(FI4J_DEVICE_CPU, &plan, nullptr, 0, nullptr) == FI4J_OK);
  CHECK(plan.kernel.kernel == i1.kernel && plan.kernel.route == FI4J_ROUTE_CPU);
  plan.dtype = FI4J_F32;  // the route is decided at plan time: unsupported before any planning
  CHECK(fi4j_batch_decode_plan(FI4J_DEVICE_CPU, &plan, nullptr, 0, nullptr) == FI4J_ERR_UNSUPPORTED);
  CHECK(contains(fi4j_last_error(), "F32"));

  // a run with another configuration's handle, or with no handle at all from this process, is refused
  uint16_t q[4] = {}, k[2] = {}, v[2] = {}, o[4] = {};
  int32_t indices[] = {0};
  fi4j_decode_args a{};
  a.num_qo_heads = 2;
  a.dtype = FI4J_F16;
  a.q = q;
  a.q_stride_n = 4;
  a.q_stride_h = 2;
  a.o = o;
  a.o_stride_n = 4;
  a.o_stride_h = 2;
  a.kv.dtype = FI4J_F16;
  a.kv.k = k;
  a.kv.v = v;
  a.kv.page_stride = 2;
  a.kv.token_stride = 2;
  a.kv.head_stride = 2;
  a.kv.num_pages = 1;
  a.kv.page_size = 1;
  a.kv.num_kv_heads = 1;
  a.kv.head_dim = 2;
  a.kv.kv_indptr = indptr;
  a.kv.kv_indices = indices;
  a.kv.kv_last_page_len = last;
  a.kv.batch_size = 1;
  a.kv.num_indices = 1;
  a.path = FI4J_PATH_CUDA_CORES;
  a.kernel = plan.kernel.kernel;
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_OK);
  a.kernel = ip.kernel;  // a prefill kernel
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "kernel") && contains(fi4j_last_error(), "prefill"));
  a.kernel = 12345;
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "kernel") && contains(fi4j_last_error(), "12345"));
  a.kernel = 0;  // no plan: routed in this call
  CHECK(fi4j_batch_decode(FI4J_DEVICE_CPU, &a, nullptr) == FI4J_OK);
}

int main() {
  test_registry();
  test_c_api();
  std::printf("registry tests: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed;
}
