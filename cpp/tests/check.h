// The check macro and pass/fail counters shared by the host test programs (host_tests.cpp, jit_tests.cpp): CHECK
// counts a passed or failed condition and prints the failing expression with its place; each program reports the
// counters at its end.
#pragma once

#include <cstdio>

inline int g_failed = 0;
inline int g_passed = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      ++g_passed;                                                          \
    } else {                                                               \
      ++g_failed;                                                          \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                      \
  } while (0)
