package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import java.util.Arrays;

/**
 * Argument checks shared by the ops; each failure names the argument, the expectation and the value
 * ("name must be expected, got actual"). These run on the host before every launch; a CUDA-graph replay runs no
 * host code and therefore none of them.
 */
public final class Checks {
  private Checks() {}

  public static void check(boolean ok, String name, String expected, Object actual) {
    if (!ok) {
      throw InvalidArgumentException.of(name, expected, actual);
    }
  }

  public static <T> T notNull(T value, String name) {
    if (value == null) {
      throw InvalidArgumentException.of(name, "non-null", "null");
    }
    return value;
  }

  /**
   * A required tensor argument: non-null ({@link InvalidArgumentException} "name must be non-null, got null") and
   * open ({@link IllegalStateException} "name is closed: ...").
   */
  public static void open(Tensor t, String name) {
    notNull(t, name);
    if (!t.isOpen()) {
      throw closed(name, t);
    }
  }

  /** A required stream argument: non-null and open. */
  public static void open(Stream s, String name) {
    notNull(s, name);
    if (!s.isOpen()) {
      throw closed(name, s);
    }
  }

  /** A required paged KV cache argument: non-null and open (it and the tensors it views). */
  public static void open(PagedKvCache c, String name) {
    notNull(c, name);
    if (!c.isOpen()) {
      throw closed(name, c);
    }
  }

  /** A required page table argument: non-null and open. */
  public static void open(PageTable t, String name) {
    notNull(t, name);
    if (!t.isOpen()) {
      throw closed(name, t);
    }
  }

  /**
   * The closed-handle policy: a closed argument is an IllegalStateException "name is closed: handle"; a method of
   * a closed handle itself throws "Class is closed" ({@link #closed(String)}).
   */
  public static IllegalStateException closed(String name, Object handle) {
    return new IllegalStateException(name + " is closed: " + handle);
  }

  /** The exception a method of a closed handle throws: "Class is closed". */
  public static IllegalStateException closed(String className) {
    return new IllegalStateException(className + " is closed");
  }

  public static void dtype(Tensor t, String name, DType expected) {
    check(t.dtype() == expected, name + ".dtype", expected.toString(), t.dtype());
  }

  public static void device(Tensor t, String name, Device expected) {
    check(t.device().equals(expected), name + ".device", expected.toString(), t.device());
  }

  public static void shape(Tensor t, String name, long... expected) {
    check(Arrays.equals(t.shape(), expected), name + ".shape", Arrays.toString(expected), Arrays.toString(t.shape()));
  }

  /**
   * An operand of a launch: open, of {@code dtype}, on {@code device}, of {@code shape}, last dimension contiguous
   * (checked in that order).
   */
  public static void tensor(Tensor t, String name, DType dtype, Device device, long... shape) {
    open(t, name);
    dtype(t, name, dtype);
    device(t, name, device);
    shape(t, name, shape);
    lastDimContiguous(t, name);
  }

  /** Last dimension contiguous, as every kernel assumes. */
  public static void lastDimContiguous(Tensor t, String name) {
    if (t.dim() > 0 && t.size(t.dim() - 1) > 1) {
      check(t.stride(t.dim() - 1) == 1, name + ".stride(" + (t.dim() - 1) + ")", "1 (last dim contiguous)",
          t.stride(t.dim() - 1));
    }
  }

  /** A caller-owned workspace of a batch wrapper: open, U8, on {@code device}, contiguous. Returns it. */
  public static Tensor workspace(Tensor workspace, Device device) {
    open(workspace, "workspace");
    dtype(workspace, "workspace", DType.U8);
    device(workspace, "workspace", device);
    check(workspace.isContiguous(), "workspace", "contiguous", "strides " + Arrays.toString(workspace.strides()));
    return workspace;
  }

  /** An optional LSE output: null, or open, F32, on {@code device}, of {@code shape}, contiguous. */
  public static void lse(Tensor lse, Device device, long... shape) {
    if (lse != null) {
      open(lse, "lse");
      dtype(lse, "lse", DType.F32);
      device(lse, "lse", device);
      shape(lse, "lse", shape);
      check(lse.isContiguous(), "lse", "contiguous", "strides " + Arrays.toString(lse.strides()));
    }
  }

  /** An optional stream: null (the default stream) or an open one of {@code device}. */
  public static void stream(Stream stream, Device device) {
    if (stream != null) {
      open(stream, "stream");
      check(stream.device().equals(device), "stream.device", device.toString(), stream.device());
    }
  }
}
