/**
 * The settings tables of the CAKE experiments (notebooks 20–24). In each, `paper` is the base — the
 * reference code's configuration (`conf/` defaults of ml-research/CAKE, as in
 * `/work/shared/spec/algorithms.md`: lib/cake's `cakeDefaults` and `CAKE_STUDENT`) — and `laptop` / `smoke` are overrides with
 * a note saying what differs and why. Ablations are named overrides of the synthesis knobs
 * ({@link CAKE_ABLATIONS}), as the reference code's `conf/experiment` files are.
 *
 * Why the laptop settings are what they are (2 shared cores, ≤ ~30 min per notebook):
 * - Two-moons: the paper's toy η0 = 1e-2 moves a point by ~1e-4·∇ per step, so the noise never leaves
 *   N(0, I) and naive CE and CAKE coincide; laptop keeps the weights, T and B but uses η0 = 1e3 for both.
 * - MNIST/FMNIST: at a fixed budget of sample·steps, more samples with fewer steps gave the better
 *   student (measured: 5k×64 steps → 79 %, 20k×16 → 88.9 %, 40k×8 → 90.8 %), hence 80 batches × 8 steps.
 * - Ablations: every variant × seed synthesises its own set, so 6,000 samples; the student needs ≈ 2,000
 *   SGD steps to leave the near-uniform plateau (20 epochs of batch 64).
 * - CIFAR-10 / model types: sized from measured training rates on the shared cores (ResNet-8 at width 16
 *   ≈ 38 images/s; MNIST CNN ≈ 60, ResNet-8 ≈ 110, ViT ≈ 150, MLP ≈ 1,000 images/s).
 *
 * @module
 */
import type { ModelName, ModelSpec } from "../models/registry.ts";
import type { Scale } from "../scale.ts";
import { type CakeDataset, cakeDefaults, type CakeOptions } from "../cake/options.ts";
import { CAKE_STUDENT, type StudentRecipe } from "../cake/student.ts";
import type { GeneratorOptions } from "../cake/generator.ts";
import type { DeepPartial, SettingsTable } from "./settings.ts";

/** The knobs of a CAKE synthesis (paper symbols on {@link CakeOptions}); the run sets seed and phase. */
export type SynthKnobs = Pick<
  CakeOptions,
  "numBatches" | "batchSize" | "groups" | "steps" | "eta0" | "decades" | "decay" | "weights" | "langevin"
>;

/** Knobs of the conditional-generator baseline (seed, phase and progress come from the run). */
export type GeneratorKnobs = Omit<GeneratorOptions, "seed" | "phase" | "progress">;

/** A network with a table name. */
export interface NamedSpec {
  name: string;
  spec: Omit<ModelSpec, "inputShape" | "numClasses">;
}

/** The reference synthesis knobs of a dataset: lib/cake's defaults (the reference code's `conf/`). */
export function paperSynth(dataset: CakeDataset): SynthKnobs {
  const { numBatches, batchSize, groups, steps, eta0, decades, decay, weights, langevin } = cakeDefaults(
    dataset,
  );
  return { numBatches, batchSize, groups, steps, eta0, decades, decay, weights, langevin };
}

const TOY_SYNTH = paperSynth("two-moons");
const MNIST_SYNTH = paperSynth("mnist");

// ---------------------------------------------------------------------------------------------
// Notebook 20 (and the two-moons part of 23)

/** Two-moons: real points, teacher MLP, three synthesis methods, students, the field grid. */
export interface TwoMoonsSettings {
  realPoints: number;
  noise: number;
  /** MLP 2→h→…→h→2 of teacher and students (`depth` extra hidden layers). */
  mlp: { hidden: number; depth: number };
  /** Teacher training on the real points (hard-label CE, SGD + one-cycle). */
  teacher: { epochs: number; batchSize: number; lr: number };
  cake: SynthKnobs;
  /** Naive CE-only synthesis (w_contr = w_tv = 0 and no decay are forced on top). */
  naive: SynthKnobs;
  generator: GeneratorKnobs;
  student: StudentRecipe;
  /** Decision-field grid over [lo, hi]² with `steps` points per axis. */
  grid: { lo: number; hi: number; steps: number };
  /** Synthetic points kept per method for the scatter overlay. */
  plotPoints: number;
  /** Synthesis batches per runner unit. */
  batchesPerShard: number;
}

const toySynth = (numBatches: number, batchSize: number, steps: number) => ({
  numBatches,
  batchSize,
  steps,
  eta0: 1e3,
});

/** Settings table of the two-moons figure. */
export const TWO_MOONS_SETTINGS: SettingsTable<TwoMoonsSettings> = {
  paper: {
    base: {
      realPoints: 10000,
      noise: 0.3,
      mlp: { hidden: 20, depth: 2 },
      teacher: { epochs: 30, batchSize: 256, lr: 0.5 },
      cake: TOY_SYNTH,
      naive: TOY_SYNTH,
      generator: {
        zDim: 5,
        zDist: "uniform",
        hidden: 10,
        depth: 2,
        steps: 15000,
        batchSize: 64,
        lr: 1e-3,
        diversity: 0,
        numSamples: 10000,
      },
      student: CAKE_STUDENT.other,
      grid: { lo: -2, hi: 2, steps: 200 },
      plotPoints: 500,
      batchesPerShard: 10,
    },
    note: "reference toy: 10,000 real points, M = 100 batches of B = 100, T = 250, η0 = 1e-2; generator " +
      "15,000 steps (the reference notebook)",
  },
  laptop: {
    override: {
      realPoints: 1000,
      teacher: { epochs: 30, batchSize: 32, lr: 0.1 },
      cake: toySynth(5, 100, 250),
      naive: toySynth(5, 100, 250),
      generator: { steps: 3000, numSamples: 500 },
      student: { batchSize: 25 },
      batchesPerShard: 5,
    },
    note: "500 synthetic points per method (the figure's count), η0 = 1e3 for CAKE and naive CE (paper " +
      "1e-2 leaves the noise in place), 1,000 real points, generator 3,000 steps",
  },
  smoke: {
    override: {
      realPoints: 200,
      teacher: { epochs: 10, batchSize: 32, lr: 0.1 },
      cake: toySynth(2, 20, 30),
      naive: toySynth(2, 20, 30),
      generator: { steps: 100, numSamples: 40 },
      student: { epochs: 5, batchSize: 10 },
      grid: { steps: 40 },
      plotPoints: 40,
      batchesPerShard: 1,
    },
    note: "pipeline check: 200 real points, 40 synthetic points × 30 steps, 40×40 grid",
  },
};

/** Note printed with two-moons runs at laptop scale (recorded in the run records). */
export const LAPTOP_TOY_NOTE =
  "laptop toy: eta0 = 1e3 for CAKE and naive (paper 1e-2 leaves the noise in place)";

// ---------------------------------------------------------------------------------------------
// Notebook 21 (and the MNIST part of 23)

/** LeNet-5 → LeNet-5-half on MNIST-like data. */
export interface CakeImageSettings {
  teacherModel: ModelName;
  /** Scale of the kit teacher recipe (`getTeacher`). */
  teacherScale: Scale;
  studentModel: ModelName;
  synth: SynthKnobs;
  student: StudentRecipe;
  /** Test images for the reported accuracy (null: all). */
  testLimit: number | null;
  batchesPerShard: number;
}

const IMAGE_BASE: CakeImageSettings = {
  teacherModel: "cake-lenet5",
  teacherScale: "paper",
  studentModel: "cake-lenet5-half",
  synth: MNIST_SYNTH,
  student: CAKE_STUDENT.mnistLike,
  testLimit: null,
  batchesPerShard: 16,
};
const IMAGE_SMOKE: DeepPartial<CakeImageSettings> = {
  teacherScale: "smoke",
  synth: { numBatches: 2, batchSize: 10, steps: 2 },
  student: { epochs: 1, batchSize: 16 },
  testLimit: 200,
  batchesPerShard: 1,
};
const SMOKE_IMAGE_NOTE = "pipeline check: smoke teacher, 20 synthetic images × 2 steps, 1 student epoch, " +
  "200 test images";

/** Settings table of notebook 21 (MNIST and Fashion-MNIST share the reference numbers). */
export const CAKE_IMAGE_SETTINGS: SettingsTable<CakeImageSettings> = {
  paper: {
    base: IMAGE_BASE,
    note:
      "reference: 512 batches × 500 samples × 256 steps (256,000 samples), student 10 epochs of batch 128",
  },
  laptop: {
    override: {
      teacherScale: "laptop",
      synth: { numBatches: 80, steps: 8 },
      student: { epochs: 15 },
      batchesPerShard: 10,
    },
    note: "40,000 samples × 8 steps (≈ 320k sample·steps, 5–8 min on 2 cores; paper 256,000 × 256); " +
      "student 15 epochs instead of 10",
  },
  smoke: { override: IMAGE_SMOKE, note: SMOKE_IMAGE_NOTE },
};

/** Settings table of the MNIST ablations of notebook 23 (smaller syntheses: one per variant × seed). */
export const CAKE_ABLATION_SETTINGS: SettingsTable<CakeImageSettings> = {
  paper: CAKE_IMAGE_SETTINGS.paper,
  laptop: {
    override: {
      teacherScale: "laptop",
      synth: { numBatches: 12, steps: 8 },
      student: { epochs: 20, batchSize: 64 },
      batchesPerShard: 12,
    },
    note: "6,000 samples × 8 steps per variant and seed (≈ 1 min each); student 20 epochs of batch 64 " +
      "(10 epochs of batch 128 on 4,000 samples left every student at one class)",
  },
  smoke: { override: IMAGE_SMOKE, note: SMOKE_IMAGE_NOTE },
};

/** One ablation variant: synthesis overrides and/or hard targets for the student. */
export interface CakeVariant {
  label: string;
  synth?: DeepPartial<SynthKnobs>;
  /** Train the student on the teacher's argmax (CE) instead of soft targets. */
  hardTargets?: boolean;
}

/** The ablations of the reference code (table D): contrastive, TV, decay, LAKE, G, soft vs hard. */
export const CAKE_ABLATIONS: Record<string, CakeVariant> = {
  full: { label: "CAKE (full)" },
  "no-contr": { label: "no contrastive (w_contr = 0)", synth: { weights: { contr: 0 } } },
  // MNIST's w_contr (1e-3) is 10⁶ below w_cls (1e3): these show the term when it weighs in.
  "contr=10": { label: "w_contr = 10 (CIFAR-10's ratio)", synth: { weights: { contr: 10 } } },
  "contr=1e3": { label: "w_contr = 1e3 (= w_cls)", synth: { weights: { contr: 1e3 } } },
  "no-decay": { label: "no η decay", synth: { decay: "none" } },
  "no-contr-no-decay": {
    label: "no contrastive, no decay (naive CE)",
    synth: { weights: { contr: 0 }, decay: "none" },
  },
  "no-tv": { label: "no TV prior (w_tv = 0)", synth: { weights: { tv: 0 } } },
  lake: { label: "LAKE (Langevin noise)", synth: { langevin: true } },
  "G=2": { label: "G = 2 groups", synth: { groups: 2 } },
  "G=5": { label: "G = 5 groups", synth: { groups: 5 } },
  "hard-targets": { label: "hard targets", hardTargets: true },
};

/**
 * Default variants per dataset. Two-moons has no TV, K = 2, and at η0 = 1e3 Langevin noise
 * sqrt(2η) ≈ 45 per step destroys every sample, so those variants are left out there.
 */
export function defaultAblations(dataset: "mnist" | "fmnist" | "two-moons"): string[] {
  return dataset === "two-moons"
    ? ["full", "no-contr", "no-decay", "no-contr-no-decay", "hard-targets"]
    : Object.keys(CAKE_ABLATIONS);
}
