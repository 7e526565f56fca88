/**
 * Results with typed arrays in a run store: `pack` turns a value into JSON plus one binary file per
 * typed array (Float32Array, Int32Array, Uint8Array), non-finite numbers kept; `unpack` restores the exact value.
 * Units hand their results to later units and to the collect step this way ({@link packFiles},
 * {@link readPacked}). `unpack` also reads the inline form db3 units wrote before they packed this way
 * (an array as `{$typed, b64}` base64 bytes, a non-finite number as `{$num}`), so their run stores stay
 * readable.
 *
 * @module
 */
import type { RunStore } from "../runner/store.ts";

/** The bytes of a typed array (no copy). */
export function bytesOf(a: Float32Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Stored bytes as a Float32Array (a copy: aligned, and independent of the buffer read). */
export const f32Of = (b: Uint8Array): Float32Array => new Float32Array(b.slice().buffer);

/** Stored bytes as an Int32Array (a copy). */
export const i32Of = (b: Uint8Array): Int32Array => new Int32Array(b.slice().buffer);

/** A packed value: `json` (the text of `<name>.json`) and the binary files it refers to. */
export interface Packed {
  json: string;
  files: Record<string, Uint8Array>;
}

const KINDS = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;
type Kind = keyof typeof KINDS;

function kindOf(v: unknown): Kind | undefined {
  if (v instanceof Float32Array) return "f32";
  if (v instanceof Int32Array) return "i32";
  if (v instanceof Uint8Array) return "u8";
  return undefined;
}

/** Pack `value`; binary files are named `<prefix><n>.<kind>`. */
export function pack(value: unknown, prefix: string): Packed {
  const files: Record<string, Uint8Array> = {};
  let n = 0;
  const walk = (v: unknown): unknown => {
    const kind = kindOf(v);
    if (kind) {
      const a = v as Float32Array | Int32Array | Uint8Array;
      const name = `${prefix}${n++}.${kind}`;
      files[name] = new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
      return { $array: kind, file: name };
    }
    if (typeof v === "number" && !Number.isFinite(v)) return { $number: String(v) };
    if (ArrayBuffer.isView(v)) {
      throw new TypeError(
        `pack: ${v.constructor.name} is not supported (Float32Array, Int32Array and Uint8Array are)`,
      );
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, walk(x)]),
      );
    }
    return v;
  };
  return { json: JSON.stringify(walk(value)) + "\n", files };
}

/** Restore a value packed by {@link pack}; `read` returns a binary file's bytes by name. */
export async function unpack<T>(json: string, read: (name: string) => Promise<Uint8Array>): Promise<T> {
  const walk = async (v: unknown): Promise<unknown> => {
    if (Array.isArray(v)) return await Promise.all(v.map(walk));
    if (v === null || typeof v !== "object") return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).length;
    if (typeof (o.$number ?? o.$num) === "string" && keys === 1) return Number(o.$number ?? o.$num);
    if (typeof o.$typed === "string" && typeof o.b64 === "string" && keys === 2) {
      return new KINDS[o.$typed as Kind](Uint8Array.from(atob(o.b64), (c) => c.charCodeAt(0)).buffer);
    }
    if (typeof o.$array === "string" && typeof o.file === "string" && keys === 2) {
      const Ctor = KINDS[o.$array as Kind];
      if (!Ctor) throw new TypeError(`unpack: unknown array kind "${o.$array}" in ${o.file}`);
      return new Ctor((await read(o.file)).slice().buffer);
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = await walk(x);
    return out;
  };
  return await walk(JSON.parse(json)) as T;
}

/** `value` as unit output files: `<name>.json` and its arrays (`<name>-<n>.<kind>`). */
export function packFiles(value: unknown, name: string): Record<string, string | Uint8Array> {
  const p = pack(value, `${name}-`);
  return { [`${name}.json`]: p.json, ...p.files };
}

/** Read a value written with {@link packFiles} by unit `key` of `store`. */
export async function readPacked<T>(store: RunStore, key: string, name: string): Promise<T> {
  return await unpack<T>(await store.readText(key, `${name}.json`), (f) => store.readBytes(key, f));
}
