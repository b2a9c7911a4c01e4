// Where a configuration of any op family runs: the CPU reference, an ahead-of-time (AOT) kernel, a run-time
// compiled (JIT) kernel, or nowhere. Each family decides its routes (e.g. attention/kernel_table.h); the type is
// shared, so that the C API (fi4j_kernel_route) and every family read the same values.
#pragma once

namespace fi4j {

enum class Route { Cpu = 0, Aot = 1, Jit = 2, Unsupported = 3 };

}  // namespace fi4j
