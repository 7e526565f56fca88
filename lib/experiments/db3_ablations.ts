/**
 * DB3 views and ablations (notebooks 10–13).
 *
 * Views turn a {@link Db3TableResult} into the rows a notebook shows: paper vs measured (table B
 * marked unverified, the teacher number from table A's ZSDB3KD row, standard KD also from table A
 * where the student matches), bars, ledger totals against per-sample sums, teacher-misclassified
 * ("flagged") samples, soft-target diagnostics, and the table-B ordering claims checked against the
 * run with the test set's binomial standard error beside each gap.
 *
 * `runDb3Ablations({scale, seed})` (MNIST, LeNet-5 → LeNet-5-half) labels the table's transfer set
 * once (sharing notebook 10's labeling cache when the settings match) and trains extra students:
 * - accuracy vs query budget: BD, then MBD's snapshots (g within q queries per (sample, class));
 * - temperature τ of the DB3 loss (MBD targets);
 * - SD / BD / MBD and the CE baseline (the table's students);
 * - student size: LeNet-5-half vs LeNet-5-fifth (CE and MBD);
 * - the 1/d blow-up: BD and MBD targets with no remedy, a distance floor (a low quantile of all
 *   off-class distances), and flagged samples dropped — on the transfer set plus a few training images
 *   the teacher misclassifies (found by a label-query scan), since a ~99% teacher leaves few or none
 *   in a few hundred images.
 * Every student is a saved run record (experiment `db3-ablations`), so a notebook can be re-read.
 *
 * Scales: `smoke` as the table's smoke scale (10 images, 2 epochs); `laptop` the table's laptop
 * settings (400 images, MBD limit 2,000 per (sample, class), snapshots at 0.5k/1k/1.5k/2k) with the
 * ablation students at 100 epochs instead of 200 and scored on the test set after the last epoch only
 * (every-epoch scoring of 10,000 test images costs more than the training; 16 students must fit);
 * `paper` the reference settings and 200 epochs.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { type DatasetName, type LabeledData, loadDataset, subset } from "../data/mod.ts";
import type { ModelName } from "../models/registry.ts";
import { type LedgerSnapshot, sumBySample } from "../oracle/ledger.ts";
import { openTeacher } from "./open_teacher.ts";
import { parseTeacherSource, type TeacherSource } from "./teacher_source.ts";
import { Rng } from "../util/rng.ts";
import { labelDistances } from "../db3/label_run.ts";
import { makeClassStreams } from "../db3/streams.ts";
import { tableARow } from "../results/paper.ts";
import { type RunRecord, saveRun, startRun } from "../results/record.ts";
import type { PaperVsMeasuredRow } from "../results/table.ts";
import { compareMethods, pairedCurves } from "../results/verdict.ts";
import { atScale, type Scale } from "../scale.ts";
import { distanceQuantile, type SoftLabelOptions, softLabelsFromDistances } from "../db3/soft_labels.ts";
import {
  type Db3Row,
  type Db3Settings,
  db3Settings,
  type Db3TableMethod,
  type Db3TableResult,
  runDb3Table,
  trainDb3Student,
} from "./db3.ts";

const pct = (v: number) => 100 * v;

// ---------------------------------------------------------------------------------------------
// Views (notebooks 10–12 and 13)

const MODEL_TITLES: Partial<Record<ModelName, string>> = {
  "db3-lenet5": "LeNet-5",
  "db3-lenet5-half": "LeNet-5-half",
  "db3-lenet5-fifth": "LeNet-5-fifth",
  "db3-alexnet": "AlexNet",
  "db3-alexnet-half": "AlexNet-half",
  "db3-alexnet-quarter": "AlexNet-quarter",
};

/** A network's printed name (`db3-lenet5-half` → `LeNet-5-half`). */
export function modelTitle(name: ModelName | string): string {
  return MODEL_TITLES[name as ModelName] ?? name;
}

/** `"LeNet-5 → LeNet-5-half"` for a table run. */
export function db3PairTitle(r: Db3TableResult): string {
  return `${modelTitle(r.teacher.name)} → ${modelTitle(r.settings.student.model)}`;
}

/** Printed name of a table row. */
export const DB3_METHOD_TITLES: Record<Db3Row["method"], string> = {
  teacher: "teacher",
  ce: "CE (labels only)",
  kd: "standard KD (probs)",
  sd: "DB3-SD",
  bd: "DB3-BD",
  mbd: "DB3-MBD",
};

/**
 * Paper vs measured, one row per table row (for `paperVsMeasured`). Student paper numbers are table
 * B's (unverified); the teacher's is table A's ZSDB3KD teacher; a second KD row carries table A's
 * "KD (real data)" number when its student matches this run's.
 */
export function db3PaperRows(r: Db3TableResult): PaperVsMeasuredRow[] {
  const pair = db3PairTitle(r);
  const out: PaperVsMeasuredRow[] = [];
  for (const row of r.rows) {
    const base = {
      method: DB3_METHOD_TITLES[row.method],
      dataset: r.dataset,
      pair,
      measured: pct(row.testAcc),
      scale: r.scale,
    };
    const spend = row.method === "teacher"
      ? (row.access === "train"
        ? `trained on ${row.trainedOn.toLocaleString("en-US")} images`
        : `your teacher (${r.teacher.source}), accuracy measured through labels`)
      : `${row.trainedOn} images, ${Math.round(row.queriesPerSample).toLocaleString("en-US")} queries/image` +
        (row.flagged ? `, ${row.flagged} flagged` : "");
    if (row.method === "teacher") {
      const a = tableARow("zsdb3kd", r.dataset);
      out.push({
        ...base,
        pair: modelTitle(r.teacher.name),
        paper: a?.teacherAcc[0],
        note: `${spend}; paper: the ZSDB3KD paper's teacher (table A)`,
      });
      continue;
    }
    out.push({
      ...base,
      paper: row.paperAcc ?? undefined,
      unverified: row.paperAcc !== null,
      note: row.paperAcc !== null ? `${spend}; paper: table B` : spend,
    });
    if (row.method === "kd") {
      const a = tableARow("kd", r.dataset, modelTitle(r.settings.student.model));
      if (a) {
        out.push({
          ...base,
          method: "standard KD (probs), table A",
          paper: a.studentAcc[0],
          note: `same measured student; paper: CAKE paper's KD (real data) row, teacher ${
            a.teacherAcc[0].mean
          }%`,
        });
      }
    }
  }
  return out;
}

/**
 * Bars: measured accuracy per row, and the paper's number beside it where one exists. The series
 * names carry the scale and the transfer-set size, so a laptop student trained on a few images is
 * never read as comparable to the paper's student trained on the full training set.
 */
export function db3BarRows(r: Db3TableResult): { method: string; source: string; value: number }[] {
  const out: { method: string; source: string; value: number }[] = [];
  const n = r.samples.y.length.toLocaleString("en-US");
  const measured = r.scale === "paper"
    ? "measured (paper scale, full training set)"
    : `measured (${r.scale}: ${n} transfer images)`;
  for (const row of r.rows) {
    const method = DB3_METHOD_TITLES[row.method];
    out.push({ method, source: measured, value: pct(row.testAcc) });
    if (row.paperAcc !== null) {
      out.push({ method, source: "paper (table B, unverified; full training set)", value: row.paperAcc });
    }
  }
  return out;
}

/** The ledgers of a table run: the probs ledger of standard KD and the label ledger of BD/MBD. */
export function db3Ledgers(r: Db3TableResult): { name: string; ledger: LedgerSnapshot }[] {
  const out: { name: string; ledger: LedgerSnapshot }[] = [];
  const kd = r.records.find((x) => x.method === "db3-kd")?.ledger as LedgerSnapshot | undefined;
  if (kd) out.push({ name: "standard KD (probs)", ledger: kd });
  const lab = r.distances.mbd?.ledger ?? r.distances.bd?.ledger;
  if (lab) {
    out.push({ name: r.distances.mbd ? "BD + MBD labeling (label)" : "BD labeling (label)", ledger: lab });
  }
  return out;
}

/** Ledger totals against the sums of their per-sample entries, and the largest per-sample spend. */
export function db3LedgerRows(r: Db3TableResult): Record<string, string | number | boolean>[] {
  return db3Ledgers(r).map(({ name, ledger }) => {
    const label = sumBySample(ledger, "label"), probs = sumBySample(ledger, "probs");
    const spends = Object.entries(ledger.bySample).filter(([id]) => id !== "-1").map(([, e]) => e.spent);
    const calls = ledger.totals.calls.label + ledger.totals.calls.probs;
    const images = ledger.totals.images.label + ledger.totals.images.probs;
    const budget = ledger.budget.perSample;
    return {
      ledger: name,
      "total images": images,
      "Σ per-sample images": label + probs,
      "total = Σ per-sample": ledger.totals.images.label === label && ledger.totals.images.probs === probs,
      "oracle calls": calls,
      "images per call": calls ? Math.round(images / calls) : 0,
      samples: spends.length,
      "largest per-sample spend": Math.max(0, ...spends),
      "per-sample budget": budget ?? "none",
      "refused images": ledger.totals.refused,
    };
  });
}

/** Label queries and calls per ledger phase (BD: `bd.*`, MBD: `mbd.*`). */
export function db3PhaseRows(r: Db3TableResult): Record<string, string | number>[] {
  const n = r.samples.y.length;
  return db3Ledgers(r).flatMap(({ name, ledger }) =>
    Object.entries(ledger.byPhase).map(([phase, e]) => ({
      ledger: name,
      phase,
      images: e.images.label + e.images.probs,
      calls: e.calls.label + e.calls.probs,
      "images per sample": (e.images.label + e.images.probs) / n,
    }))
  );
}

/** Smallest off-class distance of sample i and its class. */
function nearest(d: Float32Array, y: Int32Array, k: number, i: number): { d: number; t: number } {
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

/** One ordering claim of table B checked on the run. */
export interface Db3Claim {
  claim: string;
  holds: boolean;
  /** a − b in points (final-epoch accuracies). */
  gap: number;
  /** The gap in units of the binomial standard error of a difference of two test accuracies. */
  gapInSE: number;
  /** The same claim on best-epoch accuracies (the reference's test-set selection). */
  holdsAtBestEpoch: boolean | null;
}

/** Check "BD > CE", "MBD > CE", "MBD ≥ BD", "BD ≥ SD" on a run. */
export function db3Claims(r: Db3TableResult): Db3Claim[] {
  const testN = r.testN;
  const get = (m: Db3TableMethod) => r.rows.find((x) => x.method === m);
  const pairs: [Db3TableMethod, Db3TableMethod, boolean][] = [
    ["bd", "ce", true],
    ["mbd", "ce", true],
    ["mbd", "bd", false],
    ["bd", "sd", false],
  ];
  const out: Db3Claim[] = [];
  for (const [a, b, strict] of pairs) {
    const ra = get(a), rb = get(b);
    if (!ra || !rb) continue;
    const gap = ra.testAcc - rb.testAcc;
    const pm = (ra.testAcc + rb.testAcc) / 2;
    const se = Math.sqrt((2 * pm * (1 - pm)) / Math.max(1, testN));
    const ok = (x: number, y: number) => (strict ? x > y : x >= y);
    out.push({
      claim: `${DB3_METHOD_TITLES[a]} ${strict ? ">" : "≥"} ${DB3_METHOD_TITLES[b]}`,
      holds: ok(ra.testAcc, rb.testAcc),
      gap: pct(gap),
      gapInSE: se > 0 ? gap / se : 0,
      holdsAtBestEpoch: ra.bestTestAcc != null && rb.bestTestAcc != null
        ? ok(ra.bestTestAcc, rb.bestTestAcc)
        : null,
    });
  }
  return out;
}

/**
 * A plain-language verdict on the claims, built from the numbers (for a markdown cell). The
 * comparison of the soft-label students comes from `compareMethods` (lib/results/verdict.ts), tested
 * against the test-set standard error of one evaluation (`testN` test images; derived from the
 * claims' gaps when not given).
 */
export function db3ClaimsText(
  claims: Db3Claim[],
  diag: Record<string, string | number>[],
  opts: { testN?: number } = {},
): string {
  const failed = claims.filter((c) => !c.holds);
  const lines = claims.map((c) =>
    `- ${c.claim}: **${c.holds ? "holds" : "does not hold"}** (gap ${c.gap.toFixed(2)} points = ` +
    `${c.gapInSE.toFixed(1)} standard errors of the test-set estimate${
      c.holdsAtBestEpoch === null
        ? ""
        : `; at the best epoch it ${c.holdsAtBestEpoch ? "holds" : "does not hold"}`
    })`
  );
  if (failed.length === 0) return lines.join("\n");
  const small = failed.filter((c) => Math.abs(c.gapInSE) < 2);
  const why: string[] = [];
  if (small.length) {
    why.push(
      `${small.map((c) => c.claim).join(", ")}: the gap is within 2 standard errors of the test-set ` +
        `estimate, i.e. not distinguishable from evaluation noise with one seed.`,
    );
  }
  const soft = diag
    .filter((d) => Number.isFinite(Number(d["final acc (%)"])))
    .map((d) => ({ name: String(d.method), values: [Number(d["final acc (%)"])] }));
  const se = testSetSE(soft.flatMap((x) => x.values), claims, opts.testN);
  const cmp = soft.length >= 2 ? compareMethods(soft, { se }) : undefined;
  if (cmp) why.push(`Soft-label students: ${cmp.sentence}`);
  const flat = diag.filter((d) => Number(d["mean entropy / log K"]) > 0.95);
  if (flat.length) {
    const entropies = flat.map((d) =>
      `${d.method}: entropy ${(Number(d["mean entropy / log K"])).toFixed(3)} of the maximum`
    ).join(", ");
    why.push(
      `At this τ the targets are nearly uniform (${entropies}), so the KD term adds little beyond the CE term` +
        (cmp === undefined
          ? "."
          : cmp.allSame
          ? "; consistent with the soft-label students not differing measurably."
          : "; yet the soft-label students differ measurably, so near-uniform targets do not explain the gaps."),
    );
  }
  const blown = diag.filter((d) => Number(d["flagged share of KD pull"]) > 0.2);
  if (blown.length) {
    why.push(
      `The 1/d blow-up: flagged samples carry ${
        blown.map((d) => `${(100 * Number(d["flagged share of KD pull"])).toFixed(0)}% (${d.method})`).join(
          ", ",
        )
      } of the KD term's pull (see the flagged samples and notebook 13's remedies).`,
    );
  }
  return [...lines, "", "Why not, from this run's data:", ...why.map((w) => `- ${w}`)].join("\n");
}

/**
 * Standard error, in points, of one test accuracy: √(p(1−p)/N) at the mean accuracy when `testN` is
 * known, otherwise read off the claims (gap / gapInSE is the error of a difference, √2 × this).
 */
function testSetSE(accs: number[], claims: Db3Claim[], testN?: number): number | undefined {
  if (testN !== undefined && testN > 0 && accs.length) {
    const p = accs.reduce((a, b) => a + b, 0) / accs.length / 100;
    return 100 * Math.sqrt((p * (1 - p)) / testN);
  }
  const c = claims.find((x) => Number.isFinite(x.gapInSE) && Math.abs(x.gapInSE) > 1e-9);
  return c ? Math.abs(c.gap / c.gapInSE) / Math.SQRT2 : undefined;
}

/** Where the labels came from: chunks computed in this call and taken from the cache. */
function labelingView(r: Db3TableResult): string {
  const d = r.distances.mbd ?? r.distances.bd;
  if (!d) return "none (SD asks the teacher nothing)";
  return `${d.method.toUpperCase()}: ${d.chunks.computed} chunk(s) of ≤ ${d.chunks.size} samples computed ` +
    `in this call (${d.seconds.toFixed(0)} s), ${d.chunks.resumed} taken from the cache`;
}

/** Settings of a table run as key/values (for `keyValues`). */
export function db3SettingsView(r: Db3TableResult): Record<string, string | number> {
  const s = r.settings;
  return {
    scale: r.scale,
    seed: r.seed,
    "teacher → student": db3PairTitle(r),
    "teacher source": r.teacher.source,
    "teacher test accuracy (%)": pct(r.teacher.testAcc).toFixed(2),
    "transfer set": `${r.samples.y.length} training images (${s.samplesPerClass || "all"} per class)`,
    "test images": s.testLimit || "all",
    "BD": JSON.stringify(r.distances.mbd?.options.bd ?? r.distances.bd?.options ?? s.bd),
    "MBD": JSON.stringify(r.distances.mbd ? { ...r.distances.mbd.options, bd: "as above" } : s.mbd),
    labeling: labelingView(r),
    student:
      `${s.student.epochs} epochs, batch ${s.student.batchSize}, Adam ${s.student.lr}, τ ${s.student.temperature}`,
    "differs from the paper": s.note,
  };
}

// ---------------------------------------------------------------------------------------------
// Ablations (notebook 13)

/** Ablation parts. */
export type Db3AblationPart = "budget" | "tau" | "size" | "remedies";

/** All parts, in notebook order. */
export const DB3_ABLATION_PARTS: readonly Db3AblationPart[] = ["budget", "tau", "size", "remedies"];

/** Concrete ablation settings of one scale. */
export interface Db3AblationSettings {
  /** The table settings the ablation starts from (labeling, base students). */
  table: Db3Settings;
  /** Epochs of the extra students. */
  epochs: number;
  /** τ values (MBD targets). */
  taus: number[];
  /** Smaller student. */
  smallStudent: ModelName;
  /** Distance-floor remedy. */
  floor: NonNullable<SoftLabelOptions["floor"]>;
  /** Test images scored after every epoch for best-epoch numbers (0: none; final always on all). */
  epochTestLimit?: number;
  /**
   * Remedies part: training images scanned with label queries for ones the teacher misclassifies, and
   * how many of those are added to the transfer set (a ~99%-accurate teacher leaves few or none in a
   * few hundred images; the reference's 1,000-image run had 13).
   */
  stress: { scan: number; add: number };
  /** What differs from the paper. */
  note: string;
}

/** Settings by scale (see the module doc). */
export function db3AblationSettings(scale: Scale): Db3AblationSettings {
  const table = db3Settings(scale, "mnist");
  return atScale<Db3AblationSettings>(scale, {
    smoke: {
      table,
      epochs: table.student.epochs,
      taus: [1, 20],
      smallStudent: "db3-lenet5-fifth",
      floor: { quantile: 0.05 },
      stress: { scan: 500, add: 2 },
      note: table.note,
    },
    laptop: {
      table,
      epochs: 100,
      taus: [1, 5, 20, 50],
      smallStudent: "db3-lenet5-fifth",
      floor: { quantile: 0.05 },
      epochTestLimit: 0,
      stress: { scan: 20000, add: 6 },
      note: `${table.note}; ablation students 100 epochs (base students ${table.student.epochs}), ` +
        "test set scored after the last epoch only (no best-epoch numbers)",
    },
    paper: {
      table,
      epochs: table.student.epochs,
      taus: [1, 5, 20, 50],
      smallStudent: "db3-lenet5-fifth",
      floor: { quantile: 0.05 },
      stress: { scan: 60000, add: 13 },
      note: table.note,
    },
  });
}

/** Options of {@link runDb3Ablations}. */
export interface Db3AblationOptions {
  scale: Scale;
  seed: number;
  /** Parts to run (default all). */
  parts?: Db3AblationPart[];
  /** Override parts of the settings. */
  settings?: Partial<Omit<Db3AblationSettings, "table">>;
  /** Labeling cache root (as {@link runDb3Table}); `false` disables it. */
  cacheDir?: string | false;
  /** Save run records (default true). */
  save?: boolean;
  /** The teacher (as {@link runDb3Table}: a TeacherSource or its string form; default the kit recipe). */
  teacher?: TeacherSource | string;
}

/** One ablation student. */
export interface Db3AblationRow {
  part: Db3AblationPart | "methods";
  /** Variant, e.g. `MBD ≤ 1000`, `τ = 5`, `fifth`, `BD, floor`. */
  variant: string;
  /** Soft-label source (null: CE only). */
  source: "sd" | "bd" | "mbd" | null;
  /** Query budget per (sample, class) for the budget curve (BD: its mean spend). */
  budget: number | null;
  temperature: number | null;
  student: ModelName;
  testAcc: number;
  bestTestAcc: number | null;
  trainedOn: number;
  maxLogit: number | null;
  flagged: number;
  epochs: number;
}

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

/** Result of {@link runDb3Ablations}. */
export interface Db3AblationResult {
  settings: Db3AblationSettings;
  base: Db3TableResult;
  rows: Db3AblationRow[];
  distanceCurve: DistanceCurvePoint[];
  records: RunRecord[];
  /** Test images used. */
  testN: number;
  /** The remedies part's transfer set: the base set plus teacher-misclassified training images. */
  stress?: StressSet;
}

/** Transfer set of the remedies part. */
export interface StressSet {
  /** Training images scanned with label queries, and misclassified ones found among them. */
  scanned: number;
  found: number;
  /** Indices (in the training set) of the added images. */
  added: number[];
  /** Samples (base first, then the added ones) and their BD / MBD distances. */
  samples: LabeledData;
  distances: { bd: Float32Array; mbd: Float32Array };
  teacherLabels: Int32Array;
  /** Label queries spent labelling the added images. */
  labelQueries: number;
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

/** BD's mean label queries per (sample, other class). */
function bdQueriesPerPair(base: Db3TableResult): number {
  const row = base.rows.find((r) => r.method === "bd");
  return row ? row.queriesPerSample / (base.samples.numClasses - 1) : NaN;
}

/**
 * Base transfer set plus up to `add` training images the teacher misclassifies (found by scanning the
 * first `scan` training images with label queries), with BD/MBD distances for the added ones.
 */
async function buildStressSet(
  base: Db3TableResult,
  settings: Db3AblationSettings,
  seed: number,
  source: TeacherSource | string | undefined,
): Promise<StressSet> {
  const dataset: DatasetName = "mnist";
  const trainSet = await loadDataset(dataset, "train");
  const teacher = await openTeacher(parseTeacherSource(source, { dataset, scale: base.scale, seed }), {
    method: "DB3 ablations (stress set)",
    expect: { inputShape: trainSet.shape.slice(1), numClasses: trainSet.numClasses },
  });
  try {
    const oracle = await teacher.labelOracle();
    const scan = Math.min(settings.stress.scan, trainSet.y.length);
    const dim = trainSet.shape.slice(1).reduce((a, b) => a * b, 1);
    const ans = await oracle.labels(trainSet.x.subarray(0, scan * dim), scan, { phase: "stress.scan" });
    const wrong: number[] = [];
    for (let i = 0; i < scan; i++) if (ans.labels[i] !== trainSet.y[i]) wrong.push(i);
    const rng = new Rng(seed + 7);
    const added = Array.from(rng.permutation(wrong.length).subarray(0, settings.stress.add), (j) => wrong[j])
      .sort((a, b) => a - b);
    const extra = subset(trainSet, Int32Array.from(added));
    const n0 = base.samples.y.length, k = base.samples.numClasses;
    const d = await labelDistances(
      oracle,
      {
        x: extra.x,
        y: extra.y,
        shape: extra.shape,
        numClasses: k,
        ids: Int32Array.from(added, (_, j) => n0 + j),
      },
      makeClassStreams(trainSet, seed),
      {
        method: "mbd",
        bd: settings.table.bd,
        mbd: { ...settings.table.mbd, seed },
        progress: false,
      },
    );
    const cat = (a: Float32Array, b: Float32Array) => {
      const o = new Float32Array(a.length + b.length);
      o.set(a);
      o.set(b, a.length);
      return o;
    };
    const samples: LabeledData = {
      ...base.samples,
      x: cat(base.samples.x, extra.x),
      y: Int32Array.from([...base.samples.y, ...extra.y]),
      shape: [n0 + added.length, ...base.samples.shape.slice(1)],
    };
    const bdBase = base.distances.bd!, mbdBase = base.distances.mbd!;
    return {
      scanned: scan,
      found: wrong.length,
      added,
      samples,
      distances: { bd: cat(bdBase.distances, d.bdDistances!), mbd: cat(mbdBase.distances, d.distances) },
      teacherLabels: Int32Array.from([...bdBase.teacherLabels, ...d.teacherLabels]),
      labelQueries: oracle.ledger.snapshot().totals.images.label - scan,
    };
  } finally {
    teacher.close();
  }
}

/**
 * Run the DB3 ablations on MNIST (see the module doc): the table run (CE, SD, BD, MBD students)
 * plus the extra students of each part.
 */
export async function runDb3Ablations(opts: Db3AblationOptions): Promise<Db3AblationResult> {
  const { scale, seed } = opts;
  const settings = { ...db3AblationSettings(scale), ...opts.settings };
  const parts = opts.parts ?? [...DB3_ABLATION_PARTS];
  const experiment = "db3-ablations";
  await initBackend();
  const base = await runDb3Table({
    dataset: "mnist",
    scale,
    seed,
    methods: ["ce", "sd", "bd", "mbd"],
    settings: settings.table,
    cacheDir: opts.cacheDir,
    save: opts.save,
    experiment,
    teacher: opts.teacher,
  });
  const dataset: DatasetName = "mnist";
  const test = await loadDataset(
    dataset,
    "test",
    settings.table.testLimit ? { limit: settings.table.testLimit } : {},
  );
  const k = base.samples.numClasses;
  const tau0 = settings.table.student.temperature;
  const rows: Db3AblationRow[] = [];
  const records: RunRecord[] = [...base.records];
  for (const r of base.rows) {
    if (r.method === "teacher" || r.method === "kd") continue;
    const src = r.method === "ce" ? null : r.method;
    rows.push({
      part: "methods",
      variant: DB3_METHOD_TITLES[r.method],
      source: src,
      budget: r.method === "bd" ? bdQueriesPerPair(base) : null,
      temperature: src ? tau0 : null,
      student: settings.table.student.model,
      testAcc: r.testAcc,
      bestTestAcc: r.bestTestAcc,
      trainedOn: r.trainedOn,
      maxLogit: src ? base.softLabels[src]?.maxLogit ?? null : null,
      flagged: r.flagged,
      epochs: settings.table.student.epochs,
    });
  }

  /** Train, record and return one ablation student. */
  const student = async (
    part: Db3AblationPart,
    variant: string,
    source: "sd" | "bd" | "mbd" | null,
    distances: Float32Array | null,
    o: {
      temperature?: number;
      model?: ModelName;
      soft?: Omit<SoftLabelOptions, "teacherLabels">;
      budget?: number;
      /** Another transfer set (the remedies' stress set). */
      on?: { samples: LabeledData; teacherLabels: Int32Array };
    },
  ) => {
    const set = o.on?.samples ?? base.samples;
    const st = {
      ...settings.table.student,
      epochs: settings.epochs,
      ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
      ...(o.model ? { model: o.model } : {}),
    };
    const teacherLabels = o.on?.teacherLabels ?? (source ? base.distances[source]?.teacherLabels : undefined);
    const sl = distances
      ? softLabelsFromDistances(distances, set.y, k, {
        ...o.soft,
        ...(teacherLabels ? { teacherLabels } : {}),
      })
      : null;
    const handle = startRun({
      experiment,
      method: `db3-ablation-${part}`,
      dataset,
      scale,
      seed,
      config: { variant, source, student: st, softLabels: o.soft ?? {}, budget: o.budget ?? null },
    });
    const t = await trainDb3Student(
      set,
      sl?.z ?? null,
      sl?.keep ?? null,
      { ...settings.table, student: st },
      test,
      seed,
      `ablation ${variant}`,
      settings.epochTestLimit,
    );
    t.model.dispose();
    const row: Db3AblationRow = {
      part,
      variant,
      source,
      budget: o.budget ?? null,
      temperature: source ? st.temperature : null,
      student: st.model,
      testAcc: t.testAcc,
      bestTestAcc: t.bestTestAcc,
      trainedOn: t.n,
      maxLogit: sl?.maxLogit ?? null,
      flagged: sl?.flagged.length ?? 0,
      epochs: st.epochs,
    };
    rows.push(row);
    const rec = handle.finish({
      testAcc: t.testAcc,
      // Absent values are left out of the record (never NaN in the JSON or the CSV).
      ...(t.bestTestAcc != null ? { bestTestAcc: t.bestTestAcc } : {}),
      trainedOn: t.n,
      ...(sl?.maxLogit != null ? { maxLogit: sl.maxLogit } : {}),
      flagged: row.flagged,
      floor: sl?.floor ?? 0,
      trainSeconds: t.seconds,
    }, { notes: [settings.note] });
    records.push(rec);
    if (opts.save !== false) await saveRun(rec);
  };

  const bd = base.distances.bd!, mbd = base.distances.mbd!;
  // Baselines of each part are trained at the ablation's epochs too, so a part compares like with like.
  if (parts.includes("budget")) {
    await student("budget", "BD", "bd", bd.distances, { budget: bdQueriesPerPair(base) });
    for (const [s, q] of (mbd.snapshots?.queries ?? []).entries()) {
      await student("budget", `MBD ≤ ${q}`, "mbd", mbd.snapshots!.distances[s], { budget: q });
    }
  }
  if (parts.includes("tau")) {
    for (const tau of settings.taus) {
      await student("tau", `τ = ${tau}`, "mbd", mbd.distances, { temperature: tau });
    }
  }
  if (parts.includes("size")) {
    for (const model of [settings.table.student.model, settings.smallStudent]) {
      const size = modelTitle(model);
      await student("size", `${size}, CE`, null, null, { model });
      await student("size", `${size}, MBD`, "mbd", mbd.distances, { model });
    }
  }
  let stress: StressSet | undefined;
  if (parts.includes("remedies")) {
    stress = await buildStressSet(base, settings, seed, opts.teacher);
    const tag = stress.added.length ? ` (+${stress.added.length} misclassified)` : "";
    for (const m of ["bd", "mbd"] as const) {
      const d = stress.distances[m];
      const name = m.toUpperCase() + tag;
      const on = { samples: stress.samples, teacherLabels: stress.teacherLabels };
      await student("remedies", `${name}, no remedy`, m, d, { on });
      await student("remedies", `${name}, distance floor`, m, d, { on, soft: { floor: settings.floor } });
      await student("remedies", `${name}, flagged dropped`, m, d, { on, soft: { dropFlagged: true } });
    }
  }
  return {
    settings,
    base,
    rows,
    distanceCurve: distanceCurve(base),
    records,
    testN: test.y.length,
    ...(stress ? { stress } : {}),
  };
}

/** Rows of one part, accuracies in percent (for a table or chart). */
export function ablationRows(r: Db3AblationResult, part: Db3AblationRow["part"]): Record<string, unknown>[] {
  return r.rows.filter((x) => x.part === part).map((x) => ({
    variant: x.variant,
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
 * do the boundary distances? Accuracy counts as flat within twice the standard error of a
 * difference of two test accuracies on `testN` images (at least 1 point); distances within 5 %.
 */
export function budgetVerdict(r: Db3AblationResult): string {
  const acc = r.rows.filter((x) => x.part === "budget" && x.budget !== null)
    .map((x) => ({ x: Math.round(x.budget!), y: pct(x.testAcc) }));
  const dist = r.distanceCurve.filter((p) => Number.isFinite(p.median)).map((p) => ({
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
    const variants: [string, Omit<SoftLabelOptions, "teacherLabels">][] = [
      ["no remedy", {}],
      ["distance floor", { floor: r.settings.floor }],
      ["flagged dropped", { dropFlagged: true }],
    ];
    for (const [name, o] of variants) {
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
