/**
 * Fingerprint of a network: SHA-256 over its topology (each layer's class and configuration, in
 * order, without what does not change the function once the weights are set: layer names, which
 * depend on the process, initializers with their seeds, regularizers, constraints, `trainable`) and
 * the bytes of every weight, in `getWeights()` order. Two teachers share a
 * fingerprint only if they compute the same function with the same weights, whatever file or folder
 * they came from and whenever they were trained. Caches of teacher answers are keyed on it.
 *
 * Hashing reads every weight (≈ 0.1 s for 10 M parameters): compute it once per run and pass the
 * value to the caches that need it. It is not memoised, since weights can change in place.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type * as tfl from "@tensorflow/tfjs-layers";

const IRRELEVANT = /^(name|trainable)$|(Initializer|Regularizer|Constraint)$/;

/** Hex SHA-256 of the model's topology and weights (see the module doc). */
export function modelFingerprint(model: tfl.LayersModel): string {
  const h = createHash("sha256");
  const layers = model.layers.map((l) => {
    const config = Object.entries(l.getConfig() as Record<string, unknown>).filter(([k]) =>
      !IRRELEVANT.test(k)
    );
    return [l.getClassName(), Object.fromEntries(config)];
  });
  h.update(JSON.stringify(layers));
  for (const w of model.getWeights()) {
    h.update(JSON.stringify(w.shape));
    const v = w.dataSync() as Float32Array;
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return h.digest("hex");
}
