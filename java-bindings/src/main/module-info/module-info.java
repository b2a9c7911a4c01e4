/**
 * flashinfer4j: attention kernels for the JVM. {@code io.github.flashinfer4j} holds the core (devices, streams,
 * tensors, dtypes, CUDA graphs and events, kernel configurations and the run-time compilation cache, exceptions);
 * each op family has a package of its own, {@code io.github.flashinfer4j.attention} first;
 * {@code io.github.flashinfer4j.safetensors} reads model weights and writes outputs. The package
 * {@code io.github.flashinfer4j.internal} (loading, native resources, argument checks, routing) is not exported.
 */
module io.github.flashinfer4j {
  requires org.bytedeco.javacpp;
  requires io.github.flashinfer4j.presets;

  exports io.github.flashinfer4j;
  exports io.github.flashinfer4j.attention;
  exports io.github.flashinfer4j.safetensors;
}
