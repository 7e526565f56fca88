/**
 * The result objects notebooks 20–24 show, built from a finished CAKE run's cells
 * (`collectCells`): the two-moons figure data (fields, plotted samples), the MNIST/FMNIST rows with
 * sample grids, the ablation tables and the teacher × student matrix.
 *
 * @module
 */
import { twoMoons } from "../data/toys.ts";
import type { RunRecord } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import type { DecisionFieldInput } from "../show/plots.ts";
import type { SynthesisMethod } from "../cake/types.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import { pointsOf } from "../experiments/fields.ts";
import type { CakeImageSettings, TwoMoonsSettings } from "../experiments/cake_settings.ts";
import type { CakeMatrixSettings } from "../experiments/cake_matrix_settings.ts";
import type { CakeSpec } from "../experiments/cake_spec.ts";
import { type StoredSet, teacherInfo } from "../experiments/cake_sets.ts";
import { meanRadius } from "../experiments/cake_units.ts";
import { collectCells, type CollectOptions, meanStd } from "../experiments/cake_collect.ts";
import { f32Of } from "../experiments/packed.ts";

function stats<M extends string>(method: M, values: number[]) {
  const { mean, std } = meanStd(values);
  return { method, mean, std, values };
}

// ---------------------------------------------------------------------------------------------
// Notebook 20

/** One method's outcome on one seed. */
export interface TwoMoonsMethodResult {
  method: SynthesisMethod;
  /** Student accuracy on the real points (final epoch). */
  accuracy: number;
  /** Student's class-0 probability field, with the plotted synthetic points as overlay. */
  field: DecisionFieldInput;
  /** Up to `plotPoints` synthetic points and the teacher's class for each. */
  points: { x: Float32Array; y: Float32Array; labels: Int32Array };
  /** Mean distance of the synthetic points from the origin (how far they flew). */
  meanRadius: number;
  synthSeconds: number;
  teacherForward: number;
  teacherBackward: number;
  record: RunRecord;
}

/** One seed of the figure. */
export interface TwoMoonsSeedResult {
  seed: number;
  teacherAccuracy: number;
  /** Teacher field with the real points. */
  teacherField: DecisionFieldInput;
  methods: TwoMoonsMethodResult[];
}

/** Everything the two-moons notebook shows. */
export interface TwoMoonsFigureResult {
  scale: Scale;
  settings: TwoMoonsSettings;
  seeds: TwoMoonsSeedResult[];
  /** Mean ± std over seeds per method (and the teacher), accuracy on the real points. */
  summary: { method: "teacher" | SynthesisMethod; mean: number; std: number; values: number[] }[];
}

function fieldOf(values: Float32Array, g: TwoMoonsSettings["grid"]): DecisionFieldInput {
  return { grid: { x0: g.lo, x1: g.hi, y0: g.lo, y1: g.hi, nx: g.steps, ny: g.steps }, values };
}

/** Up to `max` points of a 2-D set, evenly strided so that every batch (every η_m) is represented. */
function plotPoints(set: StoredSet, max: number) {
  const n = Math.min(max, set.shape[0]);
  const stride = set.shape[0] / n;
  const x = new Float32Array(n), y = new Float32Array(n), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor(i * stride);
    x[i] = set.x[2 * j];
    y[i] = set.x[2 * j + 1];
    labels[i] = set.teacherClass[j];
  }
  return { x, y, labels };
}

/** The two-moons figure of a finished notebook-20 run. */
export async function readTwoMoonsFigure(
  store: RunStore,
  opts: CollectOptions = {},
): Promise<TwoMoonsFigureResult> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const s = spec.settings as unknown as TwoMoonsSettings;
  const cells = await collectCells(store, opts);
  const teacherKeys = levelOf(store.plan, "teacher").keys;
  const seeds: TwoMoonsSeedResult[] = [];
  for (const [t, job] of spec.teachers.entries()) {
    if (job.source.kind !== "moons") continue;
    const info = await teacherInfo(store, t);
    const real = twoMoons({ n: job.source.realPoints, noise: job.source.noise, seed: job.source.seed });
    const teacherField = fieldOf(f32Of(await store.readBytes(teacherKeys[t], "field.f32")), s.grid);
    teacherField.points = pointsOf(real);
    const methods = cells.filter((c) => c.teacherIndex === t).map((c): TwoMoonsMethodResult => {
      const points = plotPoints(c.set, s.plotPoints);
      return {
        method: c.set.method,
        accuracy: c.metrics.accuracy,
        field: { ...fieldOf(c.field!, s.grid), points },
        points,
        meanRadius: meanRadius(c.set.x),
        synthSeconds: c.set.stats.seconds,
        teacherForward: c.set.passes.forward,
        teacherBackward: c.set.passes.backward,
        record: c.record,
      };
    });
    seeds.push({ seed: job.source.seed, teacherAccuracy: info.accuracy, teacherField, methods });
  }
  const methods = [...new Set(seeds.flatMap((x) => x.methods.map((m) => m.method)))];
  const summary: TwoMoonsFigureResult["summary"] = [
    stats("teacher", seeds.map((r) => r.teacherAccuracy)),
    ...methods.map((m) => stats(m, seeds.map((r) => r.methods.find((x) => x.method === m)!.accuracy))),
  ];
  return { scale: spec.scale, settings: s, seeds, summary };
}

// ---------------------------------------------------------------------------------------------
// Notebook 21

/** One dataset × seed of notebook 21. */
export interface CakeMnistResult {
  dataset: "mnist" | "fmnist";
  scale: Scale;
  seed: number;
  settings: CakeImageSettings;
  teacherAccuracy: number;
  /** Final-epoch test accuracy of the student (the reported number). */
  studentAccuracy: number;
  studentBestAccuracy: number;
  valAgreement: number;
  /** Synthetic samples for an image grid: `perClass` per teacher class, spread over the batches. */
  grid: { x: Float32Array; shape: number[]; labels: Int32Array; eta: Float32Array };
  synth: { samples: number; seconds: number; sampleStepsPerSec: number; hitRate: number; shards: number };
  teacherForward: number;
  teacherBackward: number;
  record: RunRecord;
}

/** `perClass` samples per teacher class, spread over the batches (early = large η, late = small η). */
export function sampleGrid(set: StoredSet, perClass: number): CakeMnistResult["grid"] {
  const n = set.shape[0];
  const d = set.x.length / n;
  const chosen: number[] = [];
  for (let c = 0; c < set.numClasses; c++) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (set.teacherClass[i] === c) idx.push(i);
    const take = Math.min(perClass, idx.length);
    for (let j = 0; j < take; j++) chosen.push(idx[Math.floor((j * idx.length) / take)]);
  }
  const x = new Float32Array(chosen.length * d);
  const labels = new Int32Array(chosen.length), eta = new Float32Array(chosen.length);
  chosen.forEach((j, i) => {
    x.set(set.x.subarray(j * d, (j + 1) * d), i * d);
    labels[i] = set.teacherClass[j];
    eta[i] = set.eta[j];
  });
  return { x, shape: [chosen.length, ...set.shape.slice(1)], labels, eta };
}

/** The rows of a finished notebook-21 run (one per dataset and seed). */
export async function readCakeMnist(
  store: RunStore,
  opts: CollectOptions & { gridPerClass?: number } = {},
): Promise<CakeMnistResult[]> {
  const spec = store.plan.spec as unknown as CakeSpec;
  return (await collectCells(store, opts)).map((c) => ({
    dataset: c.cell.group as "mnist" | "fmnist",
    scale: spec.scale,
    seed: c.cell.seed,
    settings: spec.settings as unknown as CakeImageSettings,
    teacherAccuracy: c.teacher.accuracy,
    studentAccuracy: c.metrics.accuracy,
    studentBestAccuracy: c.metrics.bestAccuracy,
    valAgreement: c.metrics.valAgreement,
    grid: sampleGrid(c.set, opts.gridPerClass ?? 8),
    synth: {
      samples: c.set.shape[0],
      seconds: c.set.stats.seconds,
      sampleStepsPerSec: c.set.stats.sampleStepsPerSec,
      hitRate: c.set.stats.hitRate,
      shards: c.set.stats.shards,
    },
    teacherForward: c.set.passes.forward,
    teacherBackward: c.set.passes.backward,
    record: c.record,
  }));
}

// ---------------------------------------------------------------------------------------------
// Notebook 23

/** Rows of an ablation: one per (variant, seed), plus mean ± std per variant. */
export interface CakeAblationResult {
  dataset: string;
  scale: Scale;
  settings: CakeImageSettings | TwoMoonsSettings;
  /** Teacher accuracy (mean over the part's teachers). */
  teacherAccuracy: number;
  rows: {
    variant: string;
    label: string;
    seed: number;
    accuracy: number;
    hitRate: number;
    seconds: number;
  }[];
  summary: { variant: string; label: string; mean: number; std: number; values: number[] }[];
}

/** The ablation tables of a finished notebook-23 run: two-moons and MNIST, in that order. */
export async function readCakeAblation(
  store: RunStore,
  opts: CollectOptions = {},
): Promise<CakeAblationResult[]> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const cells = await collectCells(store, opts);
  const settings = spec.settings as { twoMoons: TwoMoonsSettings; mnist: CakeImageSettings };
  return ["two-moons", "mnist"].filter((g) => cells.some((c) => c.cell.group === g)).map((group) => {
    const mine = cells.filter((c) => c.cell.group === group);
    const rows = mine.map((c) => ({
      variant: c.cell.variant,
      label: c.cell.label,
      seed: c.cell.seed,
      accuracy: c.metrics.accuracy,
      hitRate: c.set.stats.hitRate,
      seconds: c.set.stats.seconds + c.metrics.trainSeconds,
    }));
    const teachers = new Map(mine.map((c) => [c.teacherIndex, c.teacher.accuracy]));
    const variants = [...new Map(rows.map((r) => [r.variant, r.label])).entries()];
    return {
      dataset: group,
      scale: spec.scale,
      settings: group === "mnist" ? settings.mnist : settings.twoMoons,
      teacherAccuracy: meanStd([...teachers.values()]).mean,
      rows,
      summary: variants.map(([variant, label]) => {
        const { mean, std, values } = stats(
          variant,
          rows.filter((r) => r.variant === variant).map((r) => r.accuracy),
        );
        return { variant, label, mean, std, values };
      }),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Notebooks 22 and 24

/** One teacher → student transfer of a matrix run. */
export interface CakeTransferResult {
  teacherName: string;
  studentName: string;
  seed: number;
  teacherAccuracy: number;
  studentAccuracy: number;
  studentBestAccuracy: number;
  syntheticSamples: number;
  hitRate: number;
  synthSeconds: number;
  trainSeconds: number;
  record: RunRecord;
}

/** A matrix run: one cell per (teacher, student, seed) and per-pair summaries. */
export interface CakeMatrixResult {
  scale: Scale;
  settings: CakeMatrixSettings;
  note: string;
  seeds: number[];
  teachers: { name: string; accuracy: number; cached: boolean; seconds: number }[];
  cells: CakeTransferResult[];
  /** Mean ± std over seeds of the student accuracy per (teacher, student). */
  summary: { teacherName: string; studentName: string; mean: number; std: number; n: number }[];
}

/** The matrix of a finished notebook-22 or -24 run. */
export async function readCakeMatrix(store: RunStore, opts: CollectOptions = {}): Promise<CakeMatrixResult> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const s = spec.settings as unknown as CakeMatrixSettings;
  const collected = await collectCells(store, opts);
  const teachers = await Promise.all(spec.teachers.map(async (_, t) => {
    const i = await teacherInfo(store, t);
    return { name: i.name, accuracy: i.accuracy, cached: i.cached, seconds: i.seconds };
  }));
  const cells = collected.map((c): CakeTransferResult => ({
    teacherName: c.teacher.name,
    studentName: c.cell.student.name,
    seed: c.cell.seed,
    teacherAccuracy: c.teacher.accuracy,
    studentAccuracy: c.metrics.accuracy,
    studentBestAccuracy: c.metrics.bestAccuracy,
    syntheticSamples: c.set.shape[0],
    hitRate: c.set.stats.hitRate,
    synthSeconds: c.set.stats.seconds,
    trainSeconds: c.metrics.trainSeconds,
    record: c.record,
  }));
  const summary = s.teachers.flatMap((t) =>
    s.students.map((st) => ({
      teacherName: t.name,
      studentName: st.name,
      ...meanStd(
        cells.filter((c) => c.teacherName === t.name && c.studentName === st.name).map((c) =>
          c.studentAccuracy
        ),
      ),
    }))
  );
  return { scale: spec.scale, settings: s, note: spec.note, seeds: spec.seeds, teachers, cells, summary };
}
