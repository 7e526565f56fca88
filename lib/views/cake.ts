/**
 * Views of the CAKE runs' results for notebooks 20–24: the Figure-1 grid, accuracy tables with
 * mean ± std over seeds, the claims each notebook checks, "paper vs measured" rows (paper numbers
 * from `lib/results/paper.ts` only) and heatmap matrices. Pure functions of the results: nothing
 * here runs an experiment or prints.
 *
 * @module
 */
import { formatPaperValue, type PaperMatrix, tableARow } from "../results/paper.ts";
import type { PaperVsMeasuredRow } from "../results/table.ts";
import { ablationVerdicts, compareGap, type PaperDirection } from "../results/verdict.ts";
import type { Scale } from "../scale.ts";
import {
  decisionField,
  type DecisionFieldInput,
  decisionFieldLegend,
  type Figure,
  gridOfFigures,
  type Matrix,
  pointsOutside,
} from "../show/plots.ts";
import { meanStd } from "../experiments/cake_collect.ts";
import type {
  CakeAblationResult,
  CakeMatrixResult,
  CakeMnistResult,
  TwoMoonsFigureResult,
} from "./cake_results.ts";

/** Printed names of the Figure-1 methods. */
export const METHOD_NAMES: Record<string, string> = {
  teacher: "teacher (real data)",
  naive: "naive CE synthesis",
  generator: "conditional generator",
  cake: "CAKE",
};

/** Short method names for plot captions. */
const SHORT_NAMES: Record<string, string> = { naive: "naive CE", generator: "generator", cake: "CAKE" };

/**
 * A field averaged over f×f blocks to at most `maxCells` cells per axis (f: the smallest factor that
 * divides the grid, if any; else the far edge is cropped). One SVG rectangle per cell: nine 200×200
 * fields (40,000 rectangles each) are too large for a notebook message.
 */
export function coarsenField(field: DecisionFieldInput, maxCells = 40): DecisionFieldInput {
  const { grid, values } = field;
  const need = Math.ceil(Math.max(grid.nx, grid.ny) / maxCells);
  if (need <= 1) return field;
  let f = need;
  while (f < need * 2 && (grid.nx % f !== 0 || grid.ny % f !== 0)) f++;
  if (grid.nx % f !== 0 || grid.ny % f !== 0) f = need;
  const nx = Math.floor(grid.nx / f);
  const ny = Math.floor(grid.ny / f);
  const out = new Float32Array(nx * ny);
  for (let i = 0; i < ny; i++) {
    for (let j = 0; j < nx; j++) {
      let sum = 0;
      for (let a = 0; a < f; a++) {
        for (let b = 0; b < f; b++) sum += values[(i * f + a) * grid.nx + j * f + b];
      }
      out[i * nx + j] = sum / (f * f);
    }
  }
  const dx = (grid.x1 - grid.x0) / grid.nx;
  const dy = (grid.y1 - grid.y0) / grid.ny;
  return {
    ...field,
    grid: { x0: grid.x0, y0: grid.y0, x1: grid.x0 + nx * f * dx, y1: grid.y0 + ny * f * dy, nx, ny },
    values: out,
  };
}

/**
 * The paper's Figure 1 for one seed of {@link TwoMoonsFigureResult}: one row per method with
 * (1) its synthetic points over the teacher's field, (2) the student's field with the same points,
 * (3) the student's field with the real points and its accuracy on them.
 */
export function figureOneGrid(r: TwoMoonsFigureResult, seedIndex = 0, size = 240, maxCells = 40): Figure {
  const s = r.seeds[seedIndex];
  const teacherField = coarsenField(s.teacherField, maxCells);
  const real = s.teacherField.points;
  const figs: Figure[] = [];
  const titles: string[] = [];
  const classes = new Set<number>();
  const panel = { width: size, height: size, legend: false };
  for (const m of s.methods) {
    const name = SHORT_NAMES[m.method] ?? m.method;
    const field = coarsenField(m.field, maxCells);
    const onTeacher = { ...teacherField, points: m.points };
    for (const l of Array.from(m.points?.labels ?? [])) classes.add(l);
    figs.push(decisionField(onTeacher, panel));
    const note = outsideNote(onTeacher);
    titles.push(note ? `${name}: samples${note}` : `${name}: samples on teacher`);
    figs.push(decisionField(field, panel));
    titles.push(`${name}: student`);
    figs.push(decisionField({ ...field, points: real }, { ...panel, r: 1.5 }));
    titles.push(`${name}: real points ${(100 * m.accuracy).toFixed(1)}%`);
  }
  for (const l of Array.from(real?.labels ?? [])) classes.add(l);
  return gridOfFigures(figs, {
    cols: 3,
    titles,
    title: `Two-moons, seed ${s.seed}: background P(class 0), line p = 0.5`,
    legend: decisionFieldLegend([...classes], s.teacherField.classNames),
  });
}

/** Caption suffix naming how many samples lie outside the drawn square (empty when none do). */
export function outsideNote(input: DecisionFieldInput): string {
  const { outside, total } = pointsOutside(input);
  if (outside === 0) return "";
  return outside === total ? ` (all ${total} outside)` : ` (${outside}/${total} outside)`;
}

/** The teacher's field with the real points for one seed. */
export function teacherFigure(r: TwoMoonsFigureResult, seedIndex = 0, size = 300, maxCells = 50): Figure {
  const s = r.seeds[seedIndex];
  return decisionField(coarsenField(s.teacherField, maxCells), {
    width: size,
    height: size,
    r: 1.5,
    title: `teacher, seed ${s.seed}: ${(100 * s.teacherAccuracy).toFixed(1)}% on the real points`,
  });
}

/** Accuracy on the real points per method: mean ± std over seeds and the per-seed values (percent). */
export function twoMoonsRows(r: TwoMoonsFigureResult): Record<string, unknown>[] {
  return r.summary.map((x) => ({
    method: METHOD_NAMES[x.method] ?? x.method,
    "mean (%)": 100 * x.mean,
    "std (%)": x.values.length > 1 ? 100 * x.std : null,
    seeds: x.values.length,
    "per seed (%)": x.values.map((v) => (100 * v).toFixed(1)).join(", "),
  }));
}

/** Per-seed rows: accuracy, how far the samples flew, teacher passes, synthesis time. */
export function twoMoonsSeedRows(r: TwoMoonsFigureResult): Record<string, unknown>[] {
  return r.seeds.flatMap((s) =>
    s.methods.map((m) => ({
      seed: s.seed,
      method: METHOD_NAMES[m.method] ?? m.method,
      "teacher acc (%)": 100 * s.teacherAccuracy,
      "student acc (%)": 100 * m.accuracy,
      "mean |x| of samples": m.meanRadius,
      "teacher forward": m.teacherForward,
      "teacher backward": m.teacherBackward,
      "synthesis s": m.synthSeconds,
    }))
  );
}

/** A checked claim: what the paper says, what was measured, whether it holds. */
export interface Claim {
  claim: string;
  measured: string;
  holds: boolean;
}

/**
 * Figure 1's claims on the measured numbers: CAKE within `tolerance` points of the teacher, and
 * above the naive and generator students by more than the larger seed-to-seed std.
 */
export function twoMoonsClaims(r: TwoMoonsFigureResult, tolerance = 3): Claim[] {
  const get = (m: string) => r.summary.find((x) => x.method === m);
  const t = get("teacher");
  const c = get("cake");
  const out: Claim[] = [];
  if (t && c) {
    const gap = 100 * (t.mean - c.mean);
    out.push({
      claim: `CAKE student within ${tolerance} points of the teacher`,
      measured: `teacher − CAKE = ${gap.toFixed(2)} points (n = ${c.values.length})`,
      holds: gap <= tolerance,
    });
  }
  for (const other of ["naive", "generator"]) {
    const o = get(other);
    if (!c || !o) continue;
    // Every method's values are in the order of r.seeds, so the gap is paired by seed.
    const seeds = r.seeds?.length === c.values.length ? r.seeds.map((x) => x.seed) : undefined;
    const g = compareGap(
      { name: "CAKE", values: c.values.map((v) => 100 * v), seeds },
      { name: other, values: o.values.map((v) => 100 * v), seeds },
    );
    out.push({
      claim: `CAKE clearly above the ${METHOD_NAMES[other]} student`,
      measured: `CAKE − ${other} = ${g.gap.toFixed(2)} points; must exceed ${
        g.threshold.toFixed(2)
      } from ${g.noiseWords}`,
      holds: g.measurable && g.gap > 0,
    });
  }
  return out;
}

/** Bars for {@link twoMoonsRows}: mean and std in percent per method. */
export function twoMoonsBars(r: TwoMoonsFigureResult): Record<string, unknown>[] {
  return r.summary.map((x) => ({
    method: METHOD_NAMES[x.method] ?? x.method,
    source: "measured",
    value: 100 * x.mean,
    std: x.values.length > 1 ? 100 * x.std : undefined,
  }));
}

const DATASET_NAMES: Record<string, string> = {
  "two-moons": "Two-moons",
  mnist: "MNIST",
  fmnist: "Fashion-MNIST",
  cifar10: "CIFAR-10",
};

/**
 * Paper vs measured rows for CAKE LeNet-5 → LeNet-5-half (table A): teacher and student per dataset,
 * measured mean ± std over the given runs (grouped by dataset).
 */
export function mnistPaperRows(results: CakeMnistResult[], scale: Scale): PaperVsMeasuredRow[] {
  const out: PaperVsMeasuredRow[] = [];
  for (const dataset of [...new Set(results.map((r) => r.dataset))]) {
    const rs = results.filter((r) => r.dataset === dataset);
    const paper = tableARow("cake", dataset, "LeNet-5-half");
    const t = meanStd(rs.map((r) => 100 * r.teacherAccuracy));
    const s = meanStd(rs.map((r) => 100 * r.studentAccuracy));
    const note = `${rs[0].synth.samples.toLocaleString("en-US")} synthetic samples × ${
      rs[0].settings.synth.steps
    } steps, ${rs[0].settings.student.epochs} student epochs`;
    out.push({
      method: "CAKE teacher",
      dataset: DATASET_NAMES[dataset] ?? dataset,
      pair: "LeNet-5",
      paper: paper?.teacherAcc[0],
      measured: t,
      scale,
      note: "kit LeNet-5 recipe for this scale",
    });
    out.push({
      method: "CAKE student",
      dataset: DATASET_NAMES[dataset] ?? dataset,
      pair: "LeNet-5 → LeNet-5-half",
      paper: paper?.studentAcc[0],
      measured: s,
      scale,
      note,
    });
  }
  return out;
}

/** Ablation summary rows (percent), with the change against the full method. */
export function ablationRows(r: CakeAblationResult): Record<string, unknown>[] {
  const full = r.summary.find((x) => x.variant === "full");
  return r.summary.map((x) => ({
    variant: x.label,
    "mean (%)": 100 * x.mean,
    "std (%)": x.values.length > 1 ? 100 * x.std : null,
    seeds: x.values.length,
    "Δ vs full (points)": full ? 100 * (x.mean - full.mean) : null,
    "per seed (%)": x.values.map((v) => (100 * v).toFixed(1)).join(", "),
  }));
}

/**
 * The direction the CAKE paper gives for a variant against the full method, where it gives one:
 * the contrastive term is the paper's contribution and its Figure 1 shows naive CE synthesis (no
 * contrastive term, no decay) below CAKE. The other variants of table D (TV prior, decay alone, LAKE,
 * G, soft vs hard) come from the code without a stated direction, so none is claimed for them.
 */
export const CAKE_PAPER_DIRECTIONS: Record<string, PaperDirection> = {
  "no-contr": "worse",
  "no-contr-no-decay": "worse",
};

/** Per-variant samples of an ablation (percent, with their seeds so gaps are paired by seed). */
function ablationSamples(r: CakeAblationResult) {
  const sample = (variant: string, name: string) => {
    const rows = r.rows.filter((x) => x.variant === variant);
    return { name, values: rows.map((x) => 100 * x.accuracy), seeds: rows.map((x) => x.seed) };
  };
  const full = r.summary.find((x) => x.variant === "full");
  if (!full) return undefined;
  return {
    full: sample("full", full.label),
    variants: r.summary.filter((x) => x.variant !== "full").map((x) => ({
      ...sample(x.variant, x.label),
      paper: CAKE_PAPER_DIRECTIONS[x.variant],
    })),
  };
}

/**
 * Verdict per ablation variant against the full method, computed from the per-seed accuracies
 * (lib/results/verdict.ts): "no measurable effect", "better than full" or "worse than full", and
 * whether that contradicts or does not reproduce the paper's direction where the paper states one.
 */
export function ablationVerdictRows(r: CakeAblationResult): Record<string, unknown>[] {
  const s = ablationSamples(r);
  if (!s) return [];
  return ablationVerdicts(s.full, s.variants).map((v) => ({
    variant: v.name,
    "Δ vs full (points)": v.gap,
    verdict: v.verdict,
    "paper's direction": v.paper,
  }));
}

/** The ablation verdicts as markdown: one line per variant, the measurable effects first. */
export function ablationVerdictText(r: CakeAblationResult): string {
  const s = ablationSamples(r);
  if (!s) return "No full-method run, so no ablation verdicts.";
  const verdicts = ablationVerdicts(s.full, s.variants);
  const order = { "better than full": 0, "worse than full": 1, "no measurable effect": 2 };
  const sorted = [...verdicts].sort((a, b) => order[a.verdict] - order[b.verdict]);
  const count = (k: keyof typeof order) => verdicts.filter((v) => v.verdict === k).length;
  const head = `${DATASET_NAMES[r.dataset] ?? r.dataset}, ${s.full.values.length} seed(s): ` +
    `${count("better than full")} variant(s) better than the full method, ${
      count("worse than full")
    } worse, ` +
    `${count("no measurable effect")} with no measurable effect.`;
  return [head, "", ...sorted.map((v) => `- ${v.sentence}`)].join("\n");
}

/** Ablation bars: one bar per variant, grouped by dataset, whiskers = std over seeds. */
export function ablationBars(results: CakeAblationResult[]): Record<string, unknown>[] {
  return results.flatMap((r) =>
    r.summary.map((x) => ({
      variant: x.label,
      dataset: r.dataset,
      value: 100 * x.mean,
      std: x.values.length > 1 ? 100 * x.std : undefined,
    }))
  );
}

/** Measured student accuracies of a matrix run as a heatmap matrix (percent, mean over seeds). */
export function measuredMatrix(r: CakeMatrixResult): Matrix {
  const rows = r.settings.teachers.map((t) => t.name);
  const cols = r.settings.students.map((s) => s.name);
  return {
    rows: rows.map((t) => `${t} (${(100 * r.teachers.find((x) => x.name === t)!.accuracy).toFixed(1)})`),
    cols,
    values: rows.map((t) =>
      cols.map((s) => {
        const c = r.summary.find((x) => x.teacherName === t && x.studentName === s);
        return c ? 100 * c.mean : null;
      })
    ),
  };
}

/** A paper matrix (table C) in heatmap form; teacher accuracies in the row names. */
export function paperMatrix(m: PaperMatrix): Matrix {
  return {
    rows: m.teachers.map((t, i) => `${t} (${formatPaperValue(m.teacherAcc[i])})`),
    cols: m.students,
    values: m.studentAcc.map((row) => row.map((v) => v.mean)),
  };
}

/**
 * Paper vs measured per (teacher, student) cell of a matrix run: paper cell looked up by name in
 * `paper` (none when the architecture is not in the paper's chart).
 */
export function matrixPaperRows(
  r: CakeMatrixResult,
  paper: PaperMatrix,
  names: (n: string) => string = (n) => n,
): PaperVsMeasuredRow[] {
  return r.summary.map((c) => {
    const i = paper.teachers.indexOf(names(c.teacherName));
    const j = paper.students.indexOf(names(c.studentName));
    return {
      method: "CAKE",
      dataset: DATASET_NAMES[r.settings.dataset] ?? r.settings.dataset,
      pair: `${c.teacherName} → ${c.studentName}`,
      paper: i >= 0 && j >= 0 ? paper.studentAcc[i][j] : undefined,
      measured: { mean: 100 * c.mean, std: 100 * c.std, n: c.n },
      scale: r.scale,
      note: i >= 0 && j >= 0 && names(c.teacherName) !== c.teacherName
        ? `paper: ${names(c.teacherName)} → ${names(c.studentName)}`
        : "",
    };
  });
}

/** Claim of table C (MNIST types): the diagonal (same type) beats the off-diagonal mean per teacher. */
export function sameTypeClaim(r: CakeMatrixResult): Claim[] {
  return r.settings.teachers.map((t) => {
    const row = r.summary.filter((c) => c.teacherName === t.name);
    const same = row.find((c) => c.studentName === t.name);
    const others = row.filter((c) => c.studentName !== t.name);
    const offMean = others.length ? others.reduce((a, c) => a + c.mean, 0) / others.length : NaN;
    return {
      claim: `${t.name} teacher: same-type student beats the other types on average`,
      measured: `same ${(100 * (same?.mean ?? NaN)).toFixed(1)}% vs others ${(100 * offMean).toFixed(1)}%`,
      holds: same !== undefined && same.mean > offMean,
    };
  });
}
