/**
 * Soft labels from boundary distances (DB3, Wang 2021): z_t = 1/d_t for t ≠ c and z_c = Σ_{t≠c} 1/d_t,
 * so the true class c gets the largest score. The trainer's "kd-db3" loss uses z as logits with
 * temperature τ (20 by default): p = softmax(z/τ).
 *
 * The 1/d blow-up: a sample the teacher already misclassifies as t has d_t ≈ the search tolerance
 * (1e-5), so z_t ≈ z_c ≈ 10^5. Its target softmax(z/τ) puts all mass on c and t and none elsewhere,
 * while an ordinary sample's target at τ = 20 is nearly flat (z ≈ 0.2–3, so z/τ ≈ 0.01–0.15): the few
 * such samples can dominate the summed KL term (the likely cause of the reference's weak BD student).
 * Samples are flagged when the teacher's label of x0 differs from y (if known) or when their smallest
 * off-class distance is at most `flagBelow`. Remedies (options): a distance floor — fixed, or a
 * quantile of all off-class distances — and dropping flagged samples.
 */

/** Soft-label options. */
export interface SoftLabelOptions {
  /** Clamp every off-class distance to at least this value (fixed number, or a quantile in [0,1] of all
   * finite off-class distances). Default: no floor (reference behaviour). */
  floor?: number | { quantile: number };
  /** Leave flagged samples out of `keep` (default false: keep all, reference behaviour). */
  dropFlagged?: boolean;
  /** Flag samples whose smallest off-class distance is ≤ this (default 1e-4, ten bisection tolerances). */
  flagBelow?: number;
  /** Teacher's label of each x0 (e.g. `BdResult.teacherLabels`); mismatches with y are flagged. */
  teacherLabels?: Int32Array;
  /** 1 where a query budget cut the sample's searches short (e.g. `Db3Distances.exhausted`). */
  exhausted?: Uint8Array;
}

/** Soft labels and what was done to get them. */
export interface SoftLabels {
  /** z (n×K), row-major, used as logits by the "kd-db3" loss. */
  z: Float32Array;
  /** Indices of flagged samples (misclassified by the teacher or distance ≤ flagBelow). */
  flagged: Int32Array;
  /** Indices of the samples to train on (all, or all but the flagged with `dropFlagged`). */
  keep: Int32Array;
  /** Distance floor applied (0 when none). */
  floor: number;
  /** Largest |z| (to see a blow-up at a glance). */
  maxLogit: number;
  /**
   * Indices of samples whose distances a query budget cut short: best-so-far upper bounds, not the
   * searched minimum (kept for training; listed so tables and records can say so).
   */
  budgetCut: Int32Array;
}

/** The q-quantile (linear interpolation) of the finite off-class distances. */
export function distanceQuantile(distances: Float32Array, y: Int32Array, k: number, q: number): number {
  const v: number[] = [];
  for (let i = 0; i < y.length; i++) {
    for (let t = 0; t < k; t++) {
      const d = distances[i * k + t];
      if (t !== y[i] && Number.isFinite(d)) v.push(d);
    }
  }
  if (v.length === 0) return 0;
  v.sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (v.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/** z from distances d (n×K; the true-class entry is ignored). */
export function softLabelsFromDistances(
  distances: Float32Array,
  y: Int32Array,
  numClasses: number,
  opts: SoftLabelOptions = {},
): SoftLabels {
  const k = numClasses, n = y.length;
  const flagBelow = opts.flagBelow ?? 1e-4;
  const floor = opts.floor === undefined
    ? 0
    : typeof opts.floor === "number"
    ? opts.floor
    : distanceQuantile(distances, y, k, opts.floor.quantile);
  const z = new Float32Array(n * k);
  const flagged: number[] = [];
  const keep: number[] = [];
  let maxLogit = 0;
  for (let i = 0; i < n; i++) {
    const c = y[i];
    let sum = 0, minD = Infinity;
    for (let t = 0; t < k; t++) {
      if (t === c) continue;
      const raw = distances[i * k + t];
      minD = Math.min(minD, raw);
      const d = Math.max(raw, floor);
      const inv = d > 0 ? 1 / d : Infinity;
      z[i * k + t] = inv;
      sum += inv;
    }
    z[i * k + c] = sum;
    maxLogit = Math.max(maxLogit, sum);
    const mis = opts.teacherLabels !== undefined && opts.teacherLabels[i] >= 0 && opts.teacherLabels[i] !== c;
    const isFlagged = mis || minD <= flagBelow;
    if (isFlagged) flagged.push(i);
    if (!(isFlagged && opts.dropFlagged)) keep.push(i);
  }
  const budgetCut: number[] = [];
  if (opts.exhausted) { for (let i = 0; i < n; i++) if (opts.exhausted[i]) budgetCut.push(i); }
  return {
    z,
    flagged: Int32Array.from(flagged),
    keep: Int32Array.from(keep),
    floor,
    maxLogit,
    budgetCut: Int32Array.from(budgetCut),
  };
}
