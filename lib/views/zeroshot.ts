/**
 * What notebooks 30–33 show of a zsdb3kd result: table rows, image grids, histogram rows and the
 * computed verdicts. Plain data; the notebooks only render it.
 *
 * @module
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { formatSeeds } from "../results/seeds.ts";
import { curveVerdict } from "../results/verdict.ts";
import { type PseudoSet, snapshotX } from "../zeroshot/generate.ts";
import type { ZeroShotResult, ZeroShotSeedsResult } from "../experiments/zs_collect.ts";

const pct = (v: number) => 100 * v;

/** Mean and sample standard deviation. */
export function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

/** Over the seeds: each variant's last student (mean, std, values, mean queries). */
export interface VariantSummary {
  variant: "zsdb3kd" | "noise";
  mean: number;
  std: number;
  values: number[];
  meanQueries: number;
}

/**
 * The zsdb3kd-vs-noise summary over the seeds, and the gap: zsdb3kd − noise per seed, and whether
 * the mean gap exceeds both seed-to-seed spreads (false with one seed: there is no spread to beat),
 * with `verdict` saying it in words.
 */
export function seedSummary(r: ZeroShotSeedsResult): {
  summary: VariantSummary[];
  gap: { perSeed: number[]; mean: number; spread: number; beatsSpread: boolean; verdict: string };
} {
  const runs = r.runs;
  const pick = (v: "zsdb3kd" | "noise") =>
    runs.map((x) => x.students.filter((s) => s.variant === v).sort((a, b) => b.iteration - a.iteration)[0]);
  const summary = (["zsdb3kd", "noise"] as const).map((variant) => {
    const rows = pick(variant).filter((s) => s !== undefined);
    const values = rows.map((s) => s.testAcc);
    return { variant, ...meanStd(values), values, meanQueries: meanStd(rows.map((s) => s.queries)).mean };
  });
  const z = pick("zsdb3kd"), n = pick("noise");
  const perSeed = runs.flatMap((_, i) => (z[i] && n[i] ? [z[i].testAcc - n[i].testAcc] : []));
  const mean = meanStd(perSeed).mean;
  const spread = Math.max(summary[0].std, summary[1].std);
  const beatsSpread = runs.length >= 2 && mean > spread;
  const verdict = runs.length < 2
    ? "not compared with a spread (one seed: run several to measure it)"
    : `${beatsSpread ? "larger" : "not larger"} than the seed-to-seed spread`;
  return { summary, gap: { perSeed, mean, spread, beatsSpread, verdict } };
}

/** Paper vs measured, side by side (accuracies in percent; measured = mean ± std over seeds). */
export function paperVsMeasuredRows(r: ZeroShotSeedsResult): Record<string, string | number | null>[] {
  const run0 = r.runs[0];
  const fmt = (m: { values: number[] }) => formatSeeds(m.values.map(pct));
  const teacher = meanStd(r.runs.map((x) => x.teacher.testAcc));
  const { summary } = seedSummary(r);
  const z = summary.find((s) => s.variant === "zsdb3kd")!;
  const n = summary.find((s) => s.variant === "noise")!;
  const last = run0.students.filter((s) => s.variant === "zsdb3kd").at(-1)?.iteration ?? 0;
  return [
    {
      model: `teacher ${run0.teacher.name}`,
      "paper (%)": run0.paperTeacherAcc,
      "measured (%)": `${pct(teacher.mean).toFixed(2)} (one teacher)`,
      "teacher queries (mean per seed)": null,
    },
    {
      model: `ZSDB3KD student, iteration ${last}`,
      "paper (%)": run0.paperAcc,
      "measured (%)": fmt(z),
      "teacher queries (mean per seed)": Math.round(z.meanQueries),
    },
    {
      model: "student on iteration-0 noise (same samples, same labeling)",
      "paper (%)": null,
      "measured (%)": fmt(n),
      "teacher queries (mean per seed)": Math.round(n.meanQueries),
    },
  ];
}

/** One row per seed: both students and the total queries of the pipeline. */
export function perSeedRows(r: ZeroShotSeedsResult): Record<string, number | string>[] {
  return r.runs.map((run) => {
    const z = run.students.filter((s) => s.variant === "zsdb3kd").at(-1)!;
    const n = run.students.find((s) => s.variant === "noise")!;
    return {
      seed: run.seed,
      "zsdb3kd (%)": pct(z.testAcc),
      "noise (%)": pct(n.testAcc),
      "gap (points)": pct(z.testAcc - n.testAcc),
      "pseudo samples": run.set.y.length,
      "total teacher queries": run.totalQueries,
      "max queries of one sample": run.maxSampleSpend,
      "per-sample budget": run.perSampleBudget,
      "generation (unit s)": run.generationSeconds,
    };
  });
}

/** What each class's initialisation cost (first round). */
export function initCostRows(set: PseudoSet): Record<string, number | string | boolean | null>[] {
  const r = set.init[0];
  return r.reached.map((reached, c) => ({
    class: c,
    reached,
    "reference noise": r.fromDraws[c].reference,
    "smooth noise": r.fromDraws[c].smooth,
    strokes: r.fromDraws[c].strokes,
    walked: r.walked[c],
    "shared draws until first": r.drawsToFirst[c],
    "shared draws until full": r.drawsWhenFilled[c],
    "walk queries (own)": r.walkQueries[c],
    "share of reference draws (%)": pct(r.drawLabels.reference[c] / Math.max(1, r.draws.reference)),
  }));
}

/** Label queries by ledger phase. */
export function phaseRows(l: LedgerSnapshot): { phase: string; queries: number }[] {
  return Object.entries(l.byPhase).map(([phase, e]) => ({ phase, queries: e.images.label }));
}

/** One pseudo sample per class across the kept iterations: rows = classes, columns = iterations. */
export function iterationGrid(
  set: PseudoSet,
  pick = 0,
): { x: Float32Array; shape: number[]; labels: string[]; cols: number } {
  const dim = set.imageShape.reduce((a, b) => a * b, 1);
  const cols = set.snapshots.length;
  const x: number[] = [];
  const labels: string[] = [];
  let rows = 0;
  for (let c = 0; c < set.numClasses; c++) {
    const members = [...set.y.keys()].filter((i) => set.y[i] === c);
    if (members.length === 0) continue;
    const i = members[Math.min(pick, members.length - 1)];
    for (const s of set.snapshots) {
      x.push(...s.x.subarray(i * dim, (i + 1) * dim));
      labels.push(`${c} · it ${s.iteration}`);
    }
    rows++;
  }
  return { x: Float32Array.from(x), shape: [rows * cols, ...set.imageShape], labels, cols };
}

/** Pseudo samples of one iteration, the first `perClass` of every class, class-major. */
export function classGrid(
  set: PseudoSet,
  iteration: number,
  perClass: number,
): { x: Float32Array; shape: number[]; labels: number[] } {
  const dim = set.imageShape.reduce((a, b) => a * b, 1);
  const all = snapshotX(set, iteration);
  const idx: number[] = [];
  for (let c = 0; c < set.numClasses; c++) {
    idx.push(...[...set.y.keys()].filter((i) => set.y[i] === c).slice(0, perClass));
  }
  const x = new Float32Array(idx.length * dim);
  idx.forEach((i, j) => x.set(all.subarray(i * dim, (i + 1) * dim), j * dim));
  return { x, shape: [idx.length, ...set.imageShape], labels: idx.map((i) => set.y[i]) };
}

/**
 * Distance to the nearest boundary found for the samples of iteration 0 (the raw noise) and of the
 * last measured iteration (histogram rows). `distances[k]` is measured on the iteration-k samples,
 * before step k + 1, so the labels use the same iteration numbers as the text and the accuracy curve.
 */
export function distanceRows(set: PseudoSet): { distance: number; when: string }[] {
  const rows: { distance: number; when: string }[] = [];
  const n = set.distances.length;
  if (n === 0) return rows;
  const first = set.distances[0], last = set.distances[n - 1];
  for (const d of first) if (Number.isFinite(d)) rows.push({ distance: d, when: "iteration 0 (raw noise)" });
  if (n === 1) return rows;
  for (const d of last) if (Number.isFinite(d)) rows.push({ distance: d, when: `iteration ${n - 1}` });
  return rows;
}

/** Accuracy against iteration and against queries per pseudo sample, every run and student. */
export function accuracyRows(runs: ZeroShotResult[]): Record<string, number | string>[] {
  return runs.flatMap((run) =>
    run.students.map((s) => ({
      seed: run.seed,
      series: `seed ${run.seed}`,
      iteration: s.iteration,
      "accuracy (%)": pct(s.testAcc),
      "queries per pseudo sample": s.queries / Math.max(1, run.set.y.length),
    }))
  );
}

/** Accuracy per iteration, mean ± std over the seeds (one row per iteration). */
export function accuracyMeanRows(runs: ZeroShotResult[]): Record<string, number | string>[] {
  const its = [...new Set(runs.flatMap((r) => r.students.map((s) => s.iteration)))].sort((a, b) => a - b);
  return its.map((iteration) => {
    const v = runs.flatMap((r) =>
      r.students.filter((s) => s.iteration === iteration).map((s) => pct(s.testAcc))
    );
    const q = runs.flatMap((r) =>
      r.students.filter((s) => s.iteration === iteration).map((s) => s.queries / Math.max(1, r.set.y.length))
    );
    return {
      iteration,
      "accuracy (%)": formatSeeds(v),
      "mean accuracy (%)": meanStd(v).mean,
      "queries per pseudo sample": meanStd(q).mean,
    };
  });
}

/** Notebook 33's sweep: accuracy vs pseudo samples per class, mean over the seeds per point. */
export function sweepRows(r: ZeroShotSeedsResult): Record<string, number | string>[] {
  const keys = [...new Set(r.sweep.map((s) => `${s.iteration}/${s.perClass}`))];
  return keys.map((k) => {
    const rows = r.sweep.filter((s) => `${s.iteration}/${s.perClass}` === k);
    const { iteration, perClass } = rows[0];
    return {
      series: iteration === 0 ? "iteration 0 (noise)" : `iteration ${iteration}`,
      "pseudo samples per class": perClass,
      "accuracy (%)": meanStd(rows.map((s) => pct(s.testAcc))).mean,
      "per seed (%)": formatSeeds(rows.map((s) => pct(s.testAcc))),
      "label queries (mean)": Math.round(meanStd(rows.map((s) => s.labelQueries)).mean),
    };
  });
}

/**
 * A computed comment on the accuracy-vs-iteration curve of the ZSDB3KD students (mean over the
 * runs per iteration): flat, rising or falling, and every step against that direction named (e.g.
 * a dip at iteration 2). A step counts when it exceeds 1 point and, with `testN` test images, twice
 * the standard error of a difference of two test accuracies. Compared with the paper's figure,
 * which shows accuracy rising with the iterations.
 */
export function iterationVerdict(runs: ZeroShotResult[], testN?: number): string {
  const by = new Map<number, number[]>();
  for (const run of runs) {
    for (const s of run.students) {
      if (s.variant !== "zsdb3kd" && !(s.variant === "noise" && s.iteration === 0)) continue;
      by.set(s.iteration, [...(by.get(s.iteration) ?? []), pct(s.testAcc)]);
    }
  }
  const points = [...by.entries()].map(([x, v]) => ({ x, y: v.reduce((a, b) => a + b, 0) / v.length }));
  if (points.length < 2) return "Fewer than two iterations with a student: no curve to judge.";
  const p = points.reduce((a, b) => a + b.y, 0) / points.length / 100;
  const noise = testN ? 100 * 2 * Math.sqrt((2 * p * (1 - p)) / testN) : 0;
  const v = curveVerdict(points, {
    what: `student accuracy (${runs.length === 1 ? "one seed" : `mean of ${runs.length} seeds`})`,
    xName: "iteration",
    minEffect: Math.max(1, noise),
  });
  const paper = v.trend === "rising"
    ? v.reversals.length === 0
      ? " Like the paper's figure, accuracy rises with the iterations."
      : " The paper's figure rises with the iterations; this run rises overall but not at every step."
    : " The paper's figure shows accuracy rising with the iterations; this run does not reproduce that.";
  return v.sentence + paper;
}
