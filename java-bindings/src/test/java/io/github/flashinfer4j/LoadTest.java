package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.lowlevel.Fi4j;
import io.github.flashinfer4j.testing.Gpu;
import org.junit.jupiter.api.Test;

class LoadTest {
  @Test
  void loadsAndReportsDevicesCleanly() {
    int count = Device.cudaDeviceCount();
    assertEquals(count, Device.cudaDeviceCount(), "the device count is the same on every call");
    if (Boolean.getBoolean("flashinfer4j.requireGpu")) {
      assertTrue(count > 0, "flashinfer4j.requireGpu=true but " + Device.noCudaDeviceReason());
    }
    assertEquals(100, Fi4j.fi4j_version());
    assertTrue(Fi4j.fi4j_cuda_runtime_version() >= 12000, "built against CUDA 12 or later");
    if (count == 0) {
      assertTrue(Device.noCudaDeviceReason().startsWith("no CUDA device"), Device.noCudaDeviceReason());
      NoCudaDeviceException e = assertThrows(NoCudaDeviceException.class, () -> Device.cuda(0));
      assertTrue(e.getMessage().contains("no CUDA device"), e.getMessage());
      assertEquals(Device.cpu(), Device.best());
      assertThrows(NoCudaDeviceException.class, () -> Tensor.empty(cudaIndexZero(), DType.F16, 4));
    } else {
      assertEquals("", Device.noCudaDeviceReason(), "no reason without a device when there is one");
      Device d = Device.cuda(0);
      assertTrue(Device.best().isCuda() && Device.best().index() == 0, "best() is CUDA device 0: " + Device.best());
      assertTrue(d.computeCapability() >= 80, "compute capability " + d.computeCapability());
      assertTrue(d.totalMemory() > 0);
      assertTrue(!d.name().isEmpty());
      assertThrows(InvalidArgumentException.class, () -> Device.cuda(count));
    }
  }

  /** A CUDA device handle made without the existence check, to reach the native no-device path. */
  private static Device cudaIndexZero() {
    try {
      java.lang.reflect.Constructor<Device> c = Device.class.getDeclaredConstructor(int.class);
      c.setAccessible(true);
      return c.newInstance(0);
    } catch (ReflectiveOperationException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void cpuDeviceProperties() {
    Device cpu = Device.cpu();
    assertTrue(cpu.isCpu());
    assertEquals(-1, cpu.index());
    assertEquals("cpu", cpu.toString());
    assertEquals(0, cpu.computeCapability());
    cpu.synchronize();
    try (Stream s = Stream.create(cpu)) {
      s.synchronize();
      assertEquals(0, s.handle());
    }
  }

  @Test
  void gpuStreamLifecycle() {
    org.junit.jupiter.api.Assumptions.assumeTrue(Gpu.available(), "no CUDA device");
    try (Stream s = Stream.create(Device.cuda(0))) {
      assertTrue(s.handle() != 0);
      s.synchronize();
    }
  }
}
