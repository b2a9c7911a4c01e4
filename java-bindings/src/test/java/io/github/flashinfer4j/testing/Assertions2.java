package io.github.flashinfer4j.testing;

import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;

/** Tolerance checks with SPEC.md's tolerances: bf16 1e-2, fp16 2e-3 (absolute and relative), LSE 1e-3. */
public final class Assertions2 {
  private Assertions2() {}

  public static double tolerance(DType dtype) {
    return dtype == DType.BF16 ? 1e-2 : 2e-3;
  }

  /** |actual - expected| <= tol * (1 + |expected|) everywhere; NaN never passes; -inf must match -inf. */
  public static void assertClose(double[] expected, float[] actual, double tol, String what) {
    if (expected.length != actual.length) {
      fail(what + ": length " + actual.length + " != expected " + expected.length);
    }
    int bad = 0;
    int first = -1;
    double worst = 0;
    for (int i = 0; i < expected.length; i++) {
      double e = expected[i];
      double a = actual[i];
      boolean ok;
      if (Double.isInfinite(e)) {
        ok = a == e;
      } else {
        double err = Math.abs(a - e);
        ok = !Double.isNaN(a) && err <= tol * (1 + Math.abs(e));
        if (!Double.isNaN(a)) {
          worst = Math.max(worst, err);
        }
      }
      if (!ok) {
        bad++;
        if (first < 0) {
          first = i;
        }
      }
    }
    if (bad > 0) {
      fail(what + ": " + bad + " of " + expected.length + " elements outside tolerance " + tol + "; first at " + first
          + " expected " + expected[first] + " got " + actual[first] + " (max abs err " + worst + ")");
    }
  }

  public static void assertClose(float[] expected, float[] actual, double tol, String what) {
    double[] e = new double[expected.length];
    for (int i = 0; i < e.length; i++) {
      e[i] = expected[i];
    }
    assertClose(e, actual, tol, what);
  }
}
