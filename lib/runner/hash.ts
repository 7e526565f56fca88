/**
 * Hashes that name things in a run store: SHA-256 over canonical JSON (object keys sorted). The
 * teacher's identity is the kit's one (`modelFingerprint`, or an endpoint's model identity), taken
 * from `openTeacher`.
 *
 * @module
 */
import { createHash } from "node:crypto";

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
