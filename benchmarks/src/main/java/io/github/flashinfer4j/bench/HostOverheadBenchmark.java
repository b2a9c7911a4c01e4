package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Host-side cost of the decode API (JMH): building a page table for 256 requests, planning, and a run() whose
 * kernel work is nil (every request empty), so that what is measured is validation plus the native call.
 * Runs on the CPU backend anywhere and on CUDA with {@code -p device=cuda}. Two fixed references measured in the
 * same run separate the machine from the code: {@link #jniCall} (one JNI call that does nothing) and
 * {@link #launchOneElementFill} (the smallest public operation that launches a kernel: a one-element fill).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class HostOverheadBenchmark {
  @Param({"cpu"})
  public String device;

  private Device dev;
  private int[] indptr;
  private int[] indices;
  private int[] last;
  private int[] emptyIndptr;
  private PageTable table;
  private PageTable emptyTable;
  private PagedKvCache cache;
  private Tensor q;
  private Tensor out;
  private BatchDecodeWithPagedKvCache decode;
  private BatchDecodeWithPagedKvCache decodeEmpty;
  private BatchDecodeWithPagedKvCache decodeOne;
  private PageTable oneTable;
  private Tensor qOne;
  private Tensor outOne;
  private Tensor oneElement;

  @Setup(Level.Trial)
  public void setUp() {
    dev = device.equals("cuda") ? Device.cuda(0) : Device.cpu();
    int batch = 256;
    indptr = new int[batch + 1];
    last = new int[batch];
    for (int b = 0; b < batch; b++) {
      indptr[b + 1] = indptr[b] + 1 + b % 64;  // 1..64 pages of 16 tokens
      last[b] = 1 + b % 16;
    }
    indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = i;
    }
    emptyIndptr = new int[batch + 1];
    table = PageTable.of(dev, 16, indptr, indices, last);
    emptyTable = PageTable.of(dev, 16, emptyIndptr, new int[0], new int[batch]);
    cache = PagedKvCache.allocate(dev, DType.BF16, KvLayout.NHD, 16, 16, 8, 128);
    q = Tensor.zeros(dev, DType.BF16, batch, 32, 128);
    out = Tensor.empty(dev, DType.BF16, batch, 32, 128);
    decode = new BatchDecodeWithPagedKvCache(dev);
    decodeEmpty = new BatchDecodeWithPagedKvCache(dev);
    decodeEmpty.plan(emptyTable, 32, 8, 128, 16, DType.BF16);
    oneTable = PageTable.of(dev, 16, new int[] {0, 0}, new int[0], new int[1]);
    qOne = Tensor.zeros(dev, DType.BF16, 1, 32, 128);
    outOne = Tensor.empty(dev, DType.BF16, 1, 32, 128);
    decodeOne = new BatchDecodeWithPagedKvCache(dev);
    decodeOne.plan(oneTable, 32, 8, 128, 16, DType.BF16);
    oneElement = Tensor.empty(dev, DType.BF16, 1);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    decode.close();
    decodeEmpty.close();
    decodeOne.close();
    oneElement.close();
    outOne.close();
    qOne.close();
    oneTable.close();
    out.close();
    q.close();
    cache.close();
    emptyTable.close();
    table.close();
  }

  /** Validating and uploading a 256-request page table (8,320 pages). */
  @Benchmark
  public PageTable pageTable256() {
    try (PageTable t = PageTable.of(dev, 16, indptr, indices, last)) {
      return t;
    }
  }

  /** plan() for 256 requests. */
  @Benchmark
  public BatchDecodeWithPagedKvCache plan256() {
    decode.plan(table, 32, 8, 128, 16, DType.BF16);
    return decode;
  }

  /**
   * run() of 256 empty requests: argument checks, descriptor fill, JNI call and a launch of 256 x 8 blocks that
   * exit at once; on CUDA this is bounded by the GPU's block throughput, not by the host.
   */
  @Benchmark
  public BatchDecodeWithPagedKvCache runEmptyBatch256() {
    decodeEmpty.run(q, cache, out, null);
    return decodeEmpty;
  }

  /** run() from Java to the launch for one empty request (8 blocks): the host overhead of a call. */
  @Benchmark
  public BatchDecodeWithPagedKvCache runOneEmptyRequest() {
    decodeOne.run(qOne, cache, outOne, null);
    return decodeOne;
  }

  /**
   * Reference: one JNI call into the native library that does no work (its version number), through the public
   * {@link Flashinfer4j#nativeVersion()}, which adds only the check that the natives are loaded.
   */
  @Benchmark
  public int jniCall() {
    return Flashinfer4j.nativeVersion();
  }

  /**
   * Reference: the lightest public call that launches a kernel (fill one element): argument checks, one JNI call
   * and one launch. runOneEmptyRequest minus this is what decode's own checks and descriptor cost.
   */
  @Benchmark
  public Tensor launchOneElementFill() {
    oneElement.fillUniform(1, 1f, null);
    return oneElement;
  }
}
