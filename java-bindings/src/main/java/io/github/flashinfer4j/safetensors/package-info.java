/**
 * Reading and writing Hugging Face <a href="https://github.com/huggingface/safetensors">safetensors</a> files:
 * {@link io.github.flashinfer4j.safetensors.SafetensorsFile} (one file, memory-mapped, strictly validated; tensors
 * loaded straight to a device or, on the CPU, over the mapping without a copy),
 * {@link io.github.flashinfer4j.safetensors.SafetensorsIndex} (a model folder: one file or shards with their
 * {@code model.safetensors.index.json}) and {@link io.github.flashinfer4j.safetensors.SafetensorsWriter} (outputs,
 * written atomically).
 */
package io.github.flashinfer4j.safetensors;
