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
 * open and their shapes unchanged. Replay, close and isOpen are safe to call from several threads (a close
 * racing a replay waits for its launch).
 */
public final class CudaGraph implements AutoCloseable {
  private final Device device;
  private final long exec;
  // the executable graph; its release destroys it and then drops the pins that keep the captured buffers allocated
  private final Native.Resource resource;

  private CudaGraph(Device device, long exec, Native.Resource resource) {
    this.device = device;
    this.exec = exec;
    this.resource = resource;
  }

  /**
   * Captures what {@code work} queues on {@code stream} (a created stream, not the default one). Work queued on
   * other streams of this thread during the capture is an error, as is anything that synchronises. The stream is
   * pinned for the whole capture: a concurrent close of it waits until the capture has ended.
   *
   * @param stream the stream to capture on (replay) or to replay on; not the default stream for a capture
   * @param work the calls to capture, all queued on stream
   * @return the captured graph, to replay on a stream of the same device
   */
  public static CudaGraph capture(Stream stream, Runnable work) {
    Checks.open(stream, "stream");
    Checks.notNull(work, "work");
    Device device = stream.device();
    if (device.isCpu()) {
      throw new UnsupportedConfigurationException("CUDA graphs need a CUDA device, got the CPU backend");
    }
    try (Native.Pins streamPins = new Native.Pins()) {
      Pointer s = stream.pointer(streamPins);
      Native.check(Fi4j.fi4j_graph_capture_begin(device.code(), s));
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
        int status = Fi4j.fi4j_graph_capture_end(device.code(), s, out);
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
        long exec = out.get(0).address();
        int code = device.code();
        Native.Resource resource;
        try {
          resource = Native.Resource.owning(() -> {
            try {
              Native.check(Fi4j.fi4j_graph_destroy(code, Native.pointer(exec)));
            } finally {
              retained.close();
            }
          }, "CudaGraph(" + device + ")");
        } catch (RuntimeException | Error e) {
          Fi4j.fi4j_graph_destroy(code, Native.pointer(exec));
          retained.close();
          throw e;
        }
        return new CudaGraph(device, exec, resource);
      }
    }
  }

  /**
   * Launches the captured work on {@code stream}. The graph and the stream are pinned for the launch: a concurrent
   * close waits for it (and later replays throw IllegalStateException).
   *
   * @param stream the stream to capture on (replay) or to replay on; not the default stream for a capture
   */
  public void replay(Stream stream) {
    checkOpen();
    Checks.open(stream, "stream");
    Checks.check(stream.device().equals(device), "stream.device", device.toString(), stream.device());
    try (Native.Pins pins = new Native.Pins()) {
      pins.add(resource);
      Native.check(Fi4j.fi4j_graph_launch(device.code(), Native.pointer(exec), stream.pointer(pins)));
    }
  }

  /**
   * The device the graph was captured on.
   *
   * @return the device the graph was captured on
   */
  public Device device() {
    return device;
  }

  /**
   * Whether the graph can still be replayed; safe to call from any thread.
   *
   * @return whether the graph can still be replayed
   */
  public boolean isOpen() {
    return !resource.isClosed();
  }

  private void checkOpen() {
    if (!isOpen()) {
      throw Checks.closed("CudaGraph");
    }
  }

  /**
   * Destroys the graph and releases the buffers it kept allocated; idempotent. A replay still launching waits for
   * it. A graph that is never closed is destroyed by a Cleaner once unreachable (with a WARNING log).
   */
  @Override
  public void close() {
    resource.close();
  }
}
