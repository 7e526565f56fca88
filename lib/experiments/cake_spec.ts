/**
 * The "cake" experiment family as data: teachers → synthesis shards → student cells.
 *
 * A {@link CakeSpec} lists teachers (a kit recipe, a model folder, a spec trained here, or a two-moons
 * MLP trained on its real points), syntheses (teacher × method × seed × knobs, each split into shards
 * of consecutive batches: batch m is a function of the seed and m alone, so any split gives the same
 * samples) and student cells (synthesis × student network × recipe × seed). {@link cakePlan} turns it
 * into three levels of units keyed by content; `cake_notebooks.ts` builds the specs of notebooks
 * 20–24 from their settings tables.
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import type { ModelName } from "../models/registry.ts";
import type { Scale } from "../scale.ts";
import type { InputAdapterOptions } from "../teachers/adapters.ts";
import type { SynthesisMethod } from "../cake/types.ts";
import { hashOf } from "../runner/hash.ts";
import type { LevelPlan, RunPlan } from "../runner/plan.ts";
import type { StudentRecipe } from "../cake/student.ts";
import type { SpecTeacherRecipe } from "../train/spec_teachers.ts";
import type { GeneratorKnobs, NamedSpec, SynthKnobs, TwoMoonsSettings } from "./cake_settings.ts";

/** Where a CAKE teacher comes from (CAKE needs `logits+grad`: never an endpoint). */
export type CakeTeacherSource =
  | { kind: "recipe"; dataset: DatasetName; model: ModelName; scale: Scale; seed: number }
  | {
    kind: "folder";
    dataset: DatasetName;
    path: string;
    adapter?: InputAdapterOptions;
    /** `modelFingerprint` of the folder's model when the run was planned. */
    fingerprint: string;
  }
  | {
    kind: "trained";
    dataset: DatasetName;
    spec: NamedSpec["spec"];
    recipe: SpecTeacherRecipe;
    scale: Scale;
    seed: number;
  }
  | {
    kind: "moons";
    realPoints: number;
    noise: number;
    mlp: TwoMoonsSettings["mlp"];
    train: TwoMoonsSettings["teacher"];
    seed: number;
  };

/** A teacher of the run and how its accuracy is measured. */
export interface CakeTeacherJob {
  name: string;
  source: CakeTeacherSource;
  /** Test images for its accuracy (null: all; two-moons: its real points). */
  testLimit: number | null;
  /** Two-moons: the decision-field grid drawn for the teacher. */
  grid?: TwoMoonsSettings["grid"];
}

/** One synthetic transfer set. */
export interface CakeSynthJob {
  /** Index into {@link CakeSpec.teachers}. */
  teacher: number;
  method: SynthesisMethod;
  seed: number;
  /** Dataset whose normalisation the synthesis uses. */
  dataset: "mnist" | "fmnist" | "cifar10" | "two-moons";
  knobs: SynthKnobs | GeneratorKnobs;
  /** Batches per unit (cake, naive); the generator is one unit. */
  batchesPerShard: number;
}

/** One student trained on one synthetic set; one run record. */
export interface CakeCell {
  /** Index into {@link CakeSpec.syntheses}. */
  synth: number;
  student: NamedSpec;
  recipe: StudentRecipe;
  /** Train on the teacher's argmax (CE) instead of soft targets. */
  hard: boolean;
  seed: number;
  /** Result group (dataset or experiment part) and the variant's name and label. */
  group: string;
  variant: string;
  label: string;
  /** Test images for the accuracy (null: all; two-moons: the teacher's real points). */
  testLimit: number | null;
  /** Two-moons: draw the student's decision field on this grid. */
  grid?: TwoMoonsSettings["grid"];
  /** The run record's identity. */
  record: { experiment: string; method: string; dataset: string; notes: string[] };
}

/** The resolved spec of one CAKE run (plain JSON). */
export interface CakeSpec {
  family: "cake";
  notebook: "20" | "21" | "22" | "23" | "24";
  scale: Scale;
  seeds: number[];
  /** The resolved settings (shown by the notebook, recorded in every run record). */
  settings: Record<string, unknown>;
  /** What differs from the paper at this scale. */
  note: string;
  teachers: CakeTeacherJob[];
  syntheses: CakeSynthJob[];
  cells: CakeCell[];
}

/** Batch range [start, end) of every shard of synthesis `j`. */
export function synthShards(spec: CakeSpec, j: number): [number, number][] {
  const s = spec.syntheses[j];
  if (s.method === "generator") return [[0, 1]];
  const m = (s.knobs as SynthKnobs).numBatches;
  const out: [number, number][] = [];
  for (let a = 0; a < m; a += s.batchesPerShard) out.push([a, Math.min(m, a + s.batchesPerShard)]);
  return out;
}

/** Every synthesis shard in plan order, as (synthesis, range). */
export function allShards(spec: CakeSpec): { synth: number; range: [number, number] }[] {
  return spec.syntheses.flatMap((_, j) => synthShards(spec, j).map((range) => ({ synth: j, range })));
}

/**
 * Measured rates on this kit's 2-core reference machine, per CPU-second (half the wall rate on both
 * cores): `results/runs/cake-mnist.csv` (laptop notebook 21, two runs) — LeNet-5 synthesis 2,457–2,506
 * sample·steps/s, LeNet-5-half student 40,000 × 0.99 × 15 epochs in 70–95 s (≈ 7,000 images/s);
 * notebook 20 at laptop scale — two-moons MLP synthesis 125,000 sample·steps in 2.9–4 s.
 */
export const CAKE_RATES = {
  imageSampleStepsPerCpuSec: 1240,
  toySampleStepsPerCpuSec: 17000,
  studentImagesPerCpuSec: 3500,
  source: "CAKE_RATES in lib/experiments/cake_spec.ts (results/runs/cake-mnist.csv, notebook 20 laptop)",
};

function synthEstimate(spec: CakeSpec, j: number, batches: number) {
  const s = spec.syntheses[j];
  if (s.method === "generator") {
    const g = s.knobs as GeneratorKnobs;
    const images = g.steps * g.batchSize * 2 + g.numSamples;
    return { queries: images, cpuSeconds: images / CAKE_RATES.toySampleStepsPerCpuSec };
  }
  const k = s.knobs as SynthKnobs;
  const sampleSteps = batches * k.batchSize * k.steps;
  const rate = s.dataset === "two-moons"
    ? CAKE_RATES.toySampleStepsPerCpuSec
    : CAKE_RATES.imageSampleStepsPerCpuSec;
  // forward + backward per step, one forward at the end.
  return { queries: batches * k.batchSize * (2 * k.steps + 1), cpuSeconds: sampleSteps / rate };
}

/** Samples of synthesis `j`. */
function setSize(spec: CakeSpec, j: number): number {
  const s = spec.syntheses[j];
  if (s.method === "generator") return (s.knobs as GeneratorKnobs).numSamples;
  const k = s.knobs as SynthKnobs;
  return k.numBatches * k.batchSize;
}

/** The plan: "teacher" (one unit per teacher), "synth" (every shard), "student" (every cell). */
export function cakePlan(spec: CakeSpec): RunPlan {
  const teacherKeys = spec.teachers.map((t) =>
    hashOf({ kind: "cake-teacher", source: t.source, testLimit: t.testLimit, grid: t.grid ?? null })
  );
  const shards = allShards(spec);
  const synthKeys = shards.map(({ synth, range }) => {
    const s = spec.syntheses[synth];
    return hashOf({ kind: "cake-synth", ...s, teacher: teacherKeys[s.teacher], range });
  });
  const keysOf = (j: number) => synthKeys.filter((_, i) => shards[i].synth === j);
  const cellKeys = spec.cells.map((c) =>
    hashOf({ kind: "cake-student", shards: keysOf(c.synth), ...c, synth: null })
  );
  // Estimates per unit: the largest unit of its level.
  const worst = (xs: { queries: number; cpuSeconds: number }[]) =>
    xs.reduce((a, b) => (b.cpuSeconds > a.cpuSeconds ? b : a), { queries: 0, cpuSeconds: 0 });
  const synthCost = worst(shards.map(({ synth, range }) => synthEstimate(spec, synth, range[1] - range[0])));
  const studentCost = worst(spec.cells.map((c) => ({
    queries: 0,
    cpuSeconds: (setSize(spec, c.synth) * (1 - c.recipe.valFraction) * c.recipe.epochs) /
      CAKE_RATES.studentImagesPerCpuSec,
  })));
  const levels: LevelPlan[] = [
    {
      name: "teacher",
      kind: "cake-teacher",
      keys: teacherKeys,
      resources: { cores: 2, memoryMB: 3000, timeMinutes: 120 },
      deps: [],
      describe: spec.teachers.map((t) => `teacher ${t.name} (${t.source.kind})`),
    },
    {
      name: "synth",
      kind: "cake-synth",
      keys: synthKeys,
      // 2 cores (tfjs on both); time: 4× the estimate plus start-up.
      resources: { cores: 2, memoryMB: 3000, timeMinutes: Math.ceil((4 * synthCost.cpuSeconds) / 60) + 10 },
      deps: ["teacher"],
      describe: shards.map(({ synth, range }) => {
        const s = spec.syntheses[synth];
        return `${s.method} on ${spec.teachers[s.teacher].name}, seed ${s.seed}, batches ${range[0]}–${
          range[1] - 1
        }`;
      }),
      estimate: { ...synthCost, source: CAKE_RATES.source },
    },
    {
      name: "student",
      kind: "cake-student",
      keys: cellKeys,
      resources: { cores: 2, memoryMB: 3000, timeMinutes: Math.ceil((4 * studentCost.cpuSeconds) / 60) + 10 },
      deps: ["synth"],
      estimate: { ...studentCost, source: CAKE_RATES.source },
      describe: spec.cells.map((c) => `${c.student.name} student (${c.variant}), seed ${c.seed}`),
    },
  ];
  return {
    family: spec.family,
    spec: spec as unknown as Record<string, unknown>,
    teacher: hashOf(spec.teachers.map((t) => t.source)),
    levels,
  };
}
