/**
 * Hashes that name things in a run store: SHA-256 over canonical JSON (object keys sorted), and the
 * teacher's fingerprint over its topology and weight bytes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type * as tfl from "@tensorflow/tfjs-layers";

/** JSON with object keys sorted at every depth, so equal values always give equal text. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = sortKeys(o[k]);
    return out;
  }
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return v;
}

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex SHA-256 of a value's canonical JSON. */
export function hashOf(v: unknown): string {
  return sha256Hex(canonicalJson(v));
}

/**
 * Teacher fingerprint: SHA-256 over the model's topology (its Keras JSON config) and every weight
 * tensor's shape and float32 bytes, in `getWeights()` order. Two teachers with the same fingerprint
 * answer every query the same way on the same engine.
 */
export function teacherFingerprint(model: tfl.LayersModel): string {
  const h = createHash("sha256");
  h.update(canonicalJson(model.toJSON(undefined, false)));
  for (const w of model.getWeights()) {
    h.update(`|${w.shape.join("x")}|`);
    const data = w.dataSync() as Float32Array;
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest("hex");
}
