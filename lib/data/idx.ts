/**
 * Reader for the idx format of MNIST and Fashion-MNIST (LeCun et al.): a 4-byte magic number
 * `0x00 0x00 <type> <rank>`, `rank` big-endian uint32 dimensions, then the values row-major,
 * big-endian. Files may be gzip-compressed; {@link gunzipIfNeeded} detects that from the content.
 */
import { gunzipSync } from "node:zlib";
import { DatasetError } from "./errors.ts";

/** Element type codes of the idx format. */
export type IdxType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** Typed array holding idx values (uint8 data is returned without copying). */
export type IdxValues = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded idx file. */
export interface IdxArray {
  /** Element type from the magic number. */
  type: IdxType;
  /** Dimensions from the header, e.g. `[60000, 28, 28]` or `[60000]`. */
  dims: number[];
  /** The values, row-major. */
  data: IdxValues;
}

/** Options of {@link parseIdx}. */
export interface ParseIdxOptions {
  /** Name used in error messages (usually the file path). */
  file?: string;
  /** Required rank (1 for label files, 3 for image files); checked when given. */
  rank?: number;
  /** What to tell the user to do if the file is bad; appended to error messages. */
  fix?: string;
}

const TYPES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: "uint8", size: 1 },
  0x09: { type: "int8", size: 1 },
  0x0b: { type: "int16", size: 2 },
  0x0c: { type: "int32", size: 4 },
  0x0d: { type: "float32", size: 4 },
  0x0e: { type: "float64", size: 8 },
};

const DEFAULT_FIX = "the file is damaged or not an idx file; replace it with an intact official copy";

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompress `bytes` if they are gzip, else return them unchanged. A truncated or corrupt stream
 * throws a {@link DatasetError} of kind `"gzip"` naming `file`.
 */
export function gunzipIfNeeded(bytes: Uint8Array, file = "<buffer>", fix?: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return fail(`gzip stream truncated or corrupt (${why})`, "gzip", file, fix, e);
  }
}

/**
 * Parse an idx buffer (plain or gzip). Validates the magic number, the rank (if asked) and that the
 * byte length is exactly header + product(dims) × element size.
 */
export function parseIdx(bytes: Uint8Array, opts: ParseIdxOptions = {}): IdxArray {
  const file = opts.file ?? "<buffer>";
  const buf = gunzipIfNeeded(bytes, file, opts.fix);
  if (buf.length < 4) {
    fail(`file too short for an idx header (${buf.length} bytes)`, "size", file, opts.fix);
  }
  const typeCode = buf[2];
  const rank = buf[3];
  const t = TYPES[typeCode];
  if (buf[0] !== 0 || buf[1] !== 0 || t === undefined || rank === 0) {
    const magic = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    fail(`bad idx magic number ${magic} (expected 00 00 <type> <rank>)`, "magic", file, opts.fix);
  }
  if (opts.rank !== undefined && rank !== opts.rank) {
    fail(`idx rank is ${rank}, expected ${opts.rank}`, "magic", file, opts.fix);
  }
  const headerLen = 4 + 4 * rank;
  if (buf.length < headerLen) {
    fail(`file too short for its idx header (${buf.length} < ${headerLen} bytes)`, "size", file, opts.fix);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const expected = headerLen + count * t.size;
  if (buf.length !== expected) {
    const how = buf.length < expected ? "truncated" : "has trailing bytes";
    fail(
      `idx file ${how}: header dims [${dims.join(", ")}] need ${expected} bytes, file has ${buf.length}`,
      "size",
      file,
      opts.fix,
    );
  }
  return { type: t.type, dims, data: decodeValues(buf, view, headerLen, count, t.type) };
}

function decodeValues(
  buf: Uint8Array,
  view: DataView,
  off: number,
  count: number,
  type: IdxType,
): IdxValues {
  switch (type) {
    case "uint8":
      return buf.subarray(off, off + count);
    case "int8":
      return new Int8Array(buf.buffer, buf.byteOffset + off, count).slice();
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(off + 2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(off + 4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(off + 4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(off + 8 * i, false);
      return out;
    }
  }
}

function fail(
  what: string,
  kind: "size" | "magic" | "gzip",
  file: string,
  fix: string | undefined,
  cause?: unknown,
): never {
  throw new DatasetError(what, { kind, file, fix: fix ?? DEFAULT_FIX, cause });
}
