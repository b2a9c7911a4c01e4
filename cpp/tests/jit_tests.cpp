// Host tests of the run-time compilation cache (no GPU, no NVRTC needed): keys, directory resolution, the disk
// cache, compile-once under concurrency, and the message when NVRTC is absent. jit_cache.cpp and nvrtc_loader.cpp
// are compiled into this executable (the library hides its C++ symbols); the C API calls go to the library, whose
// state is separate. Exit code = number of failed checks.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <set>
#include <sys/wait.h>

#include "check.h"
#include "attention/kernel_table.h"
#include "fi4j/attention/decode_geometry.h"
#include "flashinfer4j/flashinfer4j.h"
#include "jit/jit_cache.h"
#include "attention/decode_jit_source.h"
#include "fi4j/attention/prefill_geometry.h"
#include "jit/jit_headers.h"
#include "jit/module_source.h"
#include "attention/prefill_jit_source.h"
#include "jit/nvrtc_loader.h"
#include "core/status.h"

using namespace fi4j::jit;

static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <typename F>
static bool throws_invalid(F&& f) {
  try {
    f();
  } catch (const fi4j::Error& e) {
    return e.status == FI4J_ERR_INVALID_ARGUMENT;
  }
  return false;
}

static std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/fi4j-jit-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* dir = mkdtemp(buf.data());
  return dir != nullptr ? std::string(dir) : std::string();
}

static std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* ent = readdir(d)) {
      if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0) names.push_back(ent->d_name);
    }
    closedir(d);
  }
  return names;
}

static void remove_tree(const std::string& dir) {
  for (const auto& name : list_dir(dir)) {
    std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      remove_tree(path);
    } else {
      unlink(path.c_str());
    }
  }
  rmdir(dir.c_str());
}

static void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

static Config base_config() { return parse_config("dtype=bf16;head_dim=96;soft_cap=0;rope=1"); }

static void test_keys() {
  std::string key = make_key(100, "sm_90", "decode", base_config());
  std::printf("example key: %s\n", key.c_str());
  CHECK(key.rfind("decode-bf16-d96-rope1-cap0-sm_90-v100-", 0) == 0);
  CHECK(key.size() == std::string("decode-bf16-d96-rope1-cap0-sm_90-v100-").size() + 16);
  CHECK(is_safe_key(key));
  // Stable: same inputs, any order of the configuration text, same key; a fixed value guards the format.
  CHECK(key == make_key(100, "sm_90", "decode", parse_config("rope=1;soft_cap=0;head_dim=96;dtype=bf16;")));
  CHECK(canonical_config(base_config()) == "dtype=bf16;head_dim=96;rope=1;soft_cap=0");
  CHECK(hex16(fnv1a64("")) == "cbf29ce484222325");
  CHECK(hex16(fnv1a64("a")) == "af63dc4c8601ec8c");
  // Sensitive: every field changes the key, including its hash.
  auto hash_of = [](const std::string& k) { return k.substr(k.size() - 16); };
  std::vector<std::string> keys = {key,
                                   make_key(101, "sm_90", "decode", base_config()),
                                   make_key(100, "sm_90a", "decode", base_config()),
                                   make_key(100, "sm_80", "decode", base_config()),
                                   make_key(100, "sm_90", "prefill", base_config())};
  for (const char* change : {"dtype=f16", "head_dim=80", "soft_cap=30", "rope=0"}) {
    Config c = base_config();
    Config d = parse_config(change);
    c[d.begin()->first] = d.begin()->second;
    keys.push_back(make_key(100, "sm_90", "decode", c));
  }
  Config extra = base_config();
  extra["window"] = "128";
  keys.push_back(make_key(100, "sm_90", "decode", extra));
  Config fewer = base_config();
  fewer.erase("rope");
  keys.push_back(make_key(100, "sm_90", "decode", fewer));
  for (size_t i = 0; i < keys.size(); ++i) {
    CHECK(is_safe_key(keys[i]));
    for (size_t j = i + 1; j < keys.size(); ++j) {
      CHECK(keys[i] != keys[j]);
      CHECK(hash_of(keys[i]) != hash_of(keys[j]));
    }
  }
  // Values that are unsafe in file names are replaced in the readable part, not in the hash.
  std::string odd = make_key(100, "sm_90", "decode", parse_config("variant=a/b\\c:d* e"));
  CHECK(is_safe_key(odd));
  CHECK(contains(odd, "varianta_b_c_d__e"));
  CHECK(odd != make_key(100, "sm_90", "decode", parse_config("variant=a_b_c_d__e")));
  // Long configurations are cut to the maximum, the hash still at the end.
  Config big;
  for (int i = 0; i < 40; ++i) big["option_" + std::to_string(i)] = "value_" + std::to_string(i);
  std::string long_key = make_key(100, "sm_90", "decode", big);
  CHECK(long_key.size() <= kMaxKeyLength);
  CHECK(is_safe_key(long_key));
  big["option_39"] = "other";
  CHECK(make_key(100, "sm_90", "decode", big) != long_key);
  // Bad input.
  CHECK(throws_invalid([] { parse_config("dtype"); }));
  CHECK(throws_invalid([] { parse_config("dtype=bf16;dtype=f16"); }));
  CHECK(throws_invalid([] { parse_config("d type=bf16"); }));
  CHECK(throws_invalid([] { parse_config("dtype="); }));
  CHECK(throws_invalid([] { parse_config("dtype=a=b"); }));
  CHECK(throws_invalid([] { make_key(100, "sm_90", "../decode", Config()); }));
  CHECK(throws_invalid([] { make_key(100, "sm/90", "decode", Config()); }));
  CHECK(throws_invalid([] { make_key(100, "sm_90", "", Config()); }));
  CHECK(!is_safe_key("../x"));
  CHECK(!is_safe_key(".hidden"));
  CHECK(!is_safe_key(""));
  CHECK(!is_safe_key("a/b"));
}

static void test_c_api_key() {
  char out[200];
  CHECK(fi4j_jit_cache_key("decode", "arch=sm_90;dtype=bf16;head_dim=96;rope=1;soft_cap=0", out, sizeof out) ==
        FI4J_OK);
  std::string expected = make_key(fi4j_version(), "sm_90", "decode", base_config());
  CHECK(expected == out);
  CHECK(fi4j_jit_cache_key("decode", "dtype=bf16", out, sizeof out) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "arch=sm_XX"));
  CHECK(fi4j_jit_cache_key("decode", "arch=sm_90;dtype=bf16", out, 10) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "out_len must be >= "));
  CHECK(fi4j_jit_cache_key(nullptr, "arch=sm_90", out, sizeof out) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_jit_cache_key("decode", "arch=sm_90;head_dim", out, sizeof out) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "head_dim"));
}

static void set_or_unset(const char* name, const char* value) {
  if (value != nullptr) {
    setenv(name, value, 1);
  } else {
    unsetenv(name);
  }
}

static void test_dir_resolution() {
  std::string saved[3];
  bool had[3];
  const char* names[3] = {"FLASHINFER4J_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
  for (int i = 0; i < 3; ++i) {
    const char* v = std::getenv(names[i]);
    had[i] = v != nullptr;
    if (had[i]) saved[i] = v;
  }
  setenv("FLASHINFER4J_CACHE_DIR", "/tmp/fi4j-a", 1);
  setenv("XDG_CACHE_HOME", "/tmp/xdg-b", 1);
  setenv("HOME", "/tmp/home-c", 1);
  CHECK(resolve_cache_dir("/explicit") == "/explicit");
  CHECK(resolve_cache_dir("") == "/tmp/fi4j-a");
  setenv("FLASHINFER4J_CACHE_DIR", "", 1);
  CHECK(resolve_cache_dir("") == "/tmp/xdg-b/flashinfer4j");
  unsetenv("FLASHINFER4J_CACHE_DIR");
  CHECK(resolve_cache_dir("") == "/tmp/xdg-b/flashinfer4j");
  setenv("XDG_CACHE_HOME", "relative/path", 1);  // not absolute: ignored, as the XDG spec says
  CHECK(resolve_cache_dir("") == "/tmp/home-c/.cache/flashinfer4j");
  unsetenv("XDG_CACHE_HOME");
  CHECK(resolve_cache_dir("") == "/tmp/home-c/.cache/flashinfer4j");
  unsetenv("HOME");
  CHECK(contains(resolve_cache_dir(""), "/.cache/flashinfer4j"));  // the passwd home

  // The process-wide setting, and the same through the library's C API.
  setenv("FLASHINFER4J_CACHE_DIR", "/tmp/fi4j-a", 1);
  set_cache_dir("/tmp/explicit-x");
  CHECK(cache_dir() == "/tmp/explicit-x");
  set_cache_dir("");
  CHECK(cache_dir() == "/tmp/fi4j-a");
  CHECK(fi4j_jit_set_cache_dir("/tmp/explicit-y") == FI4J_OK);
  CHECK(std::string(fi4j_jit_cache_dir()) == "/tmp/explicit-y");
  CHECK(fi4j_jit_set_cache_dir(nullptr) == FI4J_OK);
  CHECK(std::string(fi4j_jit_cache_dir()) == "/tmp/fi4j-a");
  for (int i = 0; i < 3; ++i) set_or_unset(names[i], had[i] ? saved[i].c_str() : nullptr);
}

static void test_disk_cache(const std::string& root) {
  std::string dir = root + "/nested/a/b";  // created on demand
  DiskCache cache(dir);
  Bytes out;
  CHECK(!cache.load("k1", &out));
  CHECK(cache.stats().files == 0);
  CHECK(cache.clear() == 0);
  Bytes data = {'\x7f', 'E', 'L', 'F', '\0', '\1', '\2'};
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31));
  cache.store("k1", data);
  struct stat st;
  mode_t mask = umask(0);
  umask(mask);
  CHECK(stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 0777) == (0755 & ~mask));
  CHECK(cache.load("k1", &out));
  CHECK(out == data);
  // Only the final file is left: the temp file was renamed, not copied.
  std::vector<std::string> names = list_dir(dir);
  CHECK(names.size() == 1 && names[0] == "k1.cubin");
  // Overwrite is whole, too.
  Bytes small = {'x', 'y'};
  cache.store("k1", small);
  CHECK(cache.load("k1", &out) && out == small);
  cache.store("k2", Bytes());
  CHECK(cache.load("k2", &out) && out.empty());
  CHECK(list_dir(dir).size() == 2);
  CacheStats s = cache.stats();
  CHECK(s.files == 2);
  CHECK(s.bytes == 2);
  // Foreign files, a temp file in flight and a directory named like a cache file are neither counted nor removed.
  write_file(dir + "/notes.txt", "keep me");
  write_file(dir + "/.k3.tmp-1-2-abcd", "in flight");
  write_file(dir + "/k4.cubin.bak", "keep");
  mkdir((dir + "/d.cubin").c_str(), 0755);
  s = cache.stats();
  CHECK(s.files == 2 && s.bytes == 2);
  CHECK(cache.clear() == 2);
  CHECK(cache.stats().files == 0);
  names = list_dir(dir);
  CHECK(names.size() == 4);
  CHECK(!cache.load("k1", &out));
  CHECK(throws_invalid([&] { cache.store("../escape", data); }));
  CHECK(throws_invalid([&] { cache.load(".hidden", &out); }));
  // A file in the way of the directory.
  write_file(root + "/file", "x");
  CHECK(throws_invalid([&] { DiskCache(root + "/file").store("k", data); }));
  // Many threads storing one key: always a whole file.
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Bytes mine(50000, static_cast<char>('a' + t));
      for (int r = 0; r < 10; ++r) cache.store("race", mine);
    });
  }
  std::atomic<int> torn{0};
  std::thread reader([&] {
    for (int r = 0; r < 200; ++r) {
      Bytes got;
      if (cache.load("race", &got)) {
        bool whole = got.size() == 50000;
        for (char c : got) whole = whole && c == got[0];
        if (!whole) ++torn;
      }
    }
  });
  for (auto& t : threads) t.join();
  reader.join();
  CHECK(torn.load() == 0);
  CHECK(cache.stats().files == 1);
  CHECK(list_dir(dir).size() == 5);  // race.cubin and the 4 foreign entries: no temp files left
}

static void test_c_api_cache(const std::string& root) {
  std::string dir = root + "/capi";
  CHECK(fi4j_jit_set_cache_dir(dir.c_str()) == FI4J_OK);
  int64_t files = -1, bytes = -1;
  CHECK(fi4j_jit_cache_stats(&files, &bytes) == FI4J_OK && files == 0 && bytes == 0);  // missing dir: empty
  DiskCache(dir).store("abc", Bytes(10, 'z'));
  write_file(dir + "/other.txt", "keep");
  CHECK(fi4j_jit_cache_stats(&files, &bytes) == FI4J_OK && files == 1 && bytes == 10);
  CHECK(fi4j_jit_cache_clear() == FI4J_OK);
  CHECK(fi4j_jit_cache_stats(&files, &bytes) == FI4J_OK && files == 0 && bytes == 0);
  CHECK(list_dir(dir).size() == 1);
  CHECK(fi4j_jit_cache_stats(nullptr, &bytes) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(fi4j_jit_set_cache_dir(nullptr) == FI4J_OK);
}

static void test_compile_once(const std::string& root) {
  std::string dir = root + "/kernels";
  KernelCache cache([dir] { return dir; });
  std::atomic<int> compiles{0};
  auto compile = [&] {
    ++compiles;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // keep the others waiting
    return Bytes{'c', 'u', 'b', 'i', 'n'};
  };
  std::atomic<int> wrong{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      auto bytes = cache.get_or_compile("one-key", compile);
      if (*bytes != Bytes{'c', 'u', 'b', 'i', 'n'}) ++wrong;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  CHECK(compiles.load() == 1);
  CHECK(wrong.load() == 0);
  CHECK(DiskCache(dir).stats().files == 1);
  // Memory hit: no compile, even with the disk cleared.
  DiskCache(dir).clear();
  cache.get_or_compile("one-key", compile);
  CHECK(compiles.load() == 1);
  // Disk hit: a fresh table (another process) finds the file without compiling.
  DiskCache(dir).store("one-key", Bytes{'d'});
  KernelCache other([dir] { return dir; });
  CHECK(*other.get_or_compile("one-key", compile) == Bytes{'d'});
  CHECK(compiles.load() == 1);
  // A failed compile reaches every waiter and is tried again later.
  std::atomic<int> attempts{0};
  auto failing = [&]() -> Bytes {
    ++attempts;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    throw fi4j::Error(FI4J_ERR_UNSUPPORTED, "no NVRTC");
  };
  std::atomic<int> errors{0};
  threads.clear();
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      try {
        cache.get_or_compile("bad-key", failing);
      } catch (const fi4j::Error& e) {
        if (std::string(e.what()) == "no NVRTC") ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors.load() == 8);
  CHECK(attempts.load() >= 1 && attempts.load() <= 8);
  int before = attempts.load();
  try {
    cache.get_or_compile("bad-key", failing);
  } catch (const fi4j::Error&) {
  }
  CHECK(attempts.load() == before + 1);
  // Store failure (directory in the way) still returns the bytes.
  write_file(root + "/blocked", "x");
  KernelCache blocked([root] { return root + "/blocked"; });
  CHECK(*blocked.get_or_compile("k", [] { return Bytes{'q'}; }) == Bytes{'q'});
  CHECK(!blocked.last_store_error().empty());
  // forget() drops finished entries: the next call reads the disk again (the 'd' stored above).
  cache.forget();
  CHECK(*cache.get_or_compile("one-key", compile) == Bytes{'d'});
  CHECK(compiles.load() == 1);
}

static void test_nvrtc_absent(const std::string& root) {
  NvrtcLoad load = load_nvrtc({root + "/no/libnvrtc.so.13", "libnvrtc-fi4j-absent.so.12"});
  CHECK(!load.ok);
  CHECK(load.reason.rfind(kNvrtcMissing, 0) == 0);
  CHECK(contains(load.reason, "libnvrtc.so.13"));
  CHECK(contains(load.reason, "cuda-nvrtc"));
  CHECK(contains(load.reason, "LD_LIBRARY_PATH"));
  CHECK(contains(load.reason, "the ahead-of-time kernels still work"));
  // A library without the NVRTC functions is refused and named.
  NvrtcLoad wrong = load_nvrtc({"libc.so.6"});
  CHECK(!wrong.ok);
  CHECK(contains(wrong.reason, "libc.so.6 lacks nvrtcGetErrorString"));
  std::vector<std::string> candidates = nvrtc_candidates();
  CHECK(candidates.size() >= 4 && candidates[0] == "libnvrtc.so.13" && candidates[1] == "libnvrtc.so.12");
  // An explicit library (the setting, else $FLASHINFER4J_NVRTC) is the only candidate; the message names the ways.
  setenv("FLASHINFER4J_NVRTC", "/opt/nvrtc/libnvrtc.so.13", 1);
  CHECK(nvrtc_candidates() == std::vector<std::string>({"/opt/nvrtc/libnvrtc.so.13"}));
  set_nvrtc_path("/explicit/libnvrtc.so");
  CHECK(nvrtc_candidates() == std::vector<std::string>({"/explicit/libnvrtc.so"}));
  set_nvrtc_path("");
  unsetenv("FLASHINFER4J_NVRTC");
  CHECK(nvrtc_candidates().size() >= 4);
  NvrtcLoad named = load_nvrtc({root + "/named/libnvrtc.so.13"});
  CHECK(!named.ok && contains(named.reason, root + "/named/libnvrtc.so.13") &&
        contains(named.reason, "FLASHINFER4J_NVRTC") && contains(named.reason, "flashinfer4j.nvrtc"));
  // The real search, on this machine: either found (a CUDA toolkit with NVRTC) or the message.
  int available = -1;
  CHECK(fi4j_jit_available(&available) == FI4J_OK);
  CHECK(available == 0 || available == 1);
  CHECK((nvrtc() != nullptr) == (available == 1));
  if (available == 0) {
    CHECK(std::string(fi4j_jit_unavailable_reason()).rfind(kNvrtcMissing, 0) == 0);
    std::printf("NVRTC absent: %s\n", fi4j_jit_unavailable_reason());
  } else {
    CHECK(std::string(fi4j_jit_unavailable_reason()).empty());
    std::printf("NVRTC %d.%d at %s\n", nvrtc()->major, nvrtc()->minor, nvrtc()->path.c_str());
  }
  CHECK(fi4j_jit_available(nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  // After the lookup the setting is fixed: the same value is accepted, another one refused with a message.
  CHECK(fi4j_jit_set_nvrtc_path(nullptr) == FI4J_OK && fi4j_jit_set_nvrtc_path("") == FI4J_OK);
  CHECK(fi4j_jit_set_nvrtc_path("/late/libnvrtc.so.13") == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "/late/libnvrtc.so.13") && contains(fi4j_last_error(), "before the first"));
}

// Which kernel serves a decode configuration, and the messages when none does.
static void test_routing() {
  using fi4j::Route;
  using fi4j::route_decode;
  const std::string missing = std::string(kNvrtcMissing) + " (tried libnvrtc.so.13)";
  for (int d : {64, 128, 256}) {
    CHECK(route_decode(true, d, FI4J_PATH_AUTO, "").route == Route::Aot);
    CHECK(route_decode(true, d, FI4J_PATH_TENSOR_CORES, missing).route == Route::Aot);  // no NVRTC needed
    CHECK(fi4j::decode_head_dim_aot(d) && !fi4j::decode_head_dim_jit(d));
  }
  for (int d : {16, 32, 48, 80, 96, 112, 160, 192, 240}) {
    CHECK(fi4j::decode_head_dim_jit(d));
    CHECK(route_decode(true, d, FI4J_PATH_AUTO, "").route == Route::Jit);
    CHECK(route_decode(true, d, FI4J_PATH_CUDA_CORES, "").route == Route::Jit);
    const auto tc = route_decode(true, d, FI4J_PATH_TENSOR_CORES, "");
    CHECK(tc.route == Route::Unsupported && contains(tc.reason, "tensor-core"));
    const auto absent = route_decode(true, d, FI4J_PATH_AUTO, missing);
    CHECK(absent.route == Route::Unsupported);
    // Names the head dim and what to install.
    CHECK(contains(absent.reason, "head_dim " + std::to_string(d)));
    CHECK(contains(absent.reason, "NVRTC") && contains(absent.reason, "install") &&
          contains(absent.reason, "cuda-nvrtc"));
  }
  for (int d : {0, 8, 24, 72, 100, 264, 272, 512}) {
    CHECK(!fi4j::decode_head_dim_jit(d) && !fi4j::decode_head_dim_aot(d));
    const auto r = route_decode(true, d, FI4J_PATH_AUTO, "");
    CHECK(r.route == Route::Unsupported);
    CHECK(contains(r.reason, "head_dim " + std::to_string(d)) && contains(r.reason, "multiples of 16"));
  }
  // The CPU reference runs any head dim (its own check limits it to even 2..1024).
  for (int d : {2, 64, 72, 96, 1024}) CHECK(route_decode(false, d, FI4J_PATH_AUTO, missing).route == Route::Cpu);
}

// Geometry of the CUDA-core kernel: the AOT head dims keep their tiles; every JIT head dim gets a consistent split.
static void test_geometry() {
  using namespace fi4j::decode;
  CHECK(tile_tokens(64) == 64 && tile_tokens(128) == 32 && tile_tokens(256) == 16);
  CHECK(tile_bytes(64) == 16384 && tile_bytes(128) == 16384 && tile_bytes(256) == 16384);
  CHECK(lanes_per_row(96) == 16 && lanes_per_row(192) == 32 && lanes_per_row(80) == 16 && lanes_per_row(16) == 2);
  CHECK(decode_smem_bytes(128, false) == 3 * 16384 + 3 * 32);
  CHECK(decode_smem_bytes(128, true) == 3 * 16384 + 32 * 128 * 4 + 3 * 32);
  for (int d = 16; d <= 256; d += 16) {
    CHECK(head_dim_supported(d));
    CHECK(tile_bytes(d) <= 16384);
    CHECK(lanes_per_row(d) >= d / fi4j::kVecElems && 32 % lanes_per_row(d) == 0);
    CHECK(decode_smem_bytes(d, true) <= decode_smem_bytes(64, true) + 1024);  // about the AOT kernels
    CHECK(decode_smem_bytes(d, false) <= decode_smem_bytes(64, false) + 1024);
    CHECK(kHeadsPerPass * (d + 2) * 4 <= decode_smem_layout(d, false).ring_bytes);
    {
      namespace m = fi4j::decode_merge;
      for (int n : {0, 1, 2, 3, 5, 16, 17, 64, 100, 1000}) {
        const int lanes = m::item_lanes(d, n);
        CHECK(lanes >= 1 && 32 % lanes == 0 && lanes <= std::max(n, 1));  // whole aligned groups of a warp
        CHECK(lanes * m::lane_threads(d) <= m::kThreads && m::heads_per_pass(d, lanes) >= 1);
        CHECK(m::head_blocks(d, 32, n * 3, 3) >= 1 && m::head_blocks(d, 32, n * 3, 3) <= 32);
      }
      // the widest: no further doubling fits
      CHECK(m::item_lanes(d, 1000) * 2 * m::lane_threads(d) > m::kThreads || m::item_lanes(d, 1000) == 32);
    }
  }
  // one long request at D = 64: 16 lanes of 8 threads, one head per block
  CHECK(fi4j::decode_merge::item_lanes(64, 64) == 16 && fi4j::decode_merge::head_blocks(64, 32, 64, 1) == 32);
  CHECK(fi4j::decode_merge::head_blocks(128, 32, 64, 64) == 4);  // one item each: 8 heads of 16 threads per block
  CHECK(!head_dim_supported(8) && !head_dim_supported(72) && !head_dim_supported(272));
}

// Keys and generated source of run-time compiled decode.
static void test_decode_source() {
  DecodeKernelSpec a;
  a.dtype = FI4J_BF16;
  a.head_dim = 96;
  const std::string key = decode_key(a, "sm_90");
  CHECK(is_safe_key(key));
  CHECK(key.rfind("decode-bf16-d96-", 0) == 0);
  CHECK(contains(key, "-sm_90-v"));
  CHECK(key == decode_key(a, "sm_90"));  // deterministic
  CHECK(key != decode_key(a, "sm_80"));
  std::set<std::string> keys = {key};
  DecodeKernelSpec b = a;
  b.dtype = FI4J_F16;
  keys.insert(decode_key(b, "sm_90"));
  b = a;
  b.head_dim = 192;
  keys.insert(decode_key(b, "sm_90"));
  b = a;
  b.soft_cap = true;
  keys.insert(decode_key(b, "sm_90"));
  b = a;
  b.rope = true;
  keys.insert(decode_key(b, "sm_90"));
  CHECK(keys.size() == 5);
  const std::string src = decode_source(a);
  CHECK(contains(src, "extern \"C\" __global__"));
  CHECK(contains(src, kDecodeEntry) && contains(src, kMergeEntry));
  CHECK(contains(src, "kHeadDim = 96") && contains(src, "fi4j::bfloat16_t"));
  CHECK(contains(decode_source(b), "kRope = true"));
  CHECK(arch_name(9, 0) == "sm_90" && arch_name(10, 0) == "sm_100" && arch_name(8, 6) == "sm_86");
  bool refused = false;
  try {
    DecodeKernelSpec bad = a;
    bad.head_dim = 72;
    decode_source(bad);
  } catch (const fi4j::Error& e) {
    refused = e.status == FI4J_ERR_UNSUPPORTED && contains(e.what(), "head_dim 72");
  }
  CHECK(refused);
  const auto opts = nvrtc_options("sm_90");
  CHECK(opts.size() >= 2 && contains(opts[1], "-arch=sm_90"));
}

// Every quoted include of the generated source and of the embedded headers is itself embedded, so NVRTC needs no
// file on disk; with nvcc at hand (CI has it), the generated source compiles from those texts alone.
static void test_embedded_headers(const std::string& root) {
  std::set<std::string> names;
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i) names.insert(kEmbeddedHeaders[i].name);
  CHECK(names.count("fi4j/attention/decode.cuh") == 1 && names.count("fi4j/attention/decode_merge.cuh") == 1);
  DecodeKernelSpec spec;
  spec.dtype = FI4J_BF16;
  spec.head_dim = 96;
  spec.soft_cap = true;
  spec.rope = true;
  std::vector<std::string> texts = {decode_source(spec)};
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i) texts.push_back(kEmbeddedHeaders[i].text);
  for (const auto& text : texts) {
    size_t pos = 0;
    while ((pos = text.find("#include \"", pos)) != std::string::npos) {
      const size_t start = pos + 10, end = text.find('"', start);
      const std::string name = text.substr(start, end - start);
      if (names.count(name) == 0) std::printf("not embedded: %s\n", name.c_str());
      CHECK(names.count(name) == 1);
      pos = end;
    }
  }
#ifdef FI4J_TEST_NVCC
  if (access(FI4J_TEST_NVCC, X_OK) != 0) {
    std::printf("nvcc not at %s: skipping the compile of the generated source\n", FI4J_TEST_NVCC);
    return;
  }
  const std::string dir = root + "/nvcc";
  mkdir(dir.c_str(), 0755);
  mkdir((dir + "/fi4j").c_str(), 0755);
  mkdir((dir + "/fi4j/common").c_str(), 0755);
  mkdir((dir + "/fi4j/attention").c_str(), 0755);
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i)
    write_file(dir + "/" + kEmbeddedHeaders[i].name, kEmbeddedHeaders[i].text);
  write_file(dir + "/decode.cu", texts[0]);
  // FI4J_NO_CUDA_FP16_HEADERS: the branch NVRTC takes (own 16-bit types, PTX conversions).
  std::string cmd = std::string(FI4J_TEST_NVCC) + " -cubin -std=c++17 -arch=sm_90 --expt-relaxed-constexpr " +
                    "-DFI4J_NO_CUDA_FP16_HEADERS -I" + dir + " " + dir + "/decode.cu -o " + dir +
                    "/decode.cubin 2>&1";
  const int rc = std::system(cmd.c_str());
  CHECK(rc == 0);
  struct stat st;
  CHECK(stat((dir + "/decode.cubin").c_str(), &st) == 0 && st.st_size > 0);
#else
  (void)root;
#endif
}

// The C API on the CPU backend: every head dim the reference runs is supported, routed to the CPU.
static void test_c_api_kernel_config() {
  fi4j_kernel_config c{FI4J_OP_DECODE, FI4J_BF16, 96, 0, FI4J_POS_NONE, FI4J_PATH_AUTO};
  int32_t route = -1;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_OK && route == FI4J_ROUTE_CPU);
  fi4j_kernel_prepare_info info{};
  info.origin = 42;
  CHECK(fi4j_kernel_prepare(FI4J_DEVICE_CPU, &c, &info) == FI4J_OK);
  CHECK(info.route == FI4J_ROUTE_CPU && info.origin == FI4J_JIT_NONE && info.key[0] == '\0');
  c.dtype = FI4J_F32;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_ERR_UNSUPPORTED);
  c.dtype = FI4J_F16;
  c.op = 7;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "config.op"));
  c.op = FI4J_OP_DECODE;
  c.head_dim = 3;  // odd: not even the CPU reference
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_ERR_UNSUPPORTED);
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, nullptr, &route) == FI4J_ERR_INVALID_ARGUMENT);
  c.head_dim = 96;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, nullptr) == FI4J_ERR_INVALID_ARGUMENT);
  // A CUDA device that does not exist here is an error, never a crash.
  int count = 0;
  fi4j_device_count(&count);
  if (count == 0) CHECK(fi4j_kernel_supported(0, &c, &route) != FI4J_OK);
}


// Which kernel serves a prefill configuration, and the messages when none does.
static void test_prefill_routing() {
  using fi4j::Route;
  using fi4j::route_prefill;
  const std::string missing = std::string(kNvrtcMissing) + " (tried libnvrtc.so.13)";
  for (int d : {64, 128, 256}) {
    CHECK(route_prefill(true, d, missing).route == Route::Aot);  // no NVRTC needed
    CHECK(fi4j::prefill_head_dim_aot(d) && !fi4j::prefill_head_dim_jit(d));
  }
  for (int d : {16, 32, 48, 80, 96, 112, 144, 160, 192, 208, 240}) {
    CHECK(fi4j::prefill_head_dim_jit(d));
    CHECK(route_prefill(true, d, "").route == Route::Jit);
    const auto absent = route_prefill(true, d, missing);
    CHECK(absent.route == Route::Unsupported);
    CHECK(contains(absent.reason, "head_dim " + std::to_string(d)));
    CHECK(contains(absent.reason, "prefill") && contains(absent.reason, "NVRTC") && contains(absent.reason, "install") &&
          contains(absent.reason, "cuda-nvrtc"));
  }
  for (int d : {0, 8, 24, 72, 100, 264, 272, 512}) {
    CHECK(!fi4j::prefill_head_dim_jit(d) && !fi4j::prefill_head_dim_aot(d));
    const auto r = route_prefill(true, d, "");
    CHECK(r.route == Route::Unsupported);
    CHECK(contains(r.reason, "head_dim " + std::to_string(d)) && contains(r.reason, "multiples of 16") &&
          contains(r.reason, "prefill"));
  }
  for (int d : {2, 64, 72, 96, 1024}) CHECK(route_prefill(false, d, missing).route == Route::Cpu);
  // This process: a JIT head dim routes by whether NVRTC loads here; an AOT one never asks.
  CHECK(fi4j::require_prefill_route(true, 128) == Route::Aot);
  bool threw = false;
  try {
    CHECK(fi4j::require_prefill_route(true, 96) == Route::Jit);
    CHECK(nvrtc() != nullptr);
  } catch (const fi4j::Error& e) {
    threw = true;
    CHECK(e.status == FI4J_ERR_UNSUPPORTED && contains(e.what(), "head_dim 96") && contains(e.what(), "NVRTC"));
  }
  CHECK(threw == (nvrtc() == nullptr));
}

// The launch arithmetic shared by the ahead-of-time and run-time compiled prefill launchers.
static void test_prefill_geometry() {
  namespace g = fi4j::prefill_geometry;
  // The ahead-of-time head dims: unpadded rows (prefill.cu checks these against prefill.cuh at compile time).
  CHECK(g::smem_stride(64) == 64 && g::smem_stride(128) == 128 && g::smem_stride(256) == 256);
  CHECK(g::smem_stride(96) == 128 && g::smem_stride(80) == 128 && g::smem_stride(192) == 192 &&
        g::smem_stride(16) == 64);
  const g::TileShape w4{4, 1}, w8{8, 1}, w8x2{8, 2};
  CHECK(w4.rows() == 64 && w8.rows() == 128 && w8x2.rows() == 256 && w8.threads() == 256);
  CHECK(g::smem_bytes(128, w8x2, false) == 256 * 128 * 2 + 4 * 64 * 128 * 2 + 128);
  CHECK(g::smem_bytes(256, w4, true) == 2 * 64 * 256 * 2 + 6 * 32 * 256 * 2 + 128);
  for (int d = 16; d <= 256; d += 16) {
    CHECK(g::head_dim_supported(d));
    for (int cta : {0, 64, 128, 256}) CHECK(g::tile_shape(d, true, cta).rows() == 64);  // RoPE: 4 warps x 1
    CHECK(g::tile_shape(d, false, 64).rows() == 64);
    CHECK(g::tile_shape(d, false, 128).rows() == 128);
    CHECK(g::tile_shape(d, false, 256).rows() == (d <= 128 ? 256 : 128));
    // A run-time compiled head dim needs no more shared memory than the ahead-of-time one it pads to.
    const int aot = d <= 64 ? 64 : d <= 128 ? 128 : 256;
    for (bool rope : {false, true})
      for (int cta : {0, 64, 128, 256})
        CHECK(g::smem_bytes(d, g::tile_shape(d, rope, cta), rope) <= g::smem_bytes(aot, g::tile_shape(aot, rope, cta), rope));
    // The plan's choice: 64 rows for short requests and RoPE, else the largest block that fits.
    CHECK(g::choose_cta_tile_q(d, false, 64, 232448) == 64);
    CHECK(g::choose_cta_tile_q(d, true, 4096, 232448) == 64);
    CHECK(g::choose_cta_tile_q(d, false, 4096, 232448) == (d <= 128 ? 256 : 128));
  }
  // Ada (99 KB per block): 256 rows of D = 128 do not fit, 128 rows do.
  CHECK(g::choose_cta_tile_q(128, false, 4096, 101376) == 128);
  CHECK(!g::head_dim_supported(8) && !g::head_dim_supported(72) && !g::head_dim_supported(272));

  fi4j::PrefillParams p{};
  p.dtype = fi4j::DType::BF16;
  p.batch_size = 1;
  p.num_qo_heads = 8;
  p.num_kv_heads = 2;
  p.head_dim = 96;
  p.nnz_qo = 100;
  p.kv_storage = fi4j::KvStorage::Ragged;
  g::LaunchShape s{};
  // Single prefill (no qo_indptr): 100 rows x group 4 > 64, so 256-row blocks; 400 / 256 -> 2 tiles + 1.
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch);
  CHECK(s.cta_tile_q == 256 && s.shape.rows() == 256 && !s.split && s.tiles == 3 && s.kv_heads == 2 &&
        s.smem_bytes == g::smem_bytes(96, w8x2, false));
  p.variant.pos_encoding = fi4j::PosEncoding::RopeLlama;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.shape.rows() == 64 && s.tiles == 8);
  p.variant.pos_encoding = fi4j::PosEncoding::None;
  p.nnz_qo = 16;  // 64 packed rows: one 64-row tile
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.cta_tile_q == 64 && s.shape.rows() == 64 && s.tiles == 2);
  // A planned batch: the plan's block size.
  int32_t indptr[3] = {0, 10, 300};
  p.qo_indptr = indptr;
  p.batch_size = 2;
  p.nnz_qo = 300;
  p.plan.cta_tile_q = 64;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.shape.rows() == 64 && s.tiles == (1200 + 63) / 64 + 2);
  // A split plan applies with a workspace and the planned block size only (RoPE runs 64-row blocks).
  int workspace = 0;
  p.plan.num_work = 7;
  p.plan.workspace = &workspace;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.split && s.tiles == 7);
  p.plan.cta_tile_q = 256;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.split && s.tiles == 7);
  p.variant.pos_encoding = fi4j::PosEncoding::RopeLlama;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && !s.split && s.shape.rows() == 64);
  p.variant.pos_encoding = fi4j::PosEncoding::None;
  p.plan.workspace = nullptr;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && !s.split);
  p.plan.num_work = 0;
  p.head_dim = 192;
  p.plan.cta_tile_q = 256;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Launch && s.shape.rows() == 128);  // D > 128: 8 warps x 1
  p.nnz_qo = 0;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Nothing);
  p.nnz_qo = 300;
  p.head_dim = 72;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Unsupported);
  p.head_dim = 96;
  p.num_qo_heads = 7;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Unsupported);
  p.num_qo_heads = 8;
  p.dtype = fi4j::DType::F32;
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Unsupported);
  p.dtype = fi4j::DType::F16;
  p.kv_storage = fi4j::KvStorage::Paged;  // without page table
  CHECK(g::launch_shape(p, &s) == g::LaunchCheck::Unsupported);
}

static PrefillKernelSpec prefill_spec(int dtype, int d, bool cap, bool rope) {
  PrefillKernelSpec s;
  s.dtype = dtype;
  s.head_dim = d;
  s.soft_cap = cap;
  s.rope = rope;
  return s;
}

// Keys, kernel names and generated source of run-time compiled prefill.
static void test_prefill_source() {
  const PrefillKernelSpec a = prefill_spec(FI4J_BF16, 96, false, false);
  const std::string key = prefill_key(a, "sm_90");
  CHECK(is_safe_key(key));
  CHECK(key.rfind("prefill-bf16-d96-", 0) == 0);
  CHECK(contains(key, "-sm_90-v"));
  CHECK(key == prefill_key(a, "sm_90"));
  CHECK(key != prefill_key(a, "sm_80"));
  DecodeKernelSpec same_decode;
  same_decode.dtype = FI4J_BF16;
  same_decode.head_dim = 96;
  CHECK(key != decode_key(same_decode, "sm_90"));
  std::set<std::string> keys = {key, prefill_key(prefill_spec(FI4J_F16, 96, false, false), "sm_90"),
                                prefill_key(prefill_spec(FI4J_BF16, 192, false, false), "sm_90"),
                                prefill_key(prefill_spec(FI4J_BF16, 96, true, false), "sm_90"),
                                prefill_key(prefill_spec(FI4J_BF16, 96, false, true), "sm_90")};
  CHECK(keys.size() == 5);
  CHECK(prefill_shape_variants(a).size() == 3);  // 4x1, 8x1, 8x2
  CHECK(prefill_shape_variants(prefill_spec(FI4J_BF16, 96, false, true)).size() == 1);  // RoPE: 4x1
  CHECK(prefill_shape_variants(prefill_spec(FI4J_F16, 192, true, false)).size() == 2);  // 4x1, 8x1
  CHECK(prefill_name_expression(a, {8, 2}) ==
        "fi4j::prefill::batch_prefill_kernel<fi4j::bfloat16_t, 96, 2, 8, false, false>");
  CHECK(prefill_kernel_symbol(a, {4, 1}) ==
        "_ZN4fi4j7prefill20batch_prefill_kernelINS_10bfloat16_tELi96ELi1ELi4ELb0ELb0EEEvNS_13PrefillParamsE");
  CHECK(prefill_kernel_symbol(prefill_spec(FI4J_F16, 192, true, true), {4, 1}) ==
        "_ZN4fi4j7prefill20batch_prefill_kernelINS_6half_tELi192ELi1ELi4ELb1ELb1EEEvNS_13PrefillParamsE");
  CHECK(prefill_merge_symbol(a) ==
        "_ZN4fi4j7prefill26batch_prefill_merge_kernelINS_10bfloat16_tEEEvNS_13PrefillParamsEi");
  const std::string src = prefill_source(a);
  CHECK(contains(src, "#include \"fi4j/attention/prefill.cuh\""));
  CHECK(contains(src, "template __global__ void fi4j::prefill::batch_prefill_kernel<fi4j::bfloat16_t, 96, 1, 4, false, false>"));
  CHECK(contains(src, "batch_prefill_kernel<fi4j::bfloat16_t, 96, 2, 8, false, false>"));
  CHECK(contains(src, "batch_prefill_merge_kernel<fi4j::bfloat16_t>"));
  CHECK(!contains(prefill_source(prefill_spec(FI4J_F16, 192, true, true)), ", 8, "));
  CHECK(contains(src, "static_assert(fi4j::prefill::smem_bytes<96, 2, 8, false>() == fi4j::prefill_geometry::smem_bytes"));
  for (int bad : {72, 0, 272}) {
    bool refused = false;
    try {
      prefill_source(prefill_spec(FI4J_BF16, bad, false, false));
    } catch (const fi4j::Error& e) {
      refused = e.status == FI4J_ERR_UNSUPPORTED && contains(e.what(), "head_dim " + std::to_string(bad)) &&
                contains(e.what(), "prefill");
    }
    CHECK(refused);
  }
  bool refused = false;
  try {
    prefill_key(prefill_spec(FI4J_F32, 96, false, false), "sm_90");
  } catch (const fi4j::Error& e) {
    refused = e.status == FI4J_ERR_UNSUPPORTED && contains(e.what(), "dtype");
  }
  CHECK(refused);
}

static bool file_contains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return contains(bytes, needle);
}

// The generated prefill sources compile from the embedded headers alone, on the branch NVRTC takes, and the
// cubin holds each kernel under the symbol the loader looks up.
static void test_prefill_compiles(const std::string& root) {
  std::set<std::string> names;
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i) names.insert(kEmbeddedHeaders[i].name);
  for (const char* h : {"fi4j/attention/prefill.cuh", "fi4j/attention/prefill_geometry.h", "fi4j/common/mma.cuh", "fi4j/attention/prefill_params.h"})
    CHECK(names.count(h) == 1);
  const std::vector<PrefillKernelSpec> specs = {prefill_spec(FI4J_BF16, 96, false, false),
                                                prefill_spec(FI4J_F16, 192, true, true),
                                                prefill_spec(FI4J_F16, 80, true, false)};
  for (const auto& spec : specs) {
    const std::string text = prefill_source(spec);
    size_t pos = 0;
    while ((pos = text.find("#include \"", pos)) != std::string::npos) {
      const size_t start = pos + 10, end = text.find('"', start);
      CHECK(names.count(text.substr(start, end - start)) == 1);
      pos = end;
    }
  }
#ifdef FI4J_TEST_NVCC
  if (access(FI4J_TEST_NVCC, X_OK) != 0) {
    std::printf("nvcc not at %s: skipping the compile of the generated prefill source\n", FI4J_TEST_NVCC);
    return;
  }
  const std::string dir = root + "/nvcc-prefill";
  mkdir(dir.c_str(), 0755);
  mkdir((dir + "/fi4j").c_str(), 0755);
  mkdir((dir + "/fi4j/common").c_str(), 0755);
  mkdir((dir + "/fi4j/attention").c_str(), 0755);
  for (size_t i = 0; i < kNumEmbeddedHeaders; ++i)
    write_file(dir + "/" + kEmbeddedHeaders[i].name, kEmbeddedHeaders[i].text);
  int n = 0;
  for (const auto& spec : specs) {
    const std::string base = dir + "/prefill" + std::to_string(n++);
    write_file(base + ".cu", prefill_source(spec));
    // FI4J_NO_CUDA_FP16_HEADERS: the branch NVRTC takes (own 16-bit types, PTX conversions); the options are
    // NVRTC's (nvrtc_options) as far as nvcc has them.
    const std::string cmd = std::string(FI4J_TEST_NVCC) + " -cubin -std=c++17 -arch=sm_90 --expt-relaxed-constexpr " +
                            "-DFI4J_NO_CUDA_FP16_HEADERS -I" + dir + " " + base + ".cu -o " + base + ".cubin 2>&1";
    const int rc = std::system(cmd.c_str());
    CHECK(rc == 0);
    std::vector<std::string> symbols = {prefill_merge_symbol(spec)};
    for (const auto& t : prefill_shape_variants(spec)) symbols.push_back(prefill_kernel_symbol(spec, t));
    for (const std::string& symbol : symbols) {
      const bool found = file_contains(base + ".cubin", symbol);
      if (!found) std::printf("no %s in %s.cubin\n", symbol.c_str(), base.c_str());
      CHECK(found);
    }
  }
#else
  (void)root;
#endif
}

// The C API on the CPU backend: prefill configurations route to the CPU reference.
static void test_c_api_prefill_config() {
  fi4j_kernel_config c{FI4J_OP_PREFILL, FI4J_BF16, 96, 1, FI4J_POS_ROPE_LLAMA, 0};
  int32_t route = -1;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_OK && route == FI4J_ROUTE_CPU);
  fi4j_kernel_prepare_info info{};
  CHECK(fi4j_kernel_prepare(FI4J_DEVICE_CPU, &c, &info) == FI4J_OK);
  CHECK(info.route == FI4J_ROUTE_CPU && info.origin == FI4J_JIT_NONE && info.key[0] == '\0');
  c.path = 99;  // ignored for prefill
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_OK);
  c.dtype = FI4J_F32;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_ERR_UNSUPPORTED);
  c.dtype = FI4J_F16;
  c.op = 2;
  CHECK(fi4j_kernel_supported(FI4J_DEVICE_CPU, &c, &route) == FI4J_ERR_INVALID_ARGUMENT);
  CHECK(contains(fi4j_last_error(), "PREFILL (1)"));
  CHECK(fi4j_prefill_supported(FI4J_DEVICE_CPU, FI4J_BF16, 96, 8, 2) == FI4J_OK);
  int count = 0;
  fi4j_device_count(&count);
  if (count == 0) {
    c.op = FI4J_OP_PREFILL;
    CHECK(fi4j_kernel_supported(0, &c, &route) != FI4J_OK);
    CHECK(fi4j_prefill_supported(0, FI4J_BF16, 96, 8, 2) != FI4J_OK);
  }
}

int main() {
  std::string root = make_temp_dir();
  if (root.empty()) {
    std::printf("FAILED: mkdtemp\n");
    return 1;
  }
  test_keys();
  test_c_api_key();
  test_dir_resolution();
  test_disk_cache(root + "/disk");
  test_c_api_cache(root);
  test_compile_once(root);
  test_nvrtc_absent(root);
  test_routing();
  test_geometry();
  test_decode_source();
  test_embedded_headers(root);
  test_c_api_kernel_config();
  test_prefill_routing();
  test_prefill_geometry();
  test_prefill_source();
  test_prefill_compiles(root);
  test_c_api_prefill_config();
  remove_tree(root);
  std::printf("jit_tests: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed;
}
