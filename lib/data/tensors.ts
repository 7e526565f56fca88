/** Conversion of {@link LabeledData} to tfjs tensors. */
import * as tf from "@tensorflow/tfjs-core";
import type { LabeledData } from "./types.ts";

/**
 * `x` as a float32 tensor of shape `d.shape` and `y` as an int32 1-D tensor. The caller owns (and must
 * dispose) both tensors.
 */
export function toTensors(d: LabeledData): { x: tf.Tensor; y: tf.Tensor1D } {
  return { x: tf.tensor(d.x, d.shape, "float32"), y: tf.tensor1d(d.y, "int32") };
}
