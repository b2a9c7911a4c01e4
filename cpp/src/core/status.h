// Status plumbing for the C API: a thread-local message and a small exception used inside the library so
// that checks read as one line each and every entry point converts failures into a status code.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <sstream>

#include "flashinfer4j/flashinfer4j.h"

namespace fi4j {

struct Error : std::runtime_error {
  int status;
  Error(int s, const std::string& msg) : std::runtime_error(msg), status(s) {}
};

/// Stores msg as this thread's last error and returns status.
int set_error(int status, const std::string& msg);
void clear_error();

/// Formats "name must be <expected>, got <actual>".
template <typename A>
[[noreturn]] void fail_arg(const std::string& name, const std::string& expected, const A& actual) {
  std::ostringstream os;
  os << name << " must be " << expected << ", got " << actual;
  throw Error(FI4J_ERR_INVALID_ARGUMENT, os.str());
}

inline void require(bool ok, const std::string& name, const std::string& expected, long long actual) {
  if (!ok) fail_arg(name, expected, actual);
}

/// Runs body and converts exceptions into the C status protocol.
template <typename F>
int guarded(F&& body) {
  try {
    clear_error();
    body();
    return FI4J_OK;
  } catch (const Error& e) {
    return set_error(e.status, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(FI4J_ERR_OUT_OF_MEMORY, "host allocation failed");
  } catch (const std::exception& e) {
    return set_error(FI4J_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(FI4J_ERR_INTERNAL, "internal error: unknown exception");
  }
}

/// Registry checks (api.cpp). When ptr lies inside an fi4j_malloc allocation, that allocation must be on `device`
/// (argument name device_arg) and hold `bytes` bytes from ptr on; otherwise throws INVALID_ARGUMENT. Pointers the
/// library did not allocate pass unchecked (the caller's word).
void check_range(int device, const char* device_arg, const void* ptr, const char* name, int64_t bytes);
/// A stream made by fi4j_stream_create must belong to `device`; the default stream (null), the CPU backend and
/// streams of other libraries pass. Call before queuing work on a caller's stream.
void check_stream(int device, void* stream);

/// Element size in bytes of a fi4j_dtype, or 0 for an unknown value.
int dtype_size(int dtype);
const char* dtype_name(int dtype);

}  // namespace fi4j
