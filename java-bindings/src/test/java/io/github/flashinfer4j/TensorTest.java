package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.testing.Gpu;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class TensorTest {
  static java.util.List<Device> devices() {
    return Gpu.devices();
  }

  @ParameterizedTest
  @MethodSource("devices")
  void floatRoundTripPerDtype(Device device) {
    Random rnd = new Random(7);
    float[] data = new float[1000];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) (rnd.nextGaussian() * 10);
    }
    try (Tensor t = Tensor.fromFloats(device, DType.F32, data, 10, 100)) {
      assertArrayEquals(data, t.toFloatArray());
    }
    for (DType dt : new DType[] {DType.F16, DType.BF16}) {
      try (Tensor t = Tensor.fromFloats(device, dt, data, 1000)) {
        float[] back = t.toFloatArray();
        double tol = dt == DType.F16 ? 1.0 / 2048 : 1.0 / 256;
        for (int i = 0; i < data.length; i++) {
          assertTrue(Math.abs(back[i] - data[i]) <= Math.abs(data[i]) * tol, dt + " element " + i);
        }
      }
    }
  }

  @Test
  void knownBitPatterns() {
    float[] v = {1.0f, -2.0f, 65504f, 1e6f, 5.9604645e-8f, 0f, Float.NaN, Float.NEGATIVE_INFINITY};
    short[] f16 = {0x3c00, (short) 0xc000, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x7e00, (short) 0xfc00};
    short[] bf16 = {0x3f80, (short) 0xc000, 0x4780, 0x4974, 0x3380, 0x0000, 0x7fc0, (short) 0xff80};
    try (Tensor h = Tensor.fromFloats(Device.cpu(), DType.F16, v, v.length);
        Tensor b = Tensor.fromFloats(Device.cpu(), DType.BF16, v, v.length)) {
      assertArrayEquals(f16, h.toBits());
      assertArrayEquals(bf16, b.toBits());
      float[] back = h.toFloatArray();
      assertTrue(Float.isInfinite(back[3]) && Float.isNaN(back[6]));
    }
  }

  @ParameterizedTest
  @MethodSource("devices")
  void intsBitsAndBuffers(Device device) {
    int[] ints = {0, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 42};
    try (Tensor t = Tensor.fromInts(device, ints, 5)) {
      assertArrayEquals(ints, t.toIntArray());
    }
    short[] bits = {1, 2, 3, (short) 0xffff};
    try (Tensor t = Tensor.empty(device, DType.BF16, 2, 2)) {
      t.copyFromBits(bits);
      assertArrayEquals(bits, t.toBits());
      ByteBuffer out = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
      t.copyTo(out);
      out.flip();
      assertEquals(1, out.getShort(0));
      assertEquals((short) 0xffff, out.getShort(6));
      ByteBuffer in = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      in.putShort((short) 9).putShort((short) 8).putShort((short) 7).putShort((short) 6).flip();
      t.copyFrom(in);
      assertArrayEquals(new short[] {9, 8, 7, 6}, t.toBits());
    }
    try (Tensor z = Tensor.zeros(device, DType.F32, 3)) {
      assertArrayEquals(new float[3], z.toFloatArray());
    }
  }

  @Test
  void viewsShareMemoryAndDieWithTheirParent() {
    Tensor t = Tensor.fromFloats(Device.cpu(), DType.F32, new float[] {0, 1, 2, 3, 4, 5}, 2, 3);
    Tensor row = t.select(0, 1);
    assertArrayEquals(new long[] {3}, row.shape());
    assertArrayEquals(new float[] {3, 4, 5}, row.toFloatArray());
    Tensor col = t.select(1, 2);
    assertFalse(col.isContiguous());
    assertThrows(InvalidArgumentException.class, col::toFloatArray);
    Tensor mid = t.narrow(1, 1, 2);
    assertArrayEquals(new long[] {3, 1}, mid.strides());
    Tensor flat = t.reshape(6);
    assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, flat.toFloatArray());
    t.close();
    t.close();  // idempotent
    IllegalStateException e = assertThrows(IllegalStateException.class, row::toFloatArray);
    assertTrue(e.getMessage().contains("closed"));
    assertThrows(IllegalStateException.class, t::address);
  }

  @Test
  void wrapIsNonOwning() {
    try (Tensor owner = Tensor.fromFloats(Device.cpu(), DType.F32, new float[] {1, 2, 3, 4}, 4)) {
      Tensor view = Tensor.wrap(Device.cpu(), owner.address(), DType.F32, 2, 2);
      assertArrayEquals(new float[] {1, 2, 3, 4}, view.toFloatArray());
      view.close();
      assertArrayEquals(new float[] {1, 2, 3, 4}, owner.toFloatArray(), "closing a wrap does not free");
      Tensor strided = Tensor.wrap(Device.cpu(), owner.address(), DType.F32, new long[] {2}, new long[] {2});
      assertFalse(strided.isContiguous());
    }
  }

  @Test
  void badArgumentsNameThemselves() {
    Device cpu = Device.cpu();
    InvalidArgumentException e =
        assertThrows(InvalidArgumentException.class, () -> Tensor.empty(cpu, DType.F16, 2, -3));
    assertEquals("shape[1] must be >= 0, got -3", e.getMessage());
    e = assertThrows(InvalidArgumentException.class, () -> Tensor.empty(cpu, DType.F16, Long.MAX_VALUE, 4));
    assertTrue(e.getMessage().startsWith("shape must be of fewer than"), e.getMessage());
    e = assertThrows(InvalidArgumentException.class, () -> Tensor.fromFloats(cpu, DType.F16, new float[3], 4));
    assertEquals("data.length must be equal to numel 4, got 3", e.getMessage());
    e = assertThrows(InvalidArgumentException.class, () -> Tensor.fromFloats(cpu, DType.I32, new float[4], 4));
    assertTrue(e.getMessage().contains("F16, BF16 or F32"), e.getMessage());
    e = assertThrows(InvalidArgumentException.class, () -> Tensor.wrap(cpu, 0, DType.F16, 4));
    assertEquals("address must be non-zero, got 0", e.getMessage());
    e = assertThrows(InvalidArgumentException.class, () -> Tensor.empty(null, DType.F16, 4));
    assertEquals("device must be non-null, got null", e.getMessage());
    try (Tensor t = Tensor.empty(cpu, DType.F16, 2, 3)) {
      e = assertThrows(InvalidArgumentException.class, () -> t.select(2, 0));
      assertEquals("dim must be in [0, 2), got 2", e.getMessage());
      e = assertThrows(InvalidArgumentException.class, () -> t.narrow(1, 2, 2));
      assertEquals("length must be in [0, 1], got 2", e.getMessage());
      e = assertThrows(InvalidArgumentException.class, () -> t.copyFrom(new int[6]));
      assertTrue(e.getMessage().startsWith("tensor dtype must be I32"), e.getMessage());
      e = assertThrows(InvalidArgumentException.class, () -> t.copyFrom(ByteBuffer.allocate(11)));
      assertEquals("buffer.remaining() must be equal to byteSize 12, got 11", e.getMessage());
    }
  }
}
