package io.github.flashinfer4j;

import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * A captured sequence of flashinfer4j calls on a stream, replayed with one launch. Capture records the kernels
 * with their arguments (pointers and sizes) as they are at capture time: replays read whatever those buffers hold
 * then, so new inputs are written into the same tensors before a replay. A
 * {@link io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache} made with
 * {@link io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache#forCudaGraph} keeps its page table and work
 * list in fixed buffers, so one captured graph replays for any page table of its batch size after a new
 * {@code plan()}. The prefill wrappers' {@code run}
 * ({@link io.github.flashinfer4j.attention.BatchPrefillWithPagedKvCache},
 * {@link io.github.flashinfer4j.attention.BatchPrefillWithRaggedKvCache}) is capturable too, for the batch it was
 * planned for: their graph is valid until the wrapper's next {@code plan()};
 * {@link io.github.flashinfer4j.attention.SinglePrefill} is capturable without a custom mask.
 *
 * <p>Replays skip every host-side check: the checks ran once, at capture; the caller keeps the captured tensors
 * open and their shapes unchanged. Use from one thread at a time.
 */
public final class CudaGraph implements AutoCloseable {
  private final Device device;
  private final long exec;
  private final Native.Pins retained;  // every buffer the captured work uses stays allocated while the graph exists
  private boolean closed;

  private CudaGraph(Device device, long exec, Native.Pins retained) {
    this.device = device;
    this.exec = exec;
    this.retained = retained;
  }

  /**
   * Captures what {@code work} queues on {@code stream} (a created stream, not the default one). Work queued on
   * other streams of this thread during the capture is an error, as is anything that synchronises.
   */
  public static CudaGraph capture(Stream stream, Runnable work) {
    Checks.notNull(stream, "stream");
    Checks.notNull(work, "work");
    Device device = stream.device();
    if (device.isCpu()) {
      throw new UnsupportedConfigurationException("CUDA graphs need a CUDA device, got the CPU backend");
    }
    Native.check(Fi4j.fi4j_graph_capture_begin(device.code(), stream.pointer()));
    RuntimeException failure = null;
    Native.Pins retained = Native.Pins.beginRetention();
    try {
      work.run();
    } catch (RuntimeException e) {
      failure = e;
    } finally {
      Native.Pins.endRetention();
    }
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      int status = Fi4j.fi4j_graph_capture_end(device.code(), stream.pointer(), out);
      if (failure != null) {
        if (status == Fi4j.FI4J_OK) {
          Fi4j.fi4j_graph_destroy(device.code(), out.get(0));
        }
        retained.close();
        throw failure;
      }
      if (status != Fi4j.FI4J_OK) {
        retained.close();
        Native.check(status);
      }
      return new CudaGraph(device, out.get(0).address(), retained);
    }
  }

  /** Launches the captured work on {@code stream}. */
  public void replay(Stream stream) {
    if (closed) {
      throw new IllegalStateException("CUDA graph is closed");
    }
    Checks.notNull(stream, "stream");
    Checks.check(stream.device().equals(device), "stream.device", device.toString(), stream.device());
    Native.check(Fi4j.fi4j_graph_launch(device.code(), Native.pointer(exec), stream.pointer()));
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      try {
        Native.check(Fi4j.fi4j_graph_destroy(device.code(), Native.pointer(exec)));
      } finally {
        retained.close();
      }
    }
  }
}
