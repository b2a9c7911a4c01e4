// Run-time compilation cache, host side (see jit_cache.h).
#include "jit/jit_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/status.h"

namespace fi4j {
namespace jit {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

// A value as a file-name piece: [A-Za-z0-9_.] kept, anything else becomes '_'.
std::string safe_piece(const std::string& s) {
  std::string out;
  for (char c : s) out += is_name_char(c) || c == '.' ? c : '_';
  return out;
}

// Short forms of the common configuration names; others read name+value.
std::string abbreviate(const std::string& name, const std::string& value) {
  static const std::map<std::string, std::string> kShort = {
      {"dtype", ""}, {"kv_dtype", "kv"}, {"q_dtype", "q"}, {"out_dtype", "o"}, {"head_dim", "d"},
      {"soft_cap", "cap"}, {"cap", "cap"}, {"rope", "rope"}, {"window", "win"}, {"mask", "mask"}};
  auto it = kShort.find(name);
  return safe_piece((it != kShort.end() ? it->second : name) + value);
}

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
  throw Error(FI4J_ERR_INTERNAL, "JIT cache: " + what + " " + path + " failed: " + errno_text(err));
}

bool has_extension(const char* name) {
  size_t n = std::strlen(name), e = std::strlen(DiskCache::kExtension);
  return n > e && name[0] != '.' && std::strcmp(name + n - e, DiskCache::kExtension) == 0;
}

template <typename F>
void for_each_cache_file(const std::string& dir, F&& f) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return;
    fail_io("opening directory", dir, errno);
  }
  while (dirent* ent = readdir(d)) {
    if (has_extension(ent->d_name)) f(dir + "/" + ent->d_name);
  }
  closedir(d);
}

std::mutex g_dir_mutex;
std::string g_explicit_dir;

}  // namespace

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex16(uint64_t value) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = kDigits[value & 15];
  return out;
}

Config parse_config(const std::string& text) {
  Config config;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string piece = text.substr(start, end - start);
    start = end + 1;
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    if (eq == std::string::npos) fail_arg("config entry", "name=value", "\"" + piece + "\"");
    std::string name = piece.substr(0, eq), value = piece.substr(eq + 1);
    if (!is_name(name)) fail_arg("config name", "[A-Za-z0-9_]+", "\"" + name + "\"");
    bool value_ok = !value.empty();
    for (char c : value) value_ok = value_ok && c != '=' && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    if (!value_ok) fail_arg("config value of " + name, "non-empty, without '=', ';' or control characters",
                            "\"" + value + "\"");
    if (!config.emplace(name, value).second) fail_arg("config", "free of repeated names", "\"" + name + "\" twice");
  }
  return config;
}

std::string canonical_config(const Config& config) {
  std::string out;
  for (const auto& kv : config) {
    if (!out.empty()) out += ';';
    out += kv.first + "=" + kv.second;
  }
  return out;
}

std::string make_key(int library_version, const std::string& arch, const std::string& op, const Config& config) {
  if (!is_name(op)) fail_arg("op", "[A-Za-z0-9_]+", "\"" + op + "\"");
  if (!is_name(arch)) fail_arg("arch", "[A-Za-z0-9_]+ such as sm_90", "\"" + arch + "\"");
  for (const auto& kv : config) {
    if (!is_name(kv.first)) fail_arg("config name", "[A-Za-z0-9_]+", "\"" + kv.first + "\"");
  }
  std::string canonical = "flashinfer4j-jit\nversion=" + std::to_string(library_version) + "\narch=" + arch +
                          "\nop=" + op + "\nconfig=" + canonical_config(config);
  std::string tail = "-" + arch + "-v" + std::to_string(library_version) + "-" + hex16(fnv1a64(canonical));
  std::string readable = op;
  for (const auto& kv : config) readable += "-" + abbreviate(kv.first, kv.second);
  // The hash tells keys apart; the readable part is cut to keep file names short.
  size_t room = kMaxKeyLength > tail.size() ? kMaxKeyLength - tail.size() : 0;
  if (readable.size() > room) readable.resize(room);
  return readable + tail;
}

bool is_safe_key(const std::string& key) {
  if (key.empty() || key.size() > kMaxKeyLength || key[0] == '.' || key[0] == '-') return false;
  for (char c : key) {
    if (!is_name_char(c) && c != '.' && c != '-') return false;
  }
  return true;
}

std::string resolve_cache_dir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  const char* env = std::getenv("FLASHINFER4J_CACHE_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/flashinfer4j";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.cache/flashinfer4j";
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && found->pw_dir != nullptr &&
      found->pw_dir[0] != '\0') {
    return std::string(found->pw_dir) + "/.cache/flashinfer4j";
  }
  throw Error(FI4J_ERR_UNSUPPORTED,
              "JIT cache: no cache directory: set FLASHINFER4J_CACHE_DIR (or XDG_CACHE_HOME or HOME), or set one "
              "explicitly");
}

void set_cache_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_dir_mutex);
  g_explicit_dir = dir;
}

std::string cache_dir() {
  std::string explicit_dir;
  {
    std::lock_guard<std::mutex> lock(g_dir_mutex);
    explicit_dir = g_explicit_dir;
  }
  return resolve_cache_dir(explicit_dir);
}

void make_dirs(const std::string& dir) {
  if (dir.empty()) throw Error(FI4J_ERR_INVALID_ARGUMENT, "JIT cache: empty directory name");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty() || part == "/") continue;
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) fail_io("creating directory", part, errno);
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) fail_io("reading", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(FI4J_ERR_INVALID_ARGUMENT, "JIT cache: " + dir + " is not a directory");
}

std::string DiskCache::path_of(const std::string& key) const {
  if (!is_safe_key(key)) fail_arg("cache key", "[A-Za-z0-9._-]+ not starting with '.' or '-'", "\"" + key + "\"");
  return dir_ + "/" + key + kExtension;
}

bool DiskCache::load(const std::string& key, Bytes* out) const {
  std::string path = path_of(key);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    fail_io("opening", path, errno);
  }
  Bytes bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      fail_io("reading", path, err);
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buf, buf + n);
  }
  close(fd);
  *out = std::move(bytes);
  return true;
}

void DiskCache::store(const std::string& key, const Bytes& bytes) const {
  static std::atomic<uint64_t> counter{0};
  std::string path = path_of(key);
  make_dirs(dir_);
  // Starts with '.' and lacks the extension: never counted, loaded or cleared as a cache file.
  uint64_t stamp = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::string tmp = dir_ + "/." + key + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
                    hex16(fnv1a64(std::to_string(stamp))).substr(0, 8);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_io("creating", tmp, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      fail_io("writing", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    fail_io("flushing", tmp, err);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    fail_io("renaming into", path, err);
  }
}

CacheStats DiskCache::stats() const {
  CacheStats s;
  for_each_cache_file(dir_, [&](const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      ++s.files;
      s.bytes += static_cast<int64_t>(st.st_size);
    }
  });
  return s;
}

int64_t DiskCache::clear() const {
  std::vector<std::string> paths;
  for_each_cache_file(dir_, [&](const std::string& path) { paths.push_back(path); });
  int64_t removed = 0;
  for (const auto& path : paths) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (unlink(path.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      fail_io("removing", path, errno);
    }
  }
  return removed;
}

std::shared_ptr<const Bytes> KernelCache::get_or_compile(const std::string& key,
                                                         const std::function<Bytes()>& compile, Origin* origin) {
  if (origin != nullptr) *origin = Origin::Memory;
  if (!is_safe_key(key)) fail_arg("cache key", "[A-Za-z0-9._-]+ not starting with '.' or '-'", "\"" + key + "\"");
  std::promise<std::shared_ptr<const Bytes>> promise;
  Entry entry;
  bool owner = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      entry = it->second;
    } else {
      entry = promise.get_future().share();
      entries_.emplace(key, entry);
      owner = true;
    }
  }
  if (owner) {
    try {
      DiskCache disk(dir_fn_());
      auto bytes = std::make_shared<Bytes>();
      if (disk.load(key, bytes.get())) {
        if (origin != nullptr) *origin = Origin::Disk;
      } else {
        *bytes = compile();
        if (origin != nullptr) *origin = Origin::Compiled;
        try {
          disk.store(key, *bytes);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(mutex_);
          last_store_error_ = e.what();
        }
      }
      promise.set_value(std::move(bytes));
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        entries_.erase(key);
      }
      promise.set_exception(std::current_exception());
    }
  }
  return entry.get();
}

void KernelCache::forget() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string KernelCache::last_store_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_store_error_;
}

KernelCache& kernel_cache() {
  static KernelCache* cache = new KernelCache([] { return cache_dir(); });  // never destroyed: no exit-order issue
  return *cache;
}

}  // namespace jit
}  // namespace fi4j
