/**
 * Seeded 2-D toy datasets for the decision-boundary figures: two interleaving moons, Gaussian blobs,
 * and a regular grid of points on which a classifier's decision field is evaluated.
 */
import { Rng } from "../util/rng.ts";
import type { LabeledData } from "./types.ts";

/** Options of {@link twoMoons}. */
export interface TwoMoonsOptions {
  /** Number of points (the outer moon gets ⌊n/2⌋, the inner one the rest). */
  n: number;
  /** Standard deviation of the Gaussian noise added to each coordinate (default 0.3). */
  noise?: number;
  /** Seed of the noise and of the shuffle. */
  seed: number;
  /** Standardise each coordinate to zero mean and unit variance (default true). */
  standardize?: boolean;
  /** Shuffle the points (default true); otherwise outer moon first, then inner. */
  shuffle?: boolean;
  /** Value of the result's `split` field (default `"train"`), e.g. `"test"` for a second draw. */
  split?: string;
}

/**
 * Two interleaving half circles (the scikit-learn `make_moons` definition): outer moon
 * (cos t, sin t) with label 0, inner moon (1 − cos t, 1 − sin t − 0.5) with label 1, t evenly spaced
 * in [0, π] per moon, plus N(0, noise²) on each coordinate, then (by default) each coordinate
 * standardised with the population standard deviation. Deterministic given `seed`.
 */
export function twoMoons(opts: TwoMoonsOptions): LabeledData {
  const { n, seed } = opts;
  checkCount(n, "twoMoons");
  const noise = opts.noise ?? 0.3;
  const rng = new Rng(seed);
  const nOut = Math.floor(n / 2);
  const nIn = n - nOut;
  const px = new Float64Array(n);
  const py = new Float64Array(n);
  const labels = new Int32Array(n);
  const step = (k: number, m: number) => (m > 1 ? (Math.PI * k) / (m - 1) : 0);
  for (let i = 0; i < nOut; i++) {
    const t = step(i, nOut);
    px[i] = Math.cos(t);
    py[i] = Math.sin(t);
  }
  for (let i = 0; i < nIn; i++) {
    const t = step(i, nIn);
    px[nOut + i] = 1 - Math.cos(t);
    py[nOut + i] = 1 - Math.sin(t) - 0.5;
    labels[nOut + i] = 1;
  }
  if (noise > 0) {
    for (let i = 0; i < n; i++) {
      px[i] += noise * rng.normal();
      py[i] += noise * rng.normal();
    }
  }
  if (opts.standardize ?? true) {
    standardizeInPlace(px);
    standardizeInPlace(py);
  }
  const order = (opts.shuffle ?? true) ? rng.permutation(n) : identity(n);
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i];
    x[2 * i] = px[j];
    x[2 * i + 1] = py[j];
    y[i] = labels[j];
  }
  return {
    name: "two-moons",
    split: opts.split ?? "train",
    x,
    y,
    shape: [n, 2],
    numClasses: 2,
    classNames: ["0", "1"],
  };
}

/** Options of {@link blobs}. */
export interface BlobsOptions {
  /** Number of points, spread as evenly as possible over the centres (earlier centres get the rest). */
  n: number;
  /** Number of centres (drawn uniformly in `box` per coordinate), or the centres themselves. */
  centers: number | number[][];
  /** Standard deviation of each blob per coordinate (default 1). */
  std?: number;
  /** Seed of the centres, the noise and the shuffle. */
  seed: number;
  /** Dimension when `centers` is a count (default 2). */
  dim?: number;
  /** Range of random centres per coordinate (default [-10, 10]). */
  box?: [number, number];
  /** Shuffle the points (default true). */
  shuffle?: boolean;
  /** Value of the result's `split` field (default `"train"`). */
  split?: string;
}

/** Isotropic Gaussian blobs, one class per centre (like scikit-learn `make_blobs`). Deterministic given `seed`. */
export function blobs(opts: BlobsOptions): LabeledData {
  const { n, seed } = opts;
  checkCount(n, "blobs");
  const std = opts.std ?? 1;
  const rng = new Rng(seed);
  let centers: number[][];
  if (typeof opts.centers === "number") {
    const k = opts.centers;
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`blobs: centers must be a positive integer, got ${k}`);
    }
    const dim = opts.dim ?? 2;
    const [lo, hi] = opts.box ?? [-10, 10];
    centers = Array.from(
      { length: k },
      () => Array.from({ length: dim }, () => lo + (hi - lo) * rng.uniform()),
    );
  } else {
    centers = opts.centers.map((c) => [...c]);
    if (centers.length === 0) throw new RangeError("blobs: centers must not be empty");
  }
  const k = centers.length;
  const dim = centers[0].length;
  if (centers.some((c) => c.length !== dim)) {
    throw new RangeError("blobs: all centres must have the same dimension");
  }
  const raw = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  let row = 0;
  for (let c = 0; c < k; c++) {
    const count = Math.floor(n / k) + (c < n % k ? 1 : 0);
    for (let i = 0; i < count; i++, row++) {
      labels[row] = c;
      for (let d = 0; d < dim; d++) raw[row * dim + d] = centers[c][d] + std * rng.normal();
    }
  }
  const order = (opts.shuffle ?? true) ? rng.permutation(n) : identity(n);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i];
    x.set(raw.subarray(j * dim, (j + 1) * dim), i * dim);
    y[i] = labels[j];
  }
  return {
    name: "blobs",
    split: opts.split ?? "train",
    x,
    y,
    shape: [n, dim],
    numClasses: k,
    classNames: Array.from({ length: k }, (_, i) => String(i)),
  };
}

/** Options of {@link grid2d}. */
export interface Grid2dOptions {
  /** Lower bound of both axes (default −2). */
  lo?: number;
  /** Upper bound of both axes (default 2). */
  hi?: number;
  /** Points per axis, including both ends (default 200). */
  steps?: number;
}

/** A regular 2-D grid for decision-field plots. */
export interface Grid2d {
  /** Points row-major: point `i * steps + j` is `(axis[j], axis[i])` (x varies fastest). */
  points: Float32Array;
  /** `[steps * steps, 2]`. */
  shape: [number, number];
  /** Coordinates along each axis, `lo` … `hi`. */
  axis: Float32Array;
  /** Points per axis. */
  steps: number;
}

/** Evenly spaced grid over [lo, hi]² for evaluating a classifier's decision field. */
export function grid2d(opts: Grid2dOptions = {}): Grid2d {
  const lo = opts.lo ?? -2;
  const hi = opts.hi ?? 2;
  const steps = opts.steps ?? 200;
  if (!Number.isInteger(steps) || steps < 2) {
    throw new RangeError(`grid2d: steps must be an integer ≥ 2, got ${steps}`);
  }
  const axis = new Float32Array(steps);
  for (let i = 0; i < steps; i++) axis[i] = lo + ((hi - lo) * i) / (steps - 1);
  const points = new Float32Array(steps * steps * 2);
  for (let i = 0; i < steps; i++) {
    for (let j = 0; j < steps; j++) {
      const o = 2 * (i * steps + j);
      points[o] = axis[j];
      points[o + 1] = axis[i];
    }
  }
  return { points, shape: [steps * steps, 2], axis, steps };
}

function standardizeInPlace(v: Float64Array): void {
  const n = v.length;
  if (n === 0) return;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
  const sd = Math.sqrt(ss / n);
  for (let i = 0; i < n; i++) v[i] = sd > 0 ? (v[i] - mean) / sd : 0;
}

function identity(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

function checkCount(n: number, who: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${who}: n must be a non-negative integer, got ${n}`);
  }
}
