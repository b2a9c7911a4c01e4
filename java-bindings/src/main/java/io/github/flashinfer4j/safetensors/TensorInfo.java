package io.github.flashinfer4j.safetensors;

import java.util.Arrays;

/**
 * One tensor of a safetensors header: its name, type, shape and where its bytes lie. Immutable.
 */
public final class TensorInfo {
  private final String name;
  private final SafetensorsDType dtype;
  private final long[] shape;
  private final long begin;
  private final long end;
  private final long dataStart;

  TensorInfo(String name, SafetensorsDType dtype, long[] shape, long begin, long end, long dataStart) {
    this.name = name;
    this.dtype = dtype;
    this.shape = shape.clone();
    this.begin = begin;
    this.end = end;
    this.dataStart = dataStart;
  }

  /**
   * The tensor's name in the file.
   *
   * @return the tensor's name in the file
   */
  public String name() {
    return name;
  }

  /**
   * The stored dtype.
   *
   * @return the stored dtype
   */
  public SafetensorsDType dtype() {
    return dtype;
  }

  /**
   * The shape ({@code []} for a scalar).
   *
   * @return the shape ({@code []} for a scalar)
   */
  public long[] shape() {
    return shape.clone();
  }

  /**
   * Elements: the product of the shape (1 for a scalar, 0 when a dimension is 0).
   *
   * @return the number of elements (1 for a scalar, 0 when a dimension is 0)
   */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n *= d;  // validated against overflow when the header was read
    }
    return n;
  }

  /**
   * Bytes of data ({@code numel() * dtype().byteSize()}).
   *
   * @return bytes of data ({@code numel() * dtype().byteSize()})
   */
  public long byteSize() {
    return end - begin;
  }

  /**
   * {@code data_offsets}: the first byte, relative to the start of the data section after the header.
   *
   * @return the first byte, relative to the start of the data section
   */
  public long dataBegin() {
    return begin;
  }

  /**
   * {@code data_offsets}: one past the last byte, relative to the start of the data section.
   *
   * @return one past the last byte, relative to the start of the data section
   */
  public long dataEnd() {
    return end;
  }

  /**
   * Where the tensor's first byte lies in the file.
   *
   * @return where the tensor's first byte lies in the file
   */
  public long fileOffset() {
    return dataStart + begin;
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
