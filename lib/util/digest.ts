/**
 * Content digests for files the kit writes and later trusts: SHA-256 in hex, and the canonical JSON
 * (object keys sorted) that makes a digest of a JSON value independent of key order and formatting.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted, so equal values serialise (and hash) equally whatever their key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

/** SHA-256 of bytes or of a string's UTF-8 encoding, as 64 hex digits. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** SHA-256 of the canonical JSON ({@link stableJson}) of a value. */
export function jsonDigest(value: unknown): string {
  return sha256Hex(stableJson(value));
}
