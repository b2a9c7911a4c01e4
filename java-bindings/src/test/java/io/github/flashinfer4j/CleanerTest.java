package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.testing.Gpu;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Native memory that a program forgot to close is released by the Cleaner, which logs what leaked, once per
 * object; memory still reachable through a view is never released; close is idempotent and views never free.
 */
class CleanerTest {
  private static final long WAIT_MS = 20_000;

  // a strong reference: java.util.logging holds loggers weakly
  private final Logger julLogger = Logger.getLogger("io.github.flashinfer4j");
  private final List<String> warnings = new CopyOnWriteArrayList<>();
  private final Handler handler = new Handler() {
    @Override
    public void publish(LogRecord record) {
      if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
        warnings.add(record.getMessage());
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };

  static List<Device> devices() {
    return Gpu.devices();
  }

  @BeforeEach
  void listen() {
    julLogger.addHandler(handler);
  }

  @AfterEach
  void stopListening() {
    julLogger.removeHandler(handler);
  }

  /** System.gc() until the condition holds; false after WAIT_MS. */
  private static boolean gcUntil(BooleanSupplier condition) {
    long deadline = System.currentTimeMillis() + WAIT_MS;
    while (System.currentTimeMillis() < deadline) {
      System.gc();
      if (condition.getAsBoolean()) {
        return true;
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return condition.getAsBoolean();
  }

  /** Allocates without keeping a reference (a separate frame, so nothing on this stack holds it). */
  private static void leakTensors(Device device, int n) {
    for (int i = 0; i < n; i++) {
      Tensor t = Tensor.empty(device, DType.F16, 3, 5 + i);
      t.fillBytes(0);
    }
  }

  private static void leakPageTableCacheAndStream(Device device) {
    PageTable.contiguous(device, 16, new int[] {7, 40});
    PagedKvCache.allocate(device, DType.BF16, KvLayout.HND, 4, 16, 2, 64);
    Stream.create(device).synchronize();
  }

  @ParameterizedTest
  @MethodSource("devices")
  void forgottenTensorsAreReleasedAndLogged(Device device) {
    long[] before = Native.memoryStats(device);
    long releases = Native.cleanerReleases();
    leakTensors(device, 5);
    assertTrue(gcUntil(() -> Native.memoryStats(device)[0] == before[0]),
        "the Cleaner should free 5 forgotten tensors within " + WAIT_MS + " ms; live allocations "
            + Native.memoryStats(device)[0] + " vs " + before[0]);
    assertArrayEquals(before, Native.memoryStats(device));
    assertTrue(Native.cleanerReleases() - releases >= 5);
    assertTrue(gcUntil(() -> countLeakWarnings("Tensor(F16, [3, ") >= 5), "warnings: " + warnings);
    String w = warnings.stream().filter(m -> m.contains("Tensor(F16, [3, 5], " + device + ", 30 bytes)"))
        .findFirst().orElse(null);
    assertTrue(w != null, "a warning names dtype, shape, device and bytes: " + warnings);
    assertTrue(w.contains("was not closed"), w);
    assertEquals(1, countLeakWarnings("Tensor(F16, [3, 5], " + device + ","), "logged once per object: " + warnings);
  }

  @ParameterizedTest
  @MethodSource("devices")
  void forgottenPageTablesCachesAndStreamsAreReleased(Device device) {
    long[] before = Native.memoryStats(device);
    leakPageTableCacheAndStream(device);
    assertTrue(gcUntil(() -> java.util.Arrays.equals(Native.memoryStats(device), before)),
        "live allocations/bytes/streams " + java.util.Arrays.toString(Native.memoryStats(device)) + " vs "
            + java.util.Arrays.toString(before));
    assertTrue(gcUntil(() -> countLeakWarnings("PageTable(I32") >= 1 && countLeakWarnings("PagedKvCache(BF16") >= 1),
        "warnings: " + warnings);
    if (device.isCuda()) {
      assertTrue(gcUntil(() -> countLeakWarnings("Stream(" + device + ")") >= 1), "warnings: " + warnings);
    }
  }

  @Test
  void aViewKeepsItsMemoryAlive() {
    Device cpu = Device.cpu();
    long[] before = Native.memoryStats(cpu);
    Tensor view = viewOfForgottenTensor(cpu);
    // the tensor itself is unreachable, its view is not: nothing may be freed
    for (int i = 0; i < 5; i++) {
      System.gc();
    }
    assertEquals(before[0] + 1, Native.memoryStats(cpu)[0]);
    assertArrayEquals(new float[] {3, 4, 5}, view.toFloatArray());
    assertTrue(view.isOpen());
    view = null;
    assertTrue(gcUntil(() -> Native.memoryStats(cpu)[0] == before[0]), "freed once the view is unreachable too");
  }

  private static Tensor viewOfForgottenTensor(Device device) {
    Tensor t = Tensor.fromFloats(device, DType.F32, new float[] {0, 1, 2, 3, 4, 5}, 2, 3);
    return t.select(0, 1);
  }

  @Test
  void closeIsIdempotentAndViewsNeverFree() {
    Device cpu = Device.cpu();
    long[] before = Native.memoryStats(cpu);
    long releases = Native.cleanerReleases();
    Tensor t = Tensor.fromFloats(cpu, DType.F32, new float[] {1, 2, 3, 4}, 2, 2);
    Tensor row = t.select(0, 1);
    row.close();
    row.close();
    assertThrows(IllegalStateException.class, row::toFloatArray, "a closed view refuses use");
    assertArrayEquals(new float[] {1, 2, 3, 4}, t.toFloatArray(), "closing a view frees nothing");
    Tensor other = t.select(0, 0);
    t.close();
    t.close();
    assertEquals(before[0], Native.memoryStats(cpu)[0]);
    assertThrows(IllegalStateException.class, other::toFloatArray);
    // a closed tensor is not a leak: the Cleaner has nothing to do for it
    t = null;
    other = null;
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    assertEquals(releases, Native.cleanerReleases(), "closed tensors are never released again");

    PageTable table = PageTable.contiguous(cpu, 4, new int[] {3});
    table.close();
    table.close();
    PagedKvCache cache = PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 2, 4, 1, 8);
    cache.close();
    cache.close();
    assertFalse(cache.isOpen());
    Stream s = Stream.create(cpu);
    s.close();
    s.close();
    assertThrows(IllegalStateException.class, s::synchronize);
    assertEquals(before[0], Native.memoryStats(cpu)[0]);
  }

  @Test
  void closeWhileInUseDefersTheFree() {
    Device cpu = Device.cpu();
    long[] before = Native.memoryStats(cpu);
    Tensor t = Tensor.zeros(cpu, DType.F32, 4);
    List<Tensor> keep = new ArrayList<>();
    keep.add(t);
    try (Native.Pins pins = new Native.Pins()) {
      t.pointer(pins);
      t.close();  // another thread's close, while a native call holds the memory
      assertFalse(t.isOpen());
      assertEquals(before[0] + 1, Native.memoryStats(cpu)[0], "not freed under a running call");
      assertThrows(IllegalStateException.class, () -> t.pointer(pins), "no new use after close");
    }
    assertEquals(before[0], Native.memoryStats(cpu)[0], "freed when the call returns");
    assertEquals(1, keep.size());
  }

  private long countLeakWarnings(String fragment) {
    return warnings.stream().filter(m -> m.contains(fragment) && m.contains("was not closed")).count();
  }
}
