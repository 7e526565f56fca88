/**
 * Inference helpers on an in-process model: chunked logits, labels, accuracy.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LabeledData } from "../data/mod.ts";

/** Logits (n×K, row-major) of `model` for `n` row-major inputs `x`, in chunks of `batchSize`. */
export function predictLogits(
  model: tfl.LayersModel,
  x: Float32Array,
  n: number,
  batchSize = 1024,
): Float32Array {
  const inShape = model.inputs[0].shape.slice(1) as number[];
  const d = inShape.reduce((a, b) => a * b, 1);
  if (x.length < n * d) throw new Error(`predictLogits: x has ${x.length} values, need ${n}×${d}`);
  let out: Float32Array | undefined;
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const z = tf.tidy(() => {
      const xb = tf.tensor(x.subarray(s * d, (s + m) * d), [m, ...inShape]);
      return (model.apply(xb, { training: false }) as tf.Tensor).dataSync() as Float32Array;
    });
    const k = z.length / m;
    out ??= new Float32Array(n * k);
    out.set(z, s * k);
  }
  return out ?? new Float32Array(0);
}

/** Fraction of `pred` equal to `y`, in [0, 1]. */
export function accuracy(pred: Int32Array, y: Int32Array): number {
  if (pred.length !== y.length) {
    throw new Error(`accuracy: ${pred.length} predictions for ${y.length} labels`);
  }
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) ok++;
  return y.length === 0 ? 0 : ok / y.length;
}

/** Row-wise argmax of an n×K matrix. */
export function argmaxRows(z: Float32Array, n: number): Int32Array {
  const k = z.length / n;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bv = z[i * k];
    for (let j = 1; j < k; j++) {
      if (z[i * k + j] > bv) {
        bv = z[i * k + j];
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Test accuracy of `model` on `data` (inference mode), in [0, 1]. */
export function evaluate(model: tfl.LayersModel, data: LabeledData, batchSize = 1024): Promise<number> {
  const n = data.shape[0];
  return Promise.resolve(accuracy(argmaxRows(predictLogits(model, data.x, n, batchSize), n), data.y));
}
