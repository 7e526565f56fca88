/**
 * JSON for unit outputs that hold typed arrays: every Float32Array, Int32Array and Uint8Array is
 * written as its little-endian bytes in base64 (exact, Infinity and NaN included) and read back as
 * the same type.
 *
 * @module
 */
import { Buffer } from "node:buffer";

type Tagged = { $typed: "f32" | "i32" | "u8"; b64: string };

const CTORS = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;

/** `v` as JSON text, typed arrays included (see the module doc). */
export function packJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    const tag = x instanceof Float32Array
      ? "f32"
      : x instanceof Int32Array
      ? "i32"
      : x instanceof Uint8Array
      ? "u8"
      : null;
    if (tag === null) return typeof x === "number" && !Number.isFinite(x) ? { $num: String(x) } : x;
    const a = x as Float32Array | Int32Array | Uint8Array;
    return { $typed: tag, b64: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64") };
  });
}

/** The value {@link packJson} wrote. */
export function unpackJson<T>(text: string): T {
  return JSON.parse(text, (_k, x) => {
    if (x && typeof x === "object" && typeof (x as Tagged).$typed === "string") {
      const t = x as Tagged;
      const bytes = Buffer.from(t.b64, "base64");
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      return new CTORS[t.$typed](copy.buffer);
    }
    if (x && typeof x === "object" && typeof (x as { $num?: string }).$num === "string") {
      return Number((x as { $num: string }).$num);
    }
    return x;
  }) as T;
}
