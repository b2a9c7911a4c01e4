package io.github.flashinfer4j.platform;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import org.junit.jupiter.api.Test;

/**
 * With the natives of all four architectures on the class path, the load picks the one the run asks for (an
 * explicit setting, or the compute capability a stand-in nvidia-smi reports) rather than JavaCPP's default, and
 * the loaded library works (CPU backend).
 */
class PlatformLoadTest {
  @Test
  void loadsTheChosenNatives() {
    assertEquals(System.getProperty("expect.classifier"), Device.nativeClassifier());
    try (Tensor t = Tensor.fromFloats(Device.cpu(), DType.F32, new float[] {1, 2, 3}, 3)) {
      assertArrayEquals(new float[] {1, 2, 3}, t.toFloatArray());
    }
  }
}
