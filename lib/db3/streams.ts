/**
 * Inputs shared by the DB3 labelers: the samples x0 to label and, per class t, a seeded stream of
 * class-t training images whose directions (x_i − x0) start the boundary searches.
 *
 * A sample's candidates are fixed by (seed, sample id, t) alone — not by chunking or batch order —
 * so an interrupted labeling run that resumes on a later chunk draws exactly the same candidates.
 */
import { findNonFinitePixel } from "../oracle/admission.ts";
import { checkLabels, InputError } from "../util/checks.ts";

export { checkLabels };
import { Rng } from "../util/rng.ts";

/** Samples to label (a `LabeledData` fits). Images are NHWC float32 in [0,1]. */
export interface Db3Samples {
  x: Float32Array;
  y: Int32Array;
  /** [n, h, w, c] (or [n, d]). */
  shape: number[];
  numClasses: number;
  /** Stable id of each sample (default 0..n−1); keys the ledger and the candidate draw. */
  ids?: Int32Array;
}

/** Per-class image streams (the "training data available" of DB3). */
export interface ClassStreams {
  /** Pool images, row-major, `dim` floats each. */
  x: Float32Array;
  /** Floats per image. */
  dim: number;
  /** For each class t, indices into `x` of class-t images, in a seeded order. */
  byClass: Int32Array[];
  /** Seed that fixed the order and the per-sample offsets. */
  seed: number;
}

/**
 * Check DB3 samples before any query: labels in [0, K), `shape` = [n, ...one image] with n = y.length
 * and x.length = n·dim, finite pixels, ids one per sample, and — when the teacher is given — one image of the
 * teacher's input shape and the teacher's K. Throws {@link InputError} saying what to fix.
 */
export function checkDb3Samples(
  s: Db3Samples,
  what: string,
  teacher?: { inputShape: number[]; numClasses: number },
): void {
  const n = s.y.length;
  const img = s.shape.slice(1);
  if (s.shape[0] !== n || s.x.length !== n * img.reduce((a, b) => a * b, 1)) {
    throw new InputError(
      `${what}: shape [${s.shape}] does not match ${n} labels and ${s.x.length} pixel values; ` +
        `pass shape [n, h, w, c] with n = y.length and x.length = n·h·w·c`,
    );
  }
  if (s.ids && s.ids.length !== n) {
    throw new InputError(`${what}: ${s.ids.length} ids for ${n} samples; pass one id per sample`);
  }
  if (teacher) {
    if (img.length !== teacher.inputShape.length || img.some((d, i) => d !== teacher.inputShape[i])) {
      throw new InputError(
        `${what}: images of shape [${img}] do not fit the teacher's input [${teacher.inputShape}]; ` +
          `use samples from the dataset the teacher was trained on (or a teacher for this dataset)`,
      );
    }
    if (s.numClasses !== teacher.numClasses) {
      throw new InputError(
        `${what}: samples have K = ${s.numClasses} classes but the teacher has ${teacher.numClasses}; ` +
          `use samples from the dataset the teacher was trained on`,
      );
    }
  }
  checkLabels(s.y, s.numClasses, what);
  const hit = findNonFinitePixel(s.x, n, s.x.length / Math.max(1, n));
  if (hit) {
    throw new InputError(
      `${what}: sample ${hit.sample} has a non-finite pixel (${hit.value} at offset ${hit.pixel}); ` +
        `images must be finite (in [0, 1]): fix or drop that sample`,
    );
  }
}

/**
 * Build class streams from a labelled pool (usually the training set): each class's indices in a
 * seeded random order, at most `perClass` of them (default: all).
 */
export function makeClassStreams(
  pool: { x: Float32Array; y: Int32Array; shape: number[]; numClasses: number },
  seed: number,
  opts: { perClass?: number } = {},
): ClassStreams {
  const n = pool.y.length;
  const dim = pool.shape.slice(1).reduce((a, b) => a * b, 1);
  checkLabels(pool.y, pool.numClasses, "makeClassStreams pool");
  if (pool.x.length < n * dim) {
    throw new InputError(
      `makeClassStreams pool: ${pool.x.length} pixel values cannot hold ${n} images of shape ` +
        `[${pool.shape.slice(1)}]; pass at least n·dim values (one label per image)`,
    );
  }
  const rng = new Rng(seed);
  const lists: number[][] = Array.from({ length: pool.numClasses }, () => []);
  for (let i = 0; i < n; i++) lists[pool.y[i]].push(i);
  const byClass = lists.map((l) => {
    const p = rng.permutation(l.length);
    const m = Math.min(l.length, opts.perClass ?? l.length);
    const out = new Int32Array(m);
    for (let j = 0; j < m; j++) out[j] = l[p[j]];
    return out;
  });
  return { x: pool.x, dim, byClass, seed };
}

/** Ids of the samples (given, or 0..n−1). */
export function sampleIds(s: Db3Samples): Int32Array {
  return s.ids ?? Int32Array.from({ length: s.y.length }, (_, i) => i);
}

/** Floats per sample image. */
export function sampleDim(s: Db3Samples): number {
  return s.shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * The first `count` stream images of class t for sample `id`: a window of the class-t stream that
 * starts at an offset drawn from (seed, id, t). Returns pool indices (repeats only if the stream is
 * shorter than `count`; none if the stream is empty).
 */
export function candidatesFor(streams: ClassStreams, id: number, t: number, count: number): Int32Array {
  const list = streams.byClass[t];
  const len = list.length;
  if (len === 0) return new Int32Array(0);
  const off = new Rng(((streams.seed * 0x9e3779b1) ^ (id * 0x85ebca6b) ^ (t * 0xc2b2ae35)) >>> 0).int(len);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = list[(off + i) % len];
  return out;
}

/** ||a − b|| over `dim` floats at the given offsets. */
export function l2Between(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let k = 0; k < dim; k++) {
    const d = a[ao + k] - b[bo + k];
    s += d * d;
  }
  return Math.sqrt(s);
}
