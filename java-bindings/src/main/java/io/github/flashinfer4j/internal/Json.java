package io.github.flashinfer4j.internal;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON (RFC 8259) parser and string quoter: the safetensors header and index reader use it, and
 * the tests read the golden files' metadata with it. Not exported.
 *
 * <p>Objects become {@code LinkedHashMap<String,Object>} (insertion order kept, duplicate keys
 * rejected), arrays become {@code List<Object>}, numbers become {@link Long} (integers without
 * fraction or exponent that fit in a long) or {@link Double}, and {@code true/false/null} become
 * {@link Boolean} / {@code null}. Strings support every escape, including {@code \\uXXXX} and
 * surrogate pairs. Leading and trailing whitespace is allowed; anything else after the value is an
 * error. Malformed input raises {@link ParseException} carrying the character offset.
 */
public final class Json {

  /** Maximum nesting depth of arrays/objects, to fail cleanly instead of overflowing the stack. */
  public static final int MAX_DEPTH = 512;

  /** Malformed JSON. {@link #offset()} is the character offset where the problem was found. */
  public static final class ParseException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final int offset;

    ParseException(String message, int offset) {
      super("malformed JSON at offset " + offset + ": " + message);
      this.offset = offset;
    }

    public int offset() {
      return offset;
    }
  }

  private final String s;
  private int pos;
  private int depth;

  private Json(String s) {
    this.s = s;
  }

  /** Parses one JSON value (surrounded by optional whitespace). */
  public static Object parse(String text) {
    if (text == null) {
      throw new NullPointerException("text");
    }
    Json p = new Json(text);
    p.skipWs();
    Object v = p.value();
    p.skipWs();
    if (p.pos != p.s.length()) {
      throw p.error("unexpected trailing content " + p.describe(p.pos));
    }
    return v;
  }

  /** Parses a JSON text whose top-level value must be an object. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> parseObject(String text) {
    Object v = parse(text);
    if (!(v instanceof Map)) {
      throw new ParseException("expected a JSON object at top level, got " + typeName(v), 0);
    }
    return (Map<String, Object>) v;
  }

  /** Returns {@code value} as a JSON string literal, quotes included. */
  public static String quote(String value) {
    StringBuilder b = new StringBuilder(value.length() + 2).append('"');
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\b': b.append("\\b"); break;
        case '\f': b.append("\\f"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
      }
    }
    return b.append('"').toString();
  }

  /** A short human-readable name of a parsed value's JSON type. */
  public static String typeName(Object v) {
    if (v == null) return "null";
    if (v instanceof Map) return "object";
    if (v instanceof List) return "array";
    if (v instanceof String) return "string";
    if (v instanceof Boolean) return "boolean";
    if (v instanceof Number) return "number";
    return v.getClass().getName();
  }

  // ---------------------------------------------------------------------------------------

  private ParseException error(String message) {
    return new ParseException(message, pos);
  }

  private String describe(int at) {
    if (at >= s.length()) {
      return "end of input";
    }
    char c = s.charAt(at);
    return (c >= 0x20 && c < 0x7f) ? "'" + c + "'" : String.format("U+%04X", (int) c);
  }

  private void skipWs() {
    while (pos < s.length()) {
      char c = s.charAt(pos);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        pos++;
      } else {
        break;
      }
    }
  }

  private Object value() {
    if (pos >= s.length()) {
      throw error("unexpected end of input, expected a value");
    }
    char c = s.charAt(pos);
    switch (c) {
      case '{': return object();
      case '[': return array();
      case '"': return string();
      case 't': literal("true"); return Boolean.TRUE;
      case 'f': literal("false"); return Boolean.FALSE;
      case 'n': literal("null"); return null;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return number();
        }
        throw error("unexpected " + describe(pos) + ", expected a value");
    }
  }

  private void literal(String word) {
    if (!s.startsWith(word, pos)) {
      throw error("invalid literal, expected '" + word + "'");
    }
    pos += word.length();
  }

  private void enter() {
    if (++depth > MAX_DEPTH) {
      throw error("nesting deeper than " + MAX_DEPTH);
    }
  }

  private Map<String, Object> object() {
    enter();
    pos++; // '{'
    Map<String, Object> map = new LinkedHashMap<>();
    skipWs();
    if (pos < s.length() && s.charAt(pos) == '}') {
      pos++;
      depth--;
      return map;
    }
    while (true) {
      skipWs();
      if (pos >= s.length() || s.charAt(pos) != '"') {
        throw error("expected a string key, got " + describe(pos));
      }
      int keyAt = pos;
      String key = string();
      skipWs();
      if (pos >= s.length() || s.charAt(pos) != ':') {
        throw error("expected ':' after object key, got " + describe(pos));
      }
      pos++;
      skipWs();
      Object v = value();
      if (map.containsKey(key)) {
        throw new ParseException("duplicate object key " + quote(key), keyAt);
      }
      map.put(key, v);
      skipWs();
      if (pos >= s.length()) {
        throw error("unexpected end of input inside object");
      }
      char c = s.charAt(pos++);
      if (c == '}') {
        depth--;
        return map;
      }
      if (c != ',') {
        pos--;
        throw error("expected ',' or '}' in object, got " + describe(pos));
      }
    }
  }

  private List<Object> array() {
    enter();
    pos++; // '['
    List<Object> list = new ArrayList<>();
    skipWs();
    if (pos < s.length() && s.charAt(pos) == ']') {
      pos++;
      depth--;
      return list;
    }
    while (true) {
      skipWs();
      list.add(value());
      skipWs();
      if (pos >= s.length()) {
        throw error("unexpected end of input inside array");
      }
      char c = s.charAt(pos++);
      if (c == ']') {
        depth--;
        return list;
      }
      if (c != ',') {
        pos--;
        throw error("expected ',' or ']' in array, got " + describe(pos));
      }
    }
  }

  private String string() {
    pos++; // opening quote
    StringBuilder b = null;
    int runStart = pos;
    while (true) {
      if (pos >= s.length()) {
        throw error("unterminated string");
      }
      char c = s.charAt(pos);
      if (c == '"') {
        String out = b == null ? s.substring(runStart, pos) : b.append(s, runStart, pos).toString();
        pos++;
        return out;
      }
      if (c < 0x20) {
        throw error("unescaped control character " + describe(pos) + " in string");
      }
      if (c != '\\') {
        pos++;
        continue;
      }
      if (b == null) {
        b = new StringBuilder();
      }
      b.append(s, runStart, pos);
      pos++; // backslash
      if (pos >= s.length()) {
        throw error("unterminated escape sequence");
      }
      char e = s.charAt(pos++);
      switch (e) {
        case '"': b.append('"'); break;
        case '\\': b.append('\\'); break;
        case '/': b.append('/'); break;
        case 'b': b.append('\b'); break;
        case 'f': b.append('\f'); break;
        case 'n': b.append('\n'); break;
        case 'r': b.append('\r'); break;
        case 't': b.append('\t'); break;
        case 'u': {
          char hi = hex4();
          // A high surrogate followed by an escaped low surrogate forms one code point;
          // appending both UTF-16 units yields exactly that. Lone surrogates are kept as is.
          b.append(hi);
          break;
        }
        default:
          pos--;
          throw error("invalid escape '\\" + e + "'");
      }
      runStart = pos;
    }
  }

  private char hex4() {
    if (pos + 4 > s.length()) {
      throw error("truncated \\u escape");
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
      char h = s.charAt(pos);
      int d = h >= '0' && h <= '9' ? h - '0'
          : h >= 'a' && h <= 'f' ? h - 'a' + 10
          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) {
        throw error("invalid hex digit " + describe(pos) + " in \\u escape");
      }
      v = (v << 4) | d;
      pos++;
    }
    return (char) v;
  }

  private Object number() {
    int start = pos;
    boolean integral = true;
    if (s.charAt(pos) == '-') {
      pos++;
    }
    if (pos >= s.length()) {
      throw error("expected a digit after '-'");
    }
    char c = s.charAt(pos);
    if (c == '0') {
      pos++;
      if (pos < s.length() && isDigit(s.charAt(pos))) {
        throw error("leading zeros are not allowed");
      }
    } else if (c >= '1' && c <= '9') {
      digits();
    } else {
      throw error("expected a digit, got " + describe(pos));
    }
    if (pos < s.length() && s.charAt(pos) == '.') {
      integral = false;
      pos++;
      if (pos >= s.length() || !isDigit(s.charAt(pos))) {
        throw error("expected a digit after '.'");
      }
      digits();
    }
    if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
      integral = false;
      pos++;
      if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
        pos++;
      }
      if (pos >= s.length() || !isDigit(s.charAt(pos))) {
        throw error("expected a digit in exponent");
      }
      digits();
    }
    String text = s.substring(start, pos);
    if (integral) {
      try {
        return Long.parseLong(text);
      } catch (NumberFormatException overflow) {
        // falls through to Double for integers beyond the long range
      }
    }
    return Double.parseDouble(text);
  }

  private void digits() {
    while (pos < s.length() && isDigit(s.charAt(pos))) {
      pos++;
    }
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }
}
