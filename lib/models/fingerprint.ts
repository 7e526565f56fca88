/**
 * Fingerprint of a network: SHA-256 over its topology (each layer's class and configuration, in
 * order, without the process-dependent layer names) and the bytes of every weight, in `getWeights()`
 * order. Two teachers share a
 * fingerprint only if they compute the same function with the same weights, whatever file or folder
 * they came from and whenever they were trained. Caches of teacher answers are keyed on it.
 *
 * Computed once per model object and remembered (a `WeakMap`), so the many caches of one run reuse it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type * as tfl from "@tensorflow/tfjs-layers";

const known = new WeakMap<object, string>();

/** Hex SHA-256 of the model's topology and weights (see the module doc). */
export function modelFingerprint(model: tfl.LayersModel): string {
  const hit = known.get(model);
  if (hit) return hit;
  const h = createHash("sha256");
  const layers = model.layers.map((l) => {
    const { name: _name, ...config } = l.getConfig() as Record<string, unknown>;
    return [l.getClassName(), config];
  });
  h.update(JSON.stringify(layers));
  for (const w of model.getWeights()) {
    h.update(JSON.stringify(w.shape));
    const v = w.dataSync() as Float32Array;
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  const fp = h.digest("hex");
  known.set(model, fp);
  return fp;
}
