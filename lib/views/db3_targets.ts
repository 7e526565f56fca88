/**
 * Views of a DB3 run's soft targets: teacher-misclassified ("flagged") samples with their nearest
 * boundaries and images, p = softmax(z/τ) and its statistics (entropy, the flagged samples' share of
 * the KD term's pull), and one diagnostic row per soft-label method.
 *
 * @module
 */
import type { LabeledData } from "../data/mod.ts";
import { distanceQuantile } from "../db3/soft_labels.ts";
import type { Db3TableResult } from "../experiments/db3.ts";
import { DB3_METHOD_TITLES } from "./db3_table.ts";

const pct = (v: number) => 100 * v;

/** Smallest off-class distance of sample i and its class. */
export function nearest(d: Float32Array, y: Int32Array, k: number, i: number): { d: number; t: number } {
  let best = Infinity, bt = -1;
  for (let t = 0; t < k; t++) {
    if (t !== y[i] && d[i * k + t] < best) {
      best = d[i * k + t];
      bt = t;
    }
  }
  return { d: best, t: bt };
}

/** Indices flagged by any method (teacher misclassifies x0, or a distance ≤ the flag threshold). */
export function db3FlaggedIndices(r: Db3TableResult): number[] {
  const s = new Set<number>();
  for (const sl of Object.values(r.softLabels)) for (const i of sl?.flagged ?? []) s.add(i);
  return [...s].sort((a, b) => a - b);
}

/** One row per flagged sample: labels, nearest boundary per method, and its largest soft logit. */
export function db3FlaggedRows(r: Db3TableResult): Record<string, string | number>[] {
  const k = r.samples.numClasses, y = r.samples.y;
  const teacher = (r.distances.bd ?? r.distances.mbd)?.teacherLabels;
  return db3FlaggedIndices(r).map((i) => {
    const row: Record<string, string | number> = {
      sample: i,
      label: y[i],
      "teacher label": teacher?.[i] ?? -1,
    };
    for (const m of ["sd", "bd", "mbd"] as const) {
      const d = r.distances[m];
      if (!d) continue;
      const nb = nearest(d.distances, y, k, i);
      row[`${m} nearest class`] = nb.t;
      row[`${m} distance`] = nb.d;
      const z = r.softLabels[m]?.z;
      if (z) row[`${m} max z`] = Math.max(...z.subarray(i * k, (i + 1) * k));
    }
    return row;
  });
}

/** Images of the flagged samples (at most `limit`), captioned `y→teacher`. */
export function db3FlaggedImages(
  r: Db3TableResult,
  limit = 20,
): { x: Float32Array; shape: number[]; labels: string[] } {
  return pickImages(r.samples, db3FlaggedIndices(r).slice(0, limit), (i) => {
    const t = (r.distances.bd ?? r.distances.mbd)?.teacherLabels[i] ?? -1;
    return `#${i} ${r.samples.y[i]}→${t}`;
  });
}

/** Gather images by index. */
export function pickImages(
  d: LabeledData,
  idx: number[],
  label: (i: number) => string,
): { x: Float32Array; shape: number[]; labels: string[] } {
  const per = d.shape.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(idx.length * per);
  idx.forEach((i, j) => x.set(d.x.subarray(i * per, (i + 1) * per), j * per));
  return { x, shape: [idx.length, ...d.shape.slice(1)], labels: idx.map(label) };
}

/** softmax(z/τ) of one row. */
export function softTarget(z: ArrayLike<number>, tau: number): number[] {
  const v = Array.from(z, (a) => a / tau);
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / s);
}

/** Statistics of the soft targets p = softmax(z/τ) a student trains on. */
export interface TargetStats {
  /** Median finite off-class distance. */
  medianDistance: number;
  /** Largest z. */
  maxLogit: number;
  /** Mean target probability of the true class. */
  meanTrueProb: number;
  /** Mean entropy of p divided by log K (1 = uniform). */
  meanEntropy: number;
  /** Flagged samples. */
  flagged: number;
  /** Share of Σ_i KL(p_i ‖ uniform) — the KD term's pull at a uniform student — from flagged samples. */
  flaggedLossShare: number;
}

/** {@link TargetStats} of soft labels `z` (n×K) from `distances`. */
export function targetStats(
  z: Float32Array,
  distances: Float32Array,
  y: Int32Array,
  k: number,
  tau: number,
  flagged: ArrayLike<number>,
): TargetStats {
  const n = y.length;
  const isFlagged = new Set(Array.from(flagged));
  let trueP = 0, ent = 0, kl = 0, klFlagged = 0, maxLogit = 0;
  for (let i = 0; i < n; i++) {
    const p = softTarget(z.subarray(i * k, (i + 1) * k), tau);
    let h = 0;
    for (const q of p) if (q > 0) h -= q * Math.log(q);
    const kli = Math.log(k) - h;
    trueP += p[y[i]];
    ent += h / Math.log(k);
    kl += kli;
    if (isFlagged.has(i)) klFlagged += kli;
    for (let t = 0; t < k; t++) maxLogit = Math.max(maxLogit, z[i * k + t]);
  }
  return {
    medianDistance: distanceQuantile(distances, y, k, 0.5),
    maxLogit,
    meanTrueProb: trueP / n,
    meanEntropy: ent / n,
    flagged: isFlagged.size,
    flaggedLossShare: kl > 0 ? klFlagged / kl : 0,
  };
}

/** Per soft-label method: distances, targets at the run's τ, flagged samples and their pull. */
export function db3DiagnosticRows(r: Db3TableResult): Record<string, string | number>[] {
  const k = r.samples.numClasses, tau = r.settings.student.temperature;
  const out: Record<string, string | number>[] = [];
  for (const m of ["sd", "bd", "mbd"] as const) {
    const d = r.distances[m], s = r.softLabels[m];
    if (!d || !s) continue;
    const st = targetStats(s.z, d.distances, r.samples.y, k, tau, s.flagged);
    const row = r.rows.find((x) => x.method === m);
    out.push({
      method: DB3_METHOD_TITLES[m],
      "median distance": st.medianDistance,
      "max z": st.maxLogit,
      [`mean p(true) at τ=${tau}`]: st.meanTrueProb,
      "mean entropy / log K": st.meanEntropy,
      flagged: st.flagged,
      "flagged share of KD pull": st.flaggedLossShare,
      "final acc (%)": row ? pct(row.testAcc) : NaN,
      "best-epoch acc (%)": row?.bestTestAcc != null ? pct(row.bestTestAcc) : NaN,
    });
  }
  return out;
}
