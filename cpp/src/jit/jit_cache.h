// Run-time compilation (JIT) cache, host side: cache keys, the on-disk cache directory and its files, and the
// per-process compile-once table. No CUDA and no NVRTC here: the compile step is a callback, so all of this is
// tested on CI without a GPU. Internal (hidden visibility); the C API over it is in jit_api.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>
#include <future>

namespace fi4j {
namespace jit {

using Bytes = std::vector<char>;
using Config = std::map<std::string, std::string>;

/// 64-bit FNV-1a of text.
uint64_t fnv1a64(const std::string& text);
/// 16 lower-case hex digits.
std::string hex16(uint64_t value);

/// Parses a "k=v;k=v" configuration (any order; empty pieces, such as a trailing ';', are skipped). Names are
/// [A-Za-z0-9_]+, values are non-empty and free of ';', '=' and control characters; a repeated name is an error.
/// Throws Error(FI4J_ERR_INVALID_ARGUMENT) naming the bad piece.
Config parse_config(const std::string& text);
/// The canonical text of a configuration: "k=v;k=v" sorted by name.
std::string canonical_config(const Config& config);

/// The cache key of one kernel: a readable prefix (op, abbreviated configuration values, arch, library version)
/// and 16 hex digits of FNV-1a over the full canonical text, e.g. "decode-bf16-d96-rope1-cap0-sm_90-v100-<hash>".
/// Only [A-Za-z0-9._-], at most kMaxKeyLength characters, never starting with '.'. Every field changes the hash.
/// op and arch: [A-Za-z0-9_]+ (arch such as "sm_90" or "sm_90a").
std::string make_key(int library_version, const std::string& arch, const std::string& op, const Config& config);
constexpr size_t kMaxKeyLength = 160;
/// Whether key is made only of the characters make_key uses (so that it is safe as a file name).
bool is_safe_key(const std::string& key);

/// The cache directory: explicit (when non-empty), else $FLASHINFER4J_CACHE_DIR, else $XDG_CACHE_HOME/flashinfer4j
/// (an absolute XDG_CACHE_HOME only, as the XDG spec says), else $HOME/.cache/flashinfer4j, else the passwd home.
/// Read each call (environment changes are seen). Throws when no home directory can be found.
std::string resolve_cache_dir(const std::string& explicit_dir);

/// The process-wide explicit setting ("" = resolve from the environment) and the directory it resolves to now.
void set_cache_dir(const std::string& dir);
std::string cache_dir();

/// mkdir -p with mode 0755 for the parts that are missing; throws when a part exists and is not a directory.
void make_dirs(const std::string& dir);

struct CacheStats {
  int64_t files = 0;
  int64_t bytes = 0;
};

/// The cache files of one directory: <key>.cubin, written through a unique temp file in the same directory and
/// rename(), so that a reader (of this or another process) sees a whole file or none.
class DiskCache {
 public:
  static constexpr const char* kExtension = ".cubin";

  explicit DiskCache(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  std::string path_of(const std::string& key) const;

  /// The stored bytes of key, or false when there are none (a missing directory is no error).
  bool load(const std::string& key, Bytes* out) const;
  /// Creates the directory when needed, writes a temp file, fsyncs it and renames it to the key's file.
  void store(const std::string& key, const Bytes& bytes) const;
  /// Count and total size of the *.cubin files (0, 0 for a missing directory).
  CacheStats stats() const;
  /// Removes the *.cubin files only (temp files of writers in flight and foreign files stay); returns the count.
  int64_t clear() const;

 private:
  std::string dir_;
};

/// Compile-once table: memory first, then the disk cache, else compile (once per key, however many threads ask at
/// the same time) and store to disk. A failed compile is reported to every waiting caller and is not remembered,
/// so that a later call tries again. A failed store (read-only directory, full disk) is not an error: the bytes
/// are returned and last_store_error() says what happened.
class KernelCache {
 public:
  /// dir_fn gives the disk directory at each miss (so that the process-wide setting can change).
  explicit KernelCache(std::function<std::string()> dir_fn) : dir_fn_(std::move(dir_fn)) {}

  /// Where get_or_compile found the bytes: this process's memory (including a compile another thread finished
  /// while this one waited), the disk cache, or a compile run by this call.
  enum class Origin { Memory, Disk, Compiled };

  std::shared_ptr<const Bytes> get_or_compile(const std::string& key, const std::function<Bytes()>& compile,
                                              Origin* origin = nullptr);
  /// Drops the in-memory entries (finished ones; compiles in flight finish).
  void forget();
  std::string last_store_error() const;

 private:
  using Entry = std::shared_future<std::shared_ptr<const Bytes>>;
  std::function<std::string()> dir_fn_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::string last_store_error_;
};

/// The process-wide table, on the process-wide directory setting.
KernelCache& kernel_cache();

}  // namespace jit
}  // namespace fi4j
