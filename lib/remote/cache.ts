/**
 * Persistent label cache: answers of a label-only teacher keyed by a hash of the exact input bytes,
 * so an interrupted labeling run resumes without paying twice for the same image.
 *
 * One folder per teacher endpoint (`<root>/<namespace hash>/`): `endpoint.json` says what it caches
 * (for humans), `labels.bin` is an append-only log of 20-byte records — the first 16 bytes of the
 * SHA-256 of the image's float32 bytes, then the label as int32 little-endian. Appending is the only
 * write, so a crash can at worst leave a partial last record, which loading ignores (and the next
 * append realigns). Records are appended as soon as a batch is answered.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Bytes of one record. */
const RECORD = 20;
const KEY = 16;

/** Hex key of `d` floats of `x` at image index `i` (SHA-256 of the bytes, first 16 bytes). */
export function imageKey(x: Float32Array, i: number, d: number): string {
  const bytes = new Uint8Array(x.buffer, x.byteOffset + i * d * 4, d * 4);
  return createHash("sha256").update(bytes).digest("hex").slice(0, 2 * KEY);
}

/** Keys of the first `n` images (`d` floats each) of `x`. */
export function imageKeys(x: Float32Array, n: number, d: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = imageKey(x, i, d);
  return out;
}

/** Short stable hash of a namespace description (folder name). */
export function namespaceHash(description: unknown): string {
  return createHash("sha256").update(JSON.stringify(description)).digest("hex").slice(0, 16);
}

function hexToBytes(hex: string, out: Uint8Array, off: number) {
  for (let j = 0; j < KEY; j++) out[off + j] = parseInt(hex.slice(2 * j, 2 * j + 2), 16);
}

function bytesToHex(b: Uint8Array, off: number): string {
  let s = "";
  for (let j = 0; j < KEY; j++) s += b[off + j].toString(16).padStart(2, "0");
  return s;
}

/** A label cache for one teacher endpoint (see the module doc). */
export class LabelCache {
  readonly #map = new Map<string, number>();
  /** The folder of this namespace. */
  readonly dir: string;
  /** The append-only record file. */
  readonly file: string;
  /** Records found on open. */
  readonly loaded: number;
  #writes: Promise<void> = Promise.resolve();

  private constructor(dir: string, loaded: Map<string, number>) {
    this.dir = dir;
    this.file = `${dir}/labels.bin`;
    this.#map = loaded;
    this.loaded = loaded.size;
  }

  /**
   * Open (or create) the cache of the endpoint described by `description` (any JSON: protocol, URL,
   * model, input shape, adapter…) under `root`.
   */
  static async open(root: string, description: unknown): Promise<LabelCache> {
    const dir = `${root.replace(/\/+$/, "")}/${namespaceHash(description)}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/endpoint.json`, JSON.stringify(description, null, 2) + "\n");
    const map = new Map<string, number>();
    let bytes: Uint8Array = new Uint8Array(0);
    try {
      bytes = await Deno.readFile(`${dir}/labels.bin`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const whole = Math.floor(bytes.length / RECORD);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let r = 0; r < whole; r++) {
      map.set(bytesToHex(bytes, r * RECORD), view.getInt32(r * RECORD + KEY, true));
    }
    if (bytes.length % RECORD !== 0) {
      // A crash cut the last record: drop it, so appends stay aligned.
      await Deno.truncate(`${dir}/labels.bin`, whole * RECORD);
    }
    return new LabelCache(dir, map);
  }

  /** Cached entries. */
  get size(): number {
    return this.#map.size;
  }

  /** The cached label of a key, or undefined. */
  get(key: string): number | undefined {
    return this.#map.get(key);
  }

  /** Record answers (in memory at once, on disk in order of calls). */
  add(keys: readonly string[], labels: ArrayLike<number>): Promise<void> {
    const buf = new Uint8Array(keys.length * RECORD);
    const view = new DataView(buf.buffer);
    let m = 0;
    keys.forEach((k, i) => {
      if (this.#map.has(k)) return;
      this.#map.set(k, labels[i]);
      hexToBytes(k, buf, m * RECORD);
      view.setInt32(m * RECORD + KEY, labels[i], true);
      m++;
    });
    if (m === 0) return this.#writes;
    const chunk = buf.subarray(0, m * RECORD);
    this.#writes = this.#writes.then(() => Deno.writeFile(this.file, chunk, { append: true }));
    return this.#writes;
  }

  /** Wait for every pending append. */
  flush(): Promise<void> {
    return this.#writes;
  }
}
