package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.Objects;

/**
 * Where tensors live and ops run: the CPU reference backend or one CUDA device. An immutable value, safe to share
 * between threads; the CUDA properties are read when asked for. Only {@link #cuda(int)} and {@link #best()} make
 * CUDA devices, so a Device always names a device that exists. Ops compare devices and refuse a tensor, cache,
 * page table or stream of another device than the op's with {@link InvalidArgumentException}.
 */
public final class Device {
  private static final Device CPU = new Device(Native.CPU);

  private final int index;

  private Device(int index) {
    this.index = index;
  }

  /**
   * The CPU reference backend (plain C++, runs anywhere, the oracle of the GPU tests).
   *
   * @return the CPU reference backend (plain C++, runs anywhere, the oracle of the GPU tests)
   */
  public static Device cpu() {
    return CPU;
  }

  /**
   * CUDA device {@code index}; throws {@link NoCudaDeviceException} when it does not exist.
   *
   * @param index the CUDA device index, as CUDA numbers them (honouring CUDA_VISIBLE_DEVICES)
   * @return CUDA device {@code index}
   */
  public static Device cuda(int index) {
    int count = cudaDeviceCount();
    if (count == 0) {
      throw new NoCudaDeviceException(noCudaDeviceReason());
    }
    if (index < 0 || index >= count) {
      throw InvalidArgumentException.of("index", "in [0, " + count + ")", index);
    }
    return new Device(index);
  }

  /**
   * Number of usable CUDA devices; 0 on a machine without a driver or device.
   *
   * @return number of usable CUDA devices; 0 without a driver or device
   */
  public static int cudaDeviceCount() {
    Native.ensureLoaded();
    int[] count = new int[1];
    Native.check(Fi4j.fi4j_device_count(count));
    return count[0];
  }

  /**
   * Why no CUDA device is usable, or "" when one is.
   *
   * @return why no CUDA device is usable, or "" when one is
   */
  public static String noCudaDeviceReason() {
    Native.ensureLoaded();
    return Fi4j.fi4j_no_device_reason().getString();
  }

  /**
   * The classifier of the natives jar in use, e.g. {@code "linux-x86_64-sm90"}. With several on the class path
   * (flashinfer4j-platform) it is the one chosen for the GPU: the system property {@code flashinfer4j.arch} or the
   * environment variable {@code FLASHINFER4J_ARCH} (sm80, sm89, sm90, sm100) when set, else the newest build that
   * runs on the first visible GPU's compute capability (nvidia-smi), else JavaCPP's pick.
   *
   * @return the classifier of the natives jar in use, e.g. {@code "linux-x86_64-sm90"}
   */
  public static String nativeClassifier() {
    return Native.loadedClassifier();
  }

  /**
   * CUDA device 0 when there is one, else the CPU backend.
   *
   * @return CUDA device 0 when there is one, else the CPU backend
   */
  public static Device best() {
    return cudaDeviceCount() > 0 ? new Device(0) : CPU;
  }

  /**
   * Whether this is a CUDA device.
   *
   * @return whether this is a CUDA device
   */
  public boolean isCuda() {
    return index >= 0;
  }

  /**
   * Whether this is the CPU reference backend.
   *
   * @return whether this is the CPU reference backend
   */
  public boolean isCpu() {
    return index < 0;
  }

  /**
   * CUDA ordinal, or -1 for the CPU.
   *
   * @return CUDA ordinal, or -1 for the CPU
   */
  public int index() {
    return index;
  }

  /**
   * The device's name ("CPU reference" for the CPU backend).
   *
   * @return the device's name ("CPU reference" for the CPU backend)
   */
  public String name() {
    return isCpu() ? "CPU reference" : info().name().getString();
  }

  /**
   * Compute capability as major*10+minor (e.g. 90 for an H100); 0 for the CPU.
   *
   * @return compute capability as major*10+minor (e.g. 90 for an H100)
   */
  public int computeCapability() {
    if (isCpu()) {
      return 0;
    }
    try (Fi4j.fi4j_device_info info = info()) {
      return info.major() * 10 + info.minor();
    }
  }

  /**
   * Multiprocessor count; 0 for the CPU.
   *
   * @return multiprocessor count; 0 for the CPU
   */
  public int multiprocessorCount() {
    if (isCpu()) {
      return 0;
    }
    try (Fi4j.fi4j_device_info info = info()) {
      return info.multiprocessor_count();
    }
  }

  /**
   * Total device memory in bytes; 0 for the CPU.
   *
   * @return total device memory in bytes; 0 for the CPU
   */
  public long totalMemory() {
    if (isCpu()) {
      return 0;
    }
    try (Fi4j.fi4j_device_info info = info()) {
      return info.total_memory();
    }
  }

  /** Blocks until all work queued on this device has finished. */
  public void synchronize() {
    Native.ensureLoaded();
    Native.check(Fi4j.fi4j_device_synchronize(index));
  }

  int code() {
    return index;
  }

  private Fi4j.fi4j_device_info info() {
    Native.ensureLoaded();
    Fi4j.fi4j_device_info info = new Fi4j.fi4j_device_info();
    int status = Fi4j.fi4j_get_device_info(index, info);
    if (status != Fi4j.FI4J_OK) {
      info.close();
      Native.check(status);
    }
    return info;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Device && ((Device) o).index == index;
  }

  @Override
  public int hashCode() {
    return Objects.hashCode(index);
  }

  @Override
  public String toString() {
    return isCpu() ? "cpu" : "cuda:" + index;
  }
}
