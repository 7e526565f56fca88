/**
 * Views of the DB3 ablations (notebook 13): rows of each part, how distances shrink with queries, the
 * budget verdict, soft-label examples next to their images, and the remedies' transfer set (flagged
 * samples, what each remedy does to the targets).
 *
 * @module
 */
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import type { Db3TableMethod, Db3TableResult } from "../experiments/db3.ts";
import { bdQueriesPerPair } from "../experiments/db3abl_units.ts";
import { type Db3AblationResult, type Db3AblationRow, db3Remedies } from "../experiments/db3abl_spec.ts";
import { pairedCurves } from "../results/verdict.ts";
import { DB3_METHOD_TITLES, modelTitle } from "./db3_table.ts";
import { db3FlaggedIndices, nearest, pickImages, softTarget, targetStats } from "./db3_targets.ts";

const pct = (v: number) => 100 * v;

/** How distances shrink with queries: per budget, over all (sample, other class) pairs. */
export interface DistanceCurvePoint {
  /** Queries per (sample, class); BD's point is its mean spend. */
  queries: number;
  what: string;
  /** Median and mean of finite distances; pairs with no boundary point found yet. */
  median: number;
  mean: number;
  missing: number;
  /** Median of d / d_BD over pairs finite in both. */
  medianRatioToBd: number;
}

/** Distances as they shrink with queries (BD, then each MBD snapshot). */
export function distanceCurve(base: Db3TableResult): DistanceCurvePoint[] {
  const bd = base.distances.bd, mbd = base.distances.mbd;
  if (!bd) return [];
  const k = base.samples.numClasses, y = base.samples.y;
  const point = (d: Float32Array, queries: number, what: string): DistanceCurvePoint => {
    const v: number[] = [], ratio: number[] = [];
    let missing = 0;
    for (let i = 0; i < y.length; i++) {
      for (let t = 0; t < k; t++) {
        if (t === y[i]) continue;
        const a = d[i * k + t], b = bd.distances[i * k + t];
        if (!Number.isFinite(a)) {
          missing++;
          continue;
        }
        v.push(a);
        if (Number.isFinite(b) && b > 0) ratio.push(a / b);
      }
    }
    const med = (a: number[]) => {
      if (!a.length) return NaN;
      const s = [...a].sort((p, q) => p - q);
      return s[Math.floor((s.length - 1) / 2)];
    };
    return {
      queries,
      what,
      median: med(v),
      mean: v.length ? v.reduce((p, q) => p + q, 0) / v.length : NaN,
      missing,
      medianRatioToBd: med(ratio),
    };
  };
  const bdQueries = bdQueriesPerPair(base);
  const out = [point(bd.distances, bdQueries, "BD")];
  if (mbd?.snapshots) {
    mbd.snapshots.queries.forEach((q, s) => out.push(point(mbd.snapshots!.distances[s], q, `MBD ≤ ${q}`)));
  }
  return out;
}

/** Rows of one part, accuracies in percent (for a table or chart). */
export function ablationRows(r: Db3AblationResult, part: Db3AblationRow["part"]): Record<string, unknown>[] {
  return r.rows.filter((x) => x.part === part).map((x) => ({
    variant: x.part === "methods" ? DB3_METHOD_TITLES[x.variant as Db3TableMethod] : x.variant,
    student: modelTitle(x.student),
    "final acc (%)": pct(x.testAcc),
    "best-epoch acc (%)": x.bestTestAcc === null ? null : pct(x.bestTestAcc),
    "budget (queries / pair)": x.budget === null ? null : Math.round(x.budget),
    τ: x.temperature,
    "trained on": x.trainedOn,
    flagged: x.flagged,
    "max z": x.maxLogit,
    epochs: x.epochs,
  }));
}

/**
 * A computed comment on the budget part: does student accuracy move with the query budget, and
 * do the boundary distances (`curve`, default {@link distanceCurve} of the run)? Accuracy counts as flat
 * within twice the standard error of a difference of two test accuracies on `testN` images (at least 1
 * point); distances within 5 %.
 */
export function budgetVerdict(
  r: Pick<Db3AblationResult, "rows" | "testN" | "base">,
  curve: Pick<DistanceCurvePoint, "queries" | "median">[] = distanceCurve(r.base),
): string {
  const acc = r.rows.filter((x) => x.part === "budget" && x.budget !== null)
    .map((x) => ({ x: Math.round(x.budget!), y: pct(x.testAcc) }));
  const dist = curve.filter((p) => Number.isFinite(p.median)).map((p) => ({
    x: Math.round(p.queries),
    y: p.median,
  }));
  if (acc.length < 2 || dist.length < 2) return "Too few budget points for a verdict (need at least two).";
  const p = acc.reduce((a, b) => a + b.y, 0) / acc.length / 100;
  const noise = 100 * 2 * Math.sqrt((2 * p * (1 - p)) / Math.max(1, r.testN));
  return pairedCurves(
    { points: acc, opts: { what: "student accuracy", xName: "budget", minEffect: Math.max(1, noise) } },
    { points: dist, opts: { what: "the median boundary distance", xName: "budget", relative: true } },
  ).sentence;
}

/** Soft-label examples: per sample, its image and p = softmax(z/τ) per method. */
export function softLabelExamples(
  base: Db3TableResult,
  idx: number[],
): {
  i: number;
  image: { x: Float32Array; shape: number[]; labels: string[] };
  bars: Record<string, unknown>[];
}[] {
  const k = base.samples.numClasses, tau = base.settings.student.temperature;
  return idx.map((i) => {
    const bars: Record<string, unknown>[] = [];
    for (const m of ["sd", "bd", "mbd"] as const) {
      const z = base.softLabels[m]?.z;
      if (!z) continue;
      softTarget(z.subarray(i * k, (i + 1) * k), tau).forEach((p, c) =>
        bars.push({ class: String(c), method: m.toUpperCase(), p })
      );
    }
    const teacher = base.distances.bd?.teacherLabels[i] ?? -1;
    return {
      i,
      image: pickImages(base.samples, [i], () => `#${i} y=${base.samples.y[i]} T=${teacher}`),
      bars,
    };
  });
}

/** Sample indices for soft-label examples: the first sample of `perClasses` classes, then flagged ones. */
export function exampleIndices(base: Db3TableResult, classes = 3, flagged = 2): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < base.samples.y.length && seen.size < classes; i++) {
    if (!seen.has(base.samples.y[i])) {
      seen.add(base.samples.y[i]);
      out.push(i);
    }
  }
  for (const i of db3FlaggedIndices(base).slice(0, flagged)) if (!out.includes(i)) out.push(i);
  return out;
}

/** Flagged samples of the remedies' transfer set: labels, nearest boundary and largest logit (BD, MBD). */
export function stressFlaggedRows(r: Db3AblationResult): Record<string, string | number>[] {
  const st = r.stress;
  if (!st) return [];
  const k = st.samples.numClasses, y = st.samples.y;
  const sl = {
    bd: softLabelsFromDistances(st.distances.bd, y, k, { teacherLabels: st.teacherLabels }),
    mbd: softLabelsFromDistances(st.distances.mbd, y, k, { teacherLabels: st.teacherLabels }),
  };
  const n0 = r.base.samples.y.length;
  const idx = [...new Set([...sl.bd.flagged, ...sl.mbd.flagged])].sort((a, b) => a - b);
  return idx.map((i) => {
    const row: Record<string, string | number> = {
      sample: i,
      origin: i < n0 ? "base set" : `added (train #${st.added[i - n0]})`,
      label: y[i],
      "teacher label": st.teacherLabels[i],
    };
    for (const m of ["bd", "mbd"] as const) {
      const nb = nearest(st.distances[m], y, k, i);
      row[`${m} nearest class`] = nb.t;
      row[`${m} distance`] = nb.d;
      row[`${m} max z`] = Math.max(...sl[m].z.subarray(i * k, (i + 1) * k));
    }
    return row;
  });
}

/** Images of the flagged samples of the remedies' transfer set, captioned `#i y→teacher`. */
export function stressFlaggedImages(
  r: Db3AblationResult,
): { x: Float32Array; shape: number[]; labels: string[] } {
  const st = r.stress;
  if (!st) return { x: new Float32Array(0), shape: [0, ...r.base.samples.shape.slice(1)], labels: [] };
  const idx = stressFlaggedRows(r).map((x) => Number(x.sample));
  return pickImages(st.samples, idx, (i) => `#${i} ${st.samples.y[i]}→${st.teacherLabels[i]}`);
}

/** What each remedy does to the targets of the remedies' transfer set (floor, max z, kept, flagged pull). */
export function remedyTargetRows(r: Db3AblationResult): Record<string, string | number>[] {
  const st = r.stress;
  if (!st) return [];
  const k = st.samples.numClasses, y = st.samples.y, tau = r.base.settings.student.temperature;
  const out: Record<string, string | number>[] = [];
  for (const m of ["bd", "mbd"] as const) {
    const d = st.distances[m];
    for (const [name, o] of db3Remedies(r.settings.floor)) {
      const s = softLabelsFromDistances(d, y, k, { ...o, teacherLabels: st.teacherLabels });
      const keepSet = new Set(s.keep);
      const flaggedKept = Array.from(s.flagged).filter((i) => keepSet.has(i));
      const ts = targetStats(s.z, d, y, k, tau, flaggedKept);
      out.push({
        variant: `${m.toUpperCase()}, ${name}`,
        floor: s.floor,
        "max z": s.maxLogit,
        "trained on": s.keep.length,
        "flagged trained on": flaggedKept.length,
        "flagged share of KD pull": o.dropFlagged ? 0 : ts.flaggedLossShare,
      });
    }
  }
  return out;
}
