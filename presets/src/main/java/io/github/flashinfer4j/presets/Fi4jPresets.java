package io.github.flashinfer4j.presets;

import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;
import org.bytedeco.javacpp.tools.Info;
import org.bytedeco.javacpp.tools.InfoMap;
import org.bytedeco.javacpp.tools.InfoMapper;

/**
 * JavaCPP preset over the flashinfer4j C API. The parser turns {@code flashinfer4j.h} into
 * {@code io.github.flashinfer4j.lowlevel.Fi4j}; its natives live in the classifier jar of one CUDA architecture
 * ({@code linux-x86_64-sm80}, {@code -sm89}, {@code -sm90} or {@code -sm100}). Not public API: use the
 * {@code io.github.flashinfer4j} package.
 */
@Properties(
    target = "io.github.flashinfer4j.lowlevel.Fi4j",
    value = {
      @Platform(value = "linux-x86_64", include = "flashinfer4j/flashinfer4j.h", link = "flashinfer4j"),
      @Platform(value = "linux-x86_64", extension = {"-sm80", "-sm89", "-sm90", "-sm100"})
    })
public class Fi4jPresets implements InfoMapper {
  @Override
  public void map(InfoMap infoMap) {
    infoMap.put(new Info("FI4J_API").cppTypes().annotations());
    infoMap.put(new Info("FLASHINFER4J_H_").define(false));
  }
}
