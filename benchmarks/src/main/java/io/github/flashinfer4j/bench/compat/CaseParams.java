package io.github.flashinfer4j.bench.compat;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PosEncoding;
import java.util.Locale;
import java.util.Map;

/**
 * The parameters of one case, as the {@code cases} metadata of a golden-layout file gives them (JSON values:
 * String, Long, Double, Boolean, null). Missing or malformed values are {@link IllegalArgumentException}s naming
 * the case and the key; values flashinfer4j cannot run are {@link Unsupported}.
 */
final class CaseParams {
  /** A parameter value that flashinfer4j does not implement (the case is reported as unsupported). */
  static final class Unsupported extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Unsupported(String message) {
      super(message);
    }
  }

  private final String caseName;
  private final Map<String, Object> values;

  CaseParams(String caseName, Map<String, Object> values) {
    this.caseName = caseName;
    this.values = values;
  }

  String op() {
    Object v = values.get("op");
    if (!(v instanceof String)) {
      throw bad("op", "a string", v);
    }
    return (String) v;
  }

  int integer(String key) {
    Object v = values.get(key);
    if (!(v instanceof Long) || (Long) v != ((Long) v).intValue()) {
      throw bad(key, "an integer", v);
    }
    return ((Long) v).intValue();
  }

  int integer(String key, int defaultValue) {
    return values.get(key) == null ? defaultValue : integer(key);
  }

  /** A boolean; false when the key is absent or null. */
  boolean flag(String key) {
    Object v = values.get(key);
    if (v == null) {
      return false;
    }
    if (!(v instanceof Boolean)) {
      throw bad(key, "a boolean or null", v);
    }
    return (Boolean) v;
  }

  /** A number, or null when the key is absent or null. */
  Double number(String key) {
    Object v = values.get(key);
    if (v == null) {
      return null;
    }
    if (!(v instanceof Number)) {
      throw bad(key, "a number or null", v);
    }
    return ((Number) v).doubleValue();
  }

  String string(String key, String defaultValue) {
    Object v = values.get(key);
    if (v == null) {
      return defaultValue;
    }
    if (!(v instanceof String)) {
      throw bad(key, "a string", v);
    }
    return (String) v;
  }

  /** The q/K/V/out dtype: "torch.bfloat16" (as in the golden files), "bfloat16", "bf16", and the fp16 names. */
  DType dtype() {
    String s = string("dtype", null);
    if (s == null) {
      throw bad("dtype", "a string", null);
    }
    String t = s.toLowerCase(Locale.ROOT);
    if (t.startsWith("torch.")) {
      t = t.substring("torch.".length());
    }
    switch (t) {
      case "bfloat16":
      case "bf16":
        return DType.BF16;
      case "float16":
      case "half":
      case "fp16":
      case "f16":
        return DType.F16;
      default:
        throw new Unsupported("dtype " + s + " (flashinfer4j attention takes float16 and bfloat16)");
    }
  }

  KvLayout layout() {
    String s = string("layout", "NHD");
    try {
      return KvLayout.valueOf(s.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new Unsupported("layout " + s);
    }
  }

  /** sm_scale, logits_soft_cap (null or 0 = off), window_left, pos_encoding, rope_scale, rope_theta. */
  AttentionOptions options() {
    AttentionOptions.Builder b = AttentionOptions.builder();
    Double scale = number("sm_scale");
    if (scale != null) {
      b.smScale(scale.floatValue());
    }
    Double cap = number("logits_soft_cap");
    if (cap != null && cap != 0) {
      b.logitsSoftCap(cap.floatValue());
    }
    b.windowLeft(integer("window_left", -1));
    String pe = string("pos_encoding", "NONE").toUpperCase(Locale.ROOT);
    switch (pe) {
      case "NONE":
        break;
      case "ROPE_LLAMA":
        b.posEncoding(PosEncoding.ROPE_LLAMA);
        break;
      default:
        throw new Unsupported("pos_encoding " + pe);
    }
    Double ropeScale = number("rope_scale");
    if (ropeScale != null) {
      b.ropeScale(ropeScale.floatValue());
    }
    Double ropeTheta = number("rope_theta");
    if (ropeTheta != null) {
      b.ropeTheta(ropeTheta.floatValue());
    }
    return b.build();
  }

  private IllegalArgumentException bad(String key, String expected, Object actual) {
    return new IllegalArgumentException("case " + caseName + ": parameter '" + key + "' must be " + expected
        + ", got " + (actual == null ? "nothing" : JsonWriter.write(actual)));
  }
}
