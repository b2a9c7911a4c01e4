// The device headers of cuda/include/fi4j, embedded in the library at build time (CMake generates
// jit_headers.cpp from cmake/embed_headers.cmake), so that run-time compilation needs no source files on disk:
// NVRTC gets them as in-memory headers under their include names ("fi4j/attention/decode.cuh").
#pragma once

#include <cstddef>

namespace fi4j {
namespace jit {

struct EmbeddedHeader {
  const char* name;  // include name, e.g. "fi4j/attention/decode.cuh"
  const char* text;
};

extern const EmbeddedHeader kEmbeddedHeaders[];
extern const size_t kNumEmbeddedHeaders;

}  // namespace jit
}  // namespace fi4j
