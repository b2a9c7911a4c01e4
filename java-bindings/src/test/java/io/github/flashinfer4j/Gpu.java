package io.github.flashinfer4j;

import java.util.ArrayList;
import java.util.List;

/**
 * GPU availability for tests: GPU tests are skipped without a device, and fail instead when
 * {@code -Dflashinfer4j.requireGpu=true} (the GPU machine's bundle sets it, so a broken driver cannot pass
 * silently).
 */
public final class Gpu {
  private Gpu() {}

  public static boolean available() {
    int count = Device.cudaDeviceCount();
    if (count == 0 && Boolean.getBoolean("flashinfer4j.requireGpu")) {
      throw new IllegalStateException("flashinfer4j.requireGpu=true but " + Device.noCudaDeviceReason());
    }
    return count > 0;
  }

  /** The CPU backend, plus CUDA device 0 when present. */
  public static List<Device> devices() {
    List<Device> d = new ArrayList<>();
    d.add(Device.cpu());
    if (available()) {
      d.add(Device.cuda(0));
    }
    return d;
  }
}
