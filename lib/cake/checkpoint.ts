/**
 * Per-batch checkpoints of a CAKE synthesis run, so that an interrupted run resumes.
 *
 * Layout of a cache directory:
 * - `cake.json`: the fingerprint (resolved options + teacher shape/key) the batches were made with;
 * - `batch-00012.bin`: batch m = 12 — int32 header [B, D, K], then B·D float32 inputs (teacher input
 *   space), B·K float32 teacher logits, B int32 target classes;
 * - `batch-00012.json`: its metadata (η_m, last loss, seconds, teacher passes) and the SHA-256 of the
 *   `.bin` file. Written last, through a rename, so a batch counts as finished only when both files
 *   are complete.
 *
 * Loading verifies: a `.json` without its `.bin`, a `.bin` whose size or SHA-256 does not match, or a
 * file that is not valid JSON is a {@link CakeCacheFileError} naming the file and the fix (delete that
 * batch's two files to recompute it, or the folder to start over) — never a bare
 * `SyntaxError`/`RangeError`, and never a silently recomputed batch. A batch written before the
 * digest existed (no `sha256` in its `.json`) is checked by size only.
 *
 * @module
 */
import { sha256Hex } from "../util/digest.ts";

/** One finished synthesis batch. */
export interface BatchRecord {
  /** Batch index m. */
  m: number;
  /** η_m used for every sample of the batch. */
  eta: number;
  /** Samples in the batch (B). */
  n: number;
  /** Values per sample (prod of the input shape). */
  dim: number;
  /** Classes K. */
  numClasses: number;
  /** Final inputs, in the teacher's input space, n·dim. */
  x: Float32Array;
  /** Teacher logits on the final inputs, n·K. */
  logits: Float32Array;
  /** Class each sample was optimised towards. */
  targetClass: Int32Array;
  /** Objective value at the last step (NaN when T = 0). */
  lastLoss: number;
  /** Wall-clock seconds spent on the batch. */
  seconds: number;
  /** Teacher images passed forward / backward for this batch. */
  passes: { forward: number; backward: number };
}

/** Thrown when a cache directory holds batches made with other options or another teacher. */
export class CakeCacheMismatchError extends Error {
  constructor(dir: string, detail: string) {
    super(
      `CAKE cache ${dir} was made with different settings (${detail}). ` +
        `Use another cacheDir, or delete ${dir} to start over.`,
    );
    this.name = "CakeCacheMismatchError";
  }
}

/** A file of a CAKE cache directory that is unreadable, corrupt or inconsistent. */
export class CakeCacheFileError extends Error {
  /** The offending file. */
  readonly file: string;

  constructor(file: string, problem: string, fix: string) {
    super(`CAKE cache file ${file}: ${problem}. Fix: ${fix}.`);
    this.name = "CakeCacheFileError";
    this.file = file;
  }
}

/** A checkpoint directory bound to one fingerprint. */
export interface BatchCache {
  /** The finished batch m, if present and complete. */
  load(m: number): Promise<BatchRecord | undefined>;
  /** Store a finished batch. */
  save(rec: BatchRecord): Promise<void>;
}

const pad = (m: number) => String(m).padStart(5, "0");

/**
 * Open (or create) a cache directory for a given fingerprint. Throws {@link CakeCacheMismatchError}
 * when the directory already holds a different fingerprint.
 */
export async function openBatchCache(dir: string, fingerprint: unknown): Promise<BatchCache> {
  await Deno.mkdir(dir, { recursive: true });
  const fpPath = `${dir}/cake.json`;
  const want = JSON.stringify(fingerprint);
  let have: string | undefined;
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(fpPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text !== undefined) {
    try {
      have = JSON.stringify(JSON.parse(text));
    } catch (e) {
      throw new CakeCacheFileError(
        fpPath,
        `is not valid JSON (${(e as Error).message})`,
        `delete the folder ${dir} to start the synthesis over, or use another cacheDir`,
      );
    }
  }
  if (have === undefined) {
    await writeAtomic(fpPath, new TextEncoder().encode(JSON.stringify(fingerprint, null, 1)));
  } else if (have !== want) throw new CakeCacheMismatchError(dir, firstDifference(have, want));

  return {
    async load(m) {
      const jsonPath = `${dir}/batch-${pad(m)}.json`, binPath = `${dir}/batch-${pad(m)}.bin`;
      const fix =
        `delete ${jsonPath} and ${binPath} to recompute batch ${m}, or the folder ${dir} to start over`;
      let text: string;
      try {
        text = await Deno.readTextFile(jsonPath);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined; // not finished yet
        throw e;
      }
      let meta: Omit<BatchRecord, "x" | "logits" | "targetClass"> & { sha256?: string };
      try {
        meta = JSON.parse(text);
      } catch (e) {
        throw new CakeCacheFileError(jsonPath, `is not valid JSON (${(e as Error).message})`, fix);
      }
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(binPath);
      } catch (e) {
        throw new CakeCacheFileError(binPath, `cannot be read (${(e as Error).message})`, fix);
      }
      const dims = [meta.n, meta.dim, meta.numClasses];
      if (!dims.every((v) => Number.isSafeInteger(v) && v >= 0)) {
        throw new CakeCacheFileError(jsonPath, `has no valid sizes n, dim, numClasses (${dims})`, fix);
      }
      const want = 12 + 4 * (meta.n * meta.dim + meta.n * meta.numClasses + meta.n);
      if (bytes.length !== want) {
        throw new CakeCacheFileError(
          binPath,
          `has ${bytes.length} bytes, ${want} expected (truncated or corrupt)`,
          fix,
        );
      }
      if (meta.sha256 !== undefined && sha256Hex(bytes) !== meta.sha256) {
        throw new CakeCacheFileError(
          binPath,
          `does not match the SHA-256 recorded in ${jsonPath} (corrupt)`,
          fix,
        );
      }
      const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const [n, dim, k] = new Int32Array(buf, 0, 3);
      if (n !== meta.n || dim !== meta.dim || k !== meta.numClasses) {
        throw new CakeCacheFileError(binPath, `header [${n}, ${dim}, ${k}] disagrees with ${jsonPath}`, fix);
      }
      let off = 12;
      const x = new Float32Array(buf, off, n * dim);
      off += 4 * n * dim;
      const logits = new Float32Array(buf, off, n * k);
      off += 4 * n * k;
      const targetClass = new Int32Array(buf, off, n);
      const { sha256: _sha, ...rest } = meta;
      return { ...rest, x, logits, targetClass };
    },
    async save(rec) {
      const { x, logits, targetClass, ...meta } = rec;
      const bytes = new Uint8Array(12 + 4 * (x.length + logits.length + targetClass.length));
      const head = new Int32Array(bytes.buffer, 0, 3);
      head.set([rec.n, rec.dim, rec.numClasses]);
      let off = 12;
      new Float32Array(bytes.buffer, off, x.length).set(x);
      off += 4 * x.length;
      new Float32Array(bytes.buffer, off, logits.length).set(logits);
      off += 4 * logits.length;
      new Int32Array(bytes.buffer, off, targetClass.length).set(targetClass);
      await writeAtomic(`${dir}/batch-${pad(rec.m)}.bin`, bytes);
      await writeAtomic(
        `${dir}/batch-${pad(rec.m)}.json`,
        new TextEncoder().encode(JSON.stringify({ ...meta, sha256: sha256Hex(bytes) })),
      );
    },
  };
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `cached …${a.slice(Math.max(0, i - 30), i + 30)}… vs requested …${
    b.slice(Math.max(0, i - 30), i + 30)
  }…`;
}
