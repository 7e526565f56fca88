/**
 * Flatten nested plain objects into dotted keys, for CSV rows and key/value tables.
 *
 * @module
 */

/** A flat row: dotted keys to primitive values (arrays and odd values become JSON text). */
export type FlatRow = Record<string, string | number | boolean | null>;

/**
 * Flatten `{a: {b: 1}, c: [1, 2]}` into `{"a.b": 1, "c": "[1,2]"}` with an optional key prefix.
 * `undefined` values are dropped; non-finite numbers are kept as numbers.
 */
export function flattenObject(obj: unknown, prefix = ""): FlatRow {
  const out: FlatRow = {};
  const walk = (v: unknown, key: string) => {
    if (v === undefined) return;
    if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
      out[key] = v;
    } else if (typeof v === "bigint") {
      out[key] = v.toString();
    } else if (Array.isArray(v) || ArrayBuffer.isView(v)) {
      out[key] = JSON.stringify(Array.from(v as ArrayLike<unknown>));
    } else if (typeof v === "object") {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0 && key) out[key] = "{}";
      for (const [k, x] of entries) walk(x, key ? `${key}.${k}` : k);
    } else {
      out[key] = String(v);
    }
  };
  walk(obj, prefix);
  return out;
}
