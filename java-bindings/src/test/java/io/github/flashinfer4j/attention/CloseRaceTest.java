package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.CudaEvent;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.testing.Gpu;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Close racing with use, for each native call that used to pass a pointer without pinning it: a prefill plan()
 * (the workspace and the stream), a run of a prefill plan against the plan's close, SinglePrefill's capture check
 * (the stream; CUDA), CudaGraph capture and replay (the stream, the graph; CUDA) and CudaEvent record and elapsed
 * time (CUDA). The racing use must complete or throw IllegalStateException, never anything else and never crash,
 * and nothing may leak.
 */
class CloseRaceTest {
  private static final int QO_HEADS = 4;
  private static final int KV_HEADS = 2;
  private static final int DIM = 64;
  private static final DType DTYPE = DType.F16;

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** Runs {@code use} in a loop on another thread until it throws, closes {@code victim} meanwhile, and checks. */
  private static void race(Random rnd, Runnable use, AutoCloseable victim) throws Exception {
    AtomicReference<Throwable> unexpected = new AtomicReference<>();
    Thread user = new Thread(() -> {
      try {
        while (true) {
          use.run();
        }
      } catch (IllegalStateException expected) {
        // the closed handle refused use: the right outcome; any other IllegalStateException is a failure
        if (!String.valueOf(expected.getMessage()).contains("is closed")) {
          unexpected.set(expected);
        }
      } catch (Throwable t) {
        unexpected.set(t);
      }
    });
    user.start();
    Thread.sleep(0, rnd.nextInt(300_000));
    victim.close();
    user.join(60_000);
    assertTrue(!user.isAlive(), "user thread finished");
    if (unexpected.get() != null) {
      fail("a racing close gave " + unexpected.get(), unexpected.get());
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void prefillPlanAgainstWorkspaceAndStreamClose(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    Random rnd = new Random(1);
    int iterations = device.isCpu() ? 200 : 40;
    int[] qo = {0, 3, 5};
    int[] kv = {0, 700, 1900};
    for (int i = 0; i < iterations; i++) {
      Tensor workspace = Tensor.empty(device, DType.U8, device.isCuda() ? 32L << 20 : 256);
      Stream stream = Stream.create(device);
      BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(device, KvLayout.NHD, workspace);
      race(rnd, () -> ragged.plan(qo, kv, QO_HEADS, KV_HEADS, DIM, DTYPE, AttentionMask.causal(),
          AttentionOptions.defaults(), stream).close(), i % 2 == 0 ? workspace : stream);
      ragged.close();
      workspace.close();
      stream.close();
    }
    assertArrayEquals(before, Native.memoryStats(device), "every allocation freed exactly once");
  }

  @ParameterizedTest
  @MethodSource("devices")
  void prefillRunAgainstPlanClose(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    Random rnd = new Random(2);
    int iterations = device.isCpu() ? 200 : 40;
    try (Tensor q = Tensor.zeros(device, DTYPE, 5, QO_HEADS, DIM);
        Tensor k = Tensor.zeros(device, DTYPE, 9, KV_HEADS, DIM);
        Tensor out = Tensor.empty(device, DTYPE, 5, QO_HEADS, DIM);
        Stream stream = Stream.create(device);
        BatchPrefillWithRaggedKvCache ragged = new BatchPrefillWithRaggedKvCache(device)) {
      boolean[] mask = new boolean[3 * 4 + 2 * 5];
      for (int i = 0; i < mask.length; i++) {
        mask[i] = i % 3 != 0;
      }
      for (int i = 0; i < iterations; i++) {
        PrefillPlan plan = ragged.plan(new int[] {0, 3, 5}, new int[] {0, 4, 9}, QO_HEADS, KV_HEADS, DIM, DTYPE,
            i % 2 == 0 ? AttentionMask.causal() : AttentionMask.custom(mask), AttentionOptions.defaults(), stream);
        race(rnd, () -> {
          ragged.run(plan, q, k, k, out, null, stream);
          stream.synchronize();
        }, plan);
      }
    }
    assertArrayEquals(before, Native.memoryStats(device), "every plan freed exactly once");
  }

  @ParameterizedTest
  @MethodSource("devices")
  void singlePrefillCaptureCheckAgainstStreamClose(Device device) throws Exception {
    long[] before = Native.memoryStats(device);
    Random rnd = new Random(3);
    int iterations = device.isCpu() ? 100 : 30;
    boolean[] mask = new boolean[3 * 4];
    mask[0] = true;
    try (Tensor q = Tensor.zeros(device, DTYPE, 3, QO_HEADS, DIM);
        Tensor k = Tensor.zeros(device, DTYPE, 4, KV_HEADS, DIM);
        Tensor out = Tensor.empty(device, DTYPE, 3, QO_HEADS, DIM)) {
      for (int i = 0; i < iterations; i++) {
        Stream stream = Stream.create(device);
        race(rnd, () -> SinglePrefill.run(q, k, k, out, null, KvLayout.NHD, AttentionMask.custom(mask),
            AttentionOptions.defaults(), stream), stream);
      }
    }
    assertArrayEquals(before, Native.memoryStats(device), "nothing leaked");
  }

  @ParameterizedTest
  @MethodSource("devices")
  void graphAndEventAgainstClose(Device device) throws Exception {
    if (device.isCpu()) {
      return;  // CUDA graphs and events need a CUDA device
    }
    long[] before = Native.memoryStats(device);
    Random rnd = new Random(4);
    try (Tensor t = Tensor.zeros(device, DType.F32, 1 << 12)) {
      for (int i = 0; i < 30; i++) {
        // capture (begin/end pin the stream) against the stream's close
        Stream s1 = Stream.create(device);
        race(rnd, () -> CudaGraph.capture(s1, () -> t.fillUniform(1, 1f, s1)).close(), s1);
        // replay (pins the graph and the stream) against the graph's close, then the stream's
        try (Stream s2 = Stream.create(device)) {
          CudaGraph g = CudaGraph.capture(s2, () -> t.fillUniform(2, 1f, s2));
          race(rnd, () -> g.replay(s2), g);
          CudaGraph g2 = CudaGraph.capture(s2, () -> t.fillUniform(3, 1f, s2));
          Stream s3 = Stream.create(device);
          race(rnd, () -> g2.replay(s3), s3);
          g2.close();
          s2.synchronize();
        }
        // event record and elapsed time against the event's close
        try (Stream s4 = Stream.create(device); CudaEvent start = CudaEvent.create(device)) {
          CudaEvent end = CudaEvent.create(device);
          race(rnd, () -> {
            start.record(s4);
            end.record(s4);
            end.elapsedMillisSince(start);
          }, end);
        }
      }
    }
    assertArrayEquals(before, Native.memoryStats(device), "nothing leaked");
  }
}
