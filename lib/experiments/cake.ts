/**
 * CAKE experiments for the notebooks 20 (two-moons Figure 1), 21 (MNIST / Fashion-MNIST) and
 * 23 (ablations). Each driver maps a {@link Scale} to concrete settings (exported, recorded with
 * every run), runs teacher → `logits+grad` oracle → synthesis → student, saves run records under
 * `results/runs/`, and returns plain data for tables and plots. Nothing here prints.
 *
 * Laptop-scale choices (2 cores, ≤ ~30 min per notebook) and why:
 * - Two-moons: 500 synthetic points per method (as in the paper's figure), 3 seeds. The paper's toy
 *   step size η0 = 1e-2 (with w_cls = 1e-2, w_contr = 1e-3, B = 100) moves a point by ~1e-4·∇ per
 *   step, so the noise never leaves N(0, I) and naive CE and CAKE coincide. The laptop setting keeps
 *   the paper's weights, T and B but uses η0 = 1e3 for *both* CAKE and naive CE (same noise, same
 *   step), which is where CE alone drives the points outwards; `paper` keeps η0 = 1e-2.
 * - MNIST/FMNIST: the paper's per-batch settings (B = 500, G = 10, η0 = 0.1, D = 4, w_cls = 1e3,
 *   w_contr = 1e-3, w_tv = 1e7) with M = 80 batches of T = 8 steps (40,000 samples; paper 512 × 256
 *   steps). At a fixed budget of sample·steps, more samples with fewer steps gave the better student
 *   (MNIST, measured: 5k×64 steps → 79 %, 20k×16 → 88.9 %, 40k×8 → 90.8 %). Student: the paper's
 *   MNIST recipe with 15 epochs instead of 10.
 * - Ablations: images use 4,000 samples × 8 steps per variant and seed ({@link cakeAblationSettings});
 *   two-moons uses the figure's laptop settings (and shows the contrastive term's effect when the
 *   step size does not decay: on MNIST w_contr = 1e-3 makes its gradient ~1e-5 of the CE gradient).
 *
 * @module
 */
import { modelFingerprint } from "../models/fingerprint.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { type LabeledData, loadDataset, repoRoot, twoMoons } from "../data/mod.ts";
import type { ModelName, ModelSpec } from "../models/registry.ts";
import { logitsGradOracle } from "../oracle/oracle.ts";
import { type RunRecord, saveRun, startRun } from "../results/mod.ts";
import type { Scale } from "../scale.ts";
import type { DecisionFieldInput } from "../show/plots.ts";
import { evaluate, train, type TrainConfig, type TrainSet } from "../train/trainer.ts";
import { getTeacher } from "../train/teachers.ts";
import { Rng } from "../util/rng.ts";
import { type CakeDataset, type CakeOptionsInput } from "../cake/options.ts";
import { synthesize } from "../cake/synthesize.ts";
import { synthesizeNaive } from "../cake/naive.ts";
import { type GeneratorOptions, synthesizeWithGenerator } from "../cake/generator.ts";
import type { SynthesisMethod, SyntheticSet } from "../cake/types.ts";
import { classField } from "./fields.ts";

// ---------------------------------------------------------------------------------------------
// Students

/** The CAKE student recipe (soft-target CE at τ = 1, SGD momentum 0.9, wd 5e-4, one-cycle). */
export interface StudentRecipe {
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the one-cycle schedule. */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Fraction of the synthetic set held out as validation (paper: 0.01). */
  valFraction: number;
  /** Trainer replicas (default "auto": both cores for long runs). */
  workers?: number | "auto";
}

/** Paper student recipes: CIFAR-10 (and default) / MNIST-like. */
export function paperStudentRecipe(dataset: CakeDataset | "two-moons"): StudentRecipe {
  const mnistLike = dataset === "mnist" || dataset === "fmnist";
  return {
    epochs: mnistLike ? 10 : 30,
    batchSize: mnistLike ? 128 : 256,
    lr: mnistLike ? 0.1 : 0.5,
    momentum: 0.9,
    weightDecay: 5e-4,
    valFraction: 0.01,
  };
}

/** A synthetic set split into the student's training part and a held-out validation part. */
export interface StudentSplit {
  train: TrainSet;
  /** Validation inputs with the teacher's argmax as label (agreement = student/teacher fidelity). */
  val: LabeledData;
}

/**
 * Split a synthetic set 99/1 (by `valFraction`) with a seeded shuffle. `hard` replaces the soft
 * targets with the teacher's argmax labels (the soft-vs-hard ablation).
 */
export function splitSynthetic(
  set: SyntheticSet,
  valFraction: number,
  seed: number,
  hard = false,
): StudentSplit {
  const n = set.shape[0];
  const d = set.x.length / n;
  const k = set.numClasses;
  const nVal = valFraction > 0 ? Math.max(1, Math.round(n * valFraction)) : 0;
  const perm = new Rng(seed).permutation(n);
  const take = (idx: Int32Array) => {
    const x = new Float32Array(idx.length * d);
    const t = new Float32Array(idx.length * k);
    const y = new Int32Array(idx.length);
    idx.forEach((j, i) => {
      x.set(set.x.subarray(j * d, (j + 1) * d), i * d);
      t.set(set.targets.subarray(j * k, (j + 1) * k), i * k);
      y[i] = set.teacherClass[j];
    });
    return { x, t, y, shape: [idx.length, ...set.shape.slice(1)] };
  };
  const tr = take(perm.subarray(nVal));
  const va = take(perm.subarray(0, nVal));
  return {
    train: hard ? { x: tr.x, shape: tr.shape, y: tr.y } : { x: tr.x, shape: tr.shape, targets: tr.t },
    val: {
      name: `${set.method}-val`,
      split: "synthetic-val",
      x: va.x,
      y: va.y,
      shape: va.shape,
      numClasses: k,
      classNames: Array.from({ length: k }, (_, i) => String(i)),
    },
  };
}

/** The trainer config of a student recipe. */
export function studentTrainConfig(
  r: StudentRecipe,
  seed: number,
  hard: boolean,
  label: string,
): TrainConfig {
  return {
    epochs: r.epochs,
    batchSize: r.batchSize,
    seed,
    loss: hard ? { kind: "ce" } : { kind: "soft-ce", temperature: 1 },
    optimizer: { kind: "sgd", lr: r.lr, momentum: r.momentum, weightDecay: r.weightDecay },
    schedule: { kind: "onecycle" },
    workers: r.workers ?? "auto",
    label,
  };
}

/** Result of training one student on a synthetic set. */
export interface StudentOutcome {
  model: tfl.LayersModel;
  /** Final-epoch accuracy on the real evaluation data (the reported number). */
  accuracy: number;
  /** Best-epoch accuracy (test-set model selection; labelled, not the headline). */
  bestAccuracy: number;
  /** Agreement with the teacher on the held-out synthetic validation part (NaN if none). */
  valAgreement: number;
  trainSeconds: number;
  imagesPerSec: number;
}

/** Train a student on a synthetic set and evaluate it on real data. */
export async function trainStudent(
  spec: ModelSpec,
  set: SyntheticSet,
  recipe: StudentRecipe,
  evalData: LabeledData,
  opts: { seed: number; hard?: boolean; label?: string },
): Promise<StudentOutcome> {
  const split = splitSynthetic(set, recipe.valFraction, opts.seed, opts.hard ?? false);
  const cfg = studentTrainConfig(
    recipe,
    opts.seed,
    opts.hard ?? false,
    opts.label ?? `student (${set.method})`,
  );
  const res = await train(spec, split.train, cfg, evalData);
  const valAgreement = split.val.shape[0] > 0 ? await evaluate(res.model, split.val) : NaN;
  return {
    model: res.model,
    accuracy: res.finalTestAcc!,
    bestAccuracy: res.bestTestAcc!,
    valAgreement,
    trainSeconds: res.wallTimeSec,
    imagesPerSec: res.imagesPerSec,
  };
}

// ---------------------------------------------------------------------------------------------
// Two-moons, Figure 1

/** Settings of {@link runTwoMoonsFigure} at one scale. */
export interface TwoMoonsSettings {
  /** Real two-moons points (noise 0.3, standardised): the teacher's data and the accuracy set. */
  realPoints: number;
  noise: number;
  /** The network of teacher and students: MLP 2→h→…→h→2 (`depth` extra hidden layers). */
  mlp: { hidden: number; depth: number };
  /** Teacher training on the real points (hard-label CE, SGD + one-cycle). */
  teacher: { epochs: number; batchSize: number; lr: number };
  /** CAKE synthesis (over the "two-moons" defaults). */
  cake: CakeOptionsInput;
  /** Naive CE-only synthesis (w_contr = w_tv = 0, no decay are forced). */
  naive: CakeOptionsInput;
  /** Conditional generator baseline. */
  generator: Partial<GeneratorOptions>;
  /** Student recipe (same for the three methods). */
  student: StudentRecipe;
  /** Decision-field grid over [lo, hi]² with `steps` points per axis. */
  grid: { lo: number; hi: number; steps: number };
  /** Synthetic points returned per method for the scatter overlay. */
  plotPoints: number;
}

/** Per-scale settings of the two-moons figure (see the module doc for the laptop η0). */
export function twoMoonsSettings(scale: Scale): TwoMoonsSettings {
  const mlp = { hidden: 20, depth: 2 };
  const grid = { lo: -2, hi: 2, steps: 200 };
  const student = (epochs: number, batchSize: number): StudentRecipe => ({
    epochs,
    batchSize,
    lr: 0.5,
    momentum: 0.9,
    weightDecay: 5e-4,
    valFraction: 0.01,
  });
  if (scale === "smoke") {
    const synth = { numBatches: 2, batchSize: 20, steps: 30, eta0: 1e3 };
    return {
      realPoints: 200,
      noise: 0.3,
      mlp,
      teacher: { epochs: 10, batchSize: 32, lr: 0.1 },
      cake: synth,
      naive: synth,
      generator: { steps: 100, numSamples: 40 },
      student: student(5, 10),
      grid: { lo: -2, hi: 2, steps: 40 },
      plotPoints: 40,
    };
  }
  if (scale === "laptop") {
    const synth = { numBatches: 5, batchSize: 100, steps: 250, eta0: 1e3 };
    return {
      realPoints: 1000,
      noise: 0.3,
      mlp,
      teacher: { epochs: 30, batchSize: 32, lr: 0.1 },
      cake: synth,
      naive: synth,
      generator: { steps: 3000, numSamples: 500 },
      student: student(30, 25),
      grid,
      plotPoints: 500,
    };
  }
  // paper: the reference toy settings (10k real points, M = 100 batches of B = 100, T = 250, η0 = 1e-2).
  return {
    realPoints: 10000,
    noise: 0.3,
    mlp,
    teacher: { epochs: 30, batchSize: 256, lr: 0.5 },
    cake: {},
    naive: {},
    generator: { steps: 15000, numSamples: 10000 },
    student: student(30, 256),
    grid,
    plotPoints: 500,
  };
}

/** One method's outcome on one seed. */
export interface TwoMoonsMethodResult {
  method: SynthesisMethod;
  /** Student accuracy on the real points (final epoch). */
  accuracy: number;
  /** Student's class-0 probability field (with the plotted synthetic points as overlay). */
  field: DecisionFieldInput;
  /** Up to `plotPoints` synthetic points and the teacher's class for each. */
  points: { x: Float32Array; y: Float32Array; labels: Int32Array };
  /** Mean distance of the synthetic points from the origin (how far they flew). */
  meanRadius: number;
  synthSeconds: number;
  /** Teacher images passed forward / backward by this method. */
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

/** Options of {@link runTwoMoonsFigure}. */
export interface TwoMoonsFigureOptions {
  scale?: Scale;
  /** Default [1, 2, 3] (laptop, paper) or [1] (smoke). */
  seeds?: number[];
  /** Override any part of the scale's settings. */
  settings?: Partial<TwoMoonsSettings>;
  /** Which methods to run (default all three). */
  methods?: SynthesisMethod[];
  /** Save run records (default true). */
  save?: boolean;
  /** Where run records go (default results/runs). */
  resultsDir?: string;
}

/**
 * The paper's Figure 1 on two-moons: per seed, a teacher MLP on real points, 500 synthetic points
 * from naive CE synthesis, a conditional generator and CAKE (all through the same `logits+grad`
 * oracle, never seeing the real points), a student per method, accuracies on the real points and
 * class-0 probability fields for the 3×3 grid of plots.
 */
export async function runTwoMoonsFigure(opts: TwoMoonsFigureOptions = {}): Promise<TwoMoonsFigureResult> {
  await initBackend();
  const scale = opts.scale ?? "laptop";
  const s: TwoMoonsSettings = { ...twoMoonsSettings(scale), ...(opts.settings ?? {}) };
  const seeds = opts.seeds ?? (scale === "smoke" ? [1] : [1, 2, 3]);
  const methods = opts.methods ?? ["naive", "generator", "cake"];
  const spec: ModelSpec = { name: "mlp", inputShape: [2], numClasses: 2, options: { ...s.mlp } };
  const out: TwoMoonsSeedResult[] = [];
  for (const seed of seeds) {
    const real = twoMoons({ n: s.realPoints, noise: s.noise, seed });
    const t = await trainToyTeacher(spec, real, s, seed);
    const teacher = t.model;
    const teacherAccuracy = t.accuracy;
    const seedResult: TwoMoonsSeedResult = {
      seed,
      teacherAccuracy,
      teacherField: classField(teacher, s.grid, real),
      methods: [],
    };
    for (const method of methods) {
      const run = startRun({
        experiment: "cake-two-moons",
        method: `${method}`,
        dataset: "two-moons",
        scale,
        seed,
        config: { settings: s, method },
      });
      const oracle = logitsGradOracle(teacher);
      const t0 = performance.now();
      const set = await synthesizeToy(method, oracle, s, seed);
      const synthSeconds = (performance.now() - t0) / 1000;
      const student = await trainStudent(spec, set, { ...s.student }, real, {
        seed: seed + 100,
        label: `two-moons student (${method}) s${seed}`,
      });
      const points = pointsOfSet(set, s.plotPoints);
      const field = classField(student.model, s.grid);
      field.points = points;
      const snapshot = oracle.ledger.snapshot();
      const record = run.finish({
        studentAcc: student.accuracy,
        studentBestAcc: student.bestAccuracy,
        teacherAcc: teacherAccuracy,
        valAgreement: student.valAgreement,
        synthSeconds,
        syntheticPoints: set.shape[0],
        meanRadius: meanRadius(set),
        teacherForward: snapshot.totals.images.forward,
        teacherBackward: snapshot.totals.images.backward,
      }, { ledger: snapshot, notes: scale === "laptop" ? [LAPTOP_TOY_NOTE] : [] });
      if (opts.save ?? true) await saveRun(record, { dir: opts.resultsDir });
      seedResult.methods.push({
        method,
        accuracy: student.accuracy,
        field,
        points,
        meanRadius: meanRadius(set),
        synthSeconds,
        teacherForward: snapshot.totals.images.forward,
        teacherBackward: snapshot.totals.images.backward,
        record,
      });
      student.model.dispose();
      if ("generator" in set) (set.generator as { dispose(): void }).dispose();
    }
    teacher.dispose();
    out.push(seedResult);
  }
  const summary: TwoMoonsFigureResult["summary"] = [
    stats("teacher", out.map((r) => r.teacherAccuracy)),
    ...methods.map((m) => stats(m, out.map((r) => r.methods.find((x) => x.method === m)!.accuracy))),
  ];
  return { scale, settings: s, seeds: out, summary };
}

/** Train the two-moons teacher (hard-label CE on the real points, SGD + one-cycle). */
async function trainToyTeacher(spec: ModelSpec, real: LabeledData, s: TwoMoonsSettings, seed: number) {
  const t = await train(spec, { x: real.x, shape: real.shape, y: real.y }, {
    epochs: s.teacher.epochs,
    batchSize: s.teacher.batchSize,
    seed,
    loss: { kind: "ce" },
    optimizer: { kind: "sgd", lr: s.teacher.lr, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { kind: "onecycle" },
    workers: 1,
    label: `two-moons teacher s${seed}`,
  }, real);
  return { model: t.model, accuracy: t.finalTestAcc! };
}

const LAPTOP_TOY_NOTE = "laptop toy: eta0 = 1e3 for CAKE and naive (paper 1e-2 leaves the noise in place)";

async function synthesizeToy(
  method: SynthesisMethod,
  oracle: ReturnType<typeof logitsGradOracle>,
  s: TwoMoonsSettings,
  seed: number,
): Promise<SyntheticSet> {
  if (method === "cake") {
    return await synthesize(oracle, {
      dataset: "two-moons",
      ...s.cake,
      seed,
      progress: `CAKE synthesis s${seed}`,
    });
  }
  if (method === "naive") {
    return await synthesizeNaive(oracle, {
      dataset: "two-moons",
      ...s.naive,
      seed,
      progress: `naive CE s${seed}`,
    });
  }
  return await synthesizeWithGenerator(oracle, { ...s.generator, seed, progress: `generator s${seed}` });
}

function pointsOfSet(set: SyntheticSet, max: number) {
  const n = Math.min(max, set.shape[0]);
  // Evenly strided subset, so every batch (every η_m) is represented.
  const stride = set.shape[0] / n;
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor(i * stride);
    x[i] = set.x[2 * j];
    y[i] = set.x[2 * j + 1];
    labels[i] = set.teacherClass[j];
  }
  return { x, y, labels };
}

function meanRadius(set: SyntheticSet): number {
  const n = set.shape[0];
  let r = 0;
  for (let i = 0; i < n; i++) r += Math.hypot(set.x[2 * i], set.x[2 * i + 1]);
  return r / n;
}

function stats<M extends string>(method: M, values: number[]) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1
    ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1))
    : 0;
  return { method, mean, std, values };
}

// ---------------------------------------------------------------------------------------------
// MNIST / Fashion-MNIST

/** Settings of {@link runCakeMnist} / {@link runCakeAblation} at one scale. */
export interface CakeImageSettings {
  /** Teacher network (trained by getTeacher with the kit's LeNet recipe for the scale). */
  teacherModel: ModelName;
  /** Student network. */
  studentModel: ModelName;
  /** Synthesis options over the dataset's paper defaults. */
  synth: CakeOptionsInput;
  /** Student recipe. */
  student: StudentRecipe;
  /** Test images used for the reported accuracy (all if absent). */
  testLimit?: number;
}

/** Per-scale settings for MNIST-like CAKE runs. */
export function cakeImageSettings(dataset: "mnist" | "fmnist", scale: Scale): CakeImageSettings {
  const paper = paperStudentRecipe(dataset);
  if (scale === "smoke") {
    return {
      teacherModel: "cake-lenet5",
      studentModel: "cake-lenet5-half",
      synth: { numBatches: 2, batchSize: 10, steps: 2 },
      student: { ...paper, epochs: 1, batchSize: 16 },
      testLimit: 200,
    };
  }
  if (scale === "laptop") {
    return {
      teacherModel: "cake-lenet5",
      studentModel: "cake-lenet5-half",
      // 40,000 samples × 8 steps (paper: 256,000 × 256); ≈ 320k sample·steps ≈ 5–8 min on 2 cores.
      synth: { numBatches: 80, steps: 8 },
      student: { ...paper, epochs: 15 },
    };
  }
  return { teacherModel: "cake-lenet5", studentModel: "cake-lenet5-half", synth: {}, student: paper };
}

/** Options of {@link runCakeMnist}. */
export interface CakeMnistOptions {
  dataset?: "mnist" | "fmnist";
  scale?: Scale;
  seed?: number;
  /** Override parts of the scale's settings. */
  settings?: Partial<CakeImageSettings>;
  /**
   * Use this teacher instead of `getTeacher` (tests; a teacher from elsewhere). Its accuracy is
   * measured on the test split.
   */
  teacher?: { model: tfl.LayersModel; spec: ModelSpec };
  /** Checkpoint directory for the synthesis (default `data/cache/cake/<run key>`; null = none). */
  cacheDir?: string | null;
  save?: boolean;
  resultsDir?: string;
  /** Samples per class returned for the sample grid (default 8). */
  gridPerClass?: number;
}

/** What the MNIST notebook shows. */
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
  /** Synthetic samples (teacher input space) for an image grid: `perClass` per teacher class. */
  grid: { x: Float32Array; shape: number[]; labels: Int32Array; eta: Float32Array };
  synth: { samples: number; seconds: number; sampleStepsPerSec: number; hitRate: number; resumed: number };
  teacherForward: number;
  teacherBackward: number;
  record: RunRecord;
}

/**
 * CAKE on MNIST or Fashion-MNIST: LeNet-5 teacher (getTeacher) → synthesis through a `logits+grad`
 * oracle → LeNet-5-half student on the synthetic set → final-epoch accuracy on the real test set.
 * The only real data this touches after the teacher exists is the test split.
 */
export async function runCakeMnist(opts: CakeMnistOptions = {}): Promise<CakeMnistResult> {
  await initBackend();
  const dataset = opts.dataset ?? "mnist";
  const scale = opts.scale ?? "laptop";
  const seed = opts.seed ?? 1;
  const s: CakeImageSettings = { ...cakeImageSettings(dataset, scale), ...(opts.settings ?? {}) };
  const teacher = opts.teacher ??
    await getTeacher({ dataset, model: s.teacherModel, scale, seed });
  const test = await loadDataset(dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
  const teacherAccuracy = await evaluate(teacher.model, test);
  const run = startRun({
    experiment: "cake-mnist",
    method: "cake",
    dataset,
    scale,
    seed,
    config: { settings: s },
  });
  const synthKey = `${dataset}-${s.teacherModel}-${scale}-s${seed}`;
  const teacherKey = teacherIdentity(teacher, synthKey);
  const oracle = logitsGradOracle(teacher.model);
  const set = await synthesize(oracle, {
    dataset,
    ...s.synth,
    seed,
    teacherKey,
    // Injected teachers are not cached unless a cacheDir is given (their identity is unknown).
    cacheDir: opts.cacheDir === null || (opts.teacher && opts.cacheDir === undefined)
      ? undefined
      : opts.cacheDir ?? defaultCacheDir(`${synthKey}-${hashOf({ synth: s.synth, teacherKey })}`),
    progress: `CAKE ${dataset} synthesis`,
  });
  const studentSpec: ModelSpec = {
    name: s.studentModel,
    inputShape: set.shape.slice(1),
    numClasses: set.numClasses,
  };
  const student = await trainStudent(studentSpec, set, s.student, test, {
    seed: seed + 100,
    label: `CAKE ${dataset} student`,
  });
  const record = run.finish({
    studentAcc: student.accuracy,
    studentBestAcc: student.bestAccuracy,
    teacherAcc: teacherAccuracy,
    valAgreement: student.valAgreement,
    syntheticSamples: set.shape[0],
    synthSeconds: set.stats.seconds,
    sampleStepsPerSec: set.stats.sampleStepsPerSec,
    hitRate: set.stats.hitRate,
    teacherForward: set.passes.forward,
    teacherBackward: set.passes.backward,
    studentTrainSec: student.trainSeconds,
  }, { ledger: set.ledger, notes: [`synthesis resumed ${set.stats.batchesResumed} batches from cache`] });
  if (opts.save ?? true) await saveRun(record, { dir: opts.resultsDir });
  student.model.dispose();
  if (!opts.teacher) teacher.model.dispose();
  return {
    dataset,
    scale,
    seed,
    settings: s,
    teacherAccuracy,
    studentAccuracy: student.accuracy,
    studentBestAccuracy: student.bestAccuracy,
    valAgreement: student.valAgreement,
    grid: sampleGrid(set, opts.gridPerClass ?? 8),
    synth: {
      samples: set.shape[0],
      seconds: set.stats.seconds,
      sampleStepsPerSec: set.stats.sampleStepsPerSec,
      hitRate: set.stats.hitRate,
      resumed: set.stats.batchesResumed,
    },
    teacherForward: set.passes.forward,
    teacherBackward: set.passes.backward,
    record,
  };
}

/** `perClass` samples per teacher class, spread over the batches (early = large η, late = small η). */
function sampleGrid(set: SyntheticSet & { eta: Float32Array }, perClass: number) {
  const n = set.shape[0];
  const d = set.x.length / n;
  const k = set.numClasses;
  const chosen: number[] = [];
  for (let c = 0; c < k; c++) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (set.teacherClass[i] === c) idx.push(i);
    for (let j = 0; j < Math.min(perClass, idx.length); j++) {
      chosen.push(idx[Math.floor((j * idx.length) / Math.min(perClass, idx.length))]);
    }
  }
  const x = new Float32Array(chosen.length * d);
  const labels = new Int32Array(chosen.length);
  const eta = new Float32Array(chosen.length);
  chosen.forEach((j, i) => {
    x.set(set.x.subarray(j * d, (j + 1) * d), i * d);
    labels[i] = set.teacherClass[j];
    eta[i] = set.eta[j];
  });
  return { x, shape: [chosen.length, ...set.shape.slice(1)], labels, eta };
}

// ---------------------------------------------------------------------------------------------
// Ablations

/** One ablation variant: synthesis overrides and/or hard targets for the student. */
export interface CakeVariant {
  /** Shown in tables and bar charts. */
  label: string;
  /** Synthesis options over the experiment's settings. */
  synth?: CakeOptionsInput;
  /** Train the student on the teacher's argmax (CE) instead of soft targets. */
  hardTargets?: boolean;
}

/** The ablations of the paper's code (table D): contrastive, TV, decay, LAKE, G, soft vs hard. */
export const CAKE_ABLATIONS: Record<string, CakeVariant> = {
  full: { label: "CAKE (full)" },
  "no-contr": { label: "no contrastive (w_contr = 0)", synth: { weights: { contr: 0 } } },
  // MNIST's reference w_contr (1e-3) is 10⁶ below w_cls (1e3): these show what the term does when it
  // weighs in (10 = CIFAR-10's w_cls/w_contr ratio of 100; 1e3 = as strong as the CE term).
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
 * Default variants per dataset. Two-moons has no TV (points), K = 2 (G ∈ {2} only), and at the
 * laptop step size η0 = 1e3 Langevin noise sqrt(2η) ≈ 45 per step destroys every sample, so those
 * variants are left out there.
 */
export function defaultAblations(dataset: "mnist" | "fmnist" | "two-moons"): string[] {
  return dataset === "two-moons" ? ["full", "no-contr", "no-decay", "no-contr-no-decay", "hard-targets"] : [
    "full",
    "no-contr",
    "contr=10",
    "contr=1e3",
    "no-decay",
    "no-contr-no-decay",
    "no-tv",
    "lake",
    "G=2",
    "G=5",
    "hard-targets",
  ];
}

/** Options of {@link runCakeAblation}. */
export interface CakeAblationOptions {
  dataset?: "mnist" | "fmnist" | "two-moons";
  scale?: Scale;
  /** Variant names from {@link CAKE_ABLATIONS} or custom variants (default {@link defaultAblations}). */
  variants?: (string | CakeVariant)[];
  /**
   * Seeds of synthesis + student. Images: the teacher is shared (seed `teacherSeed`); two-moons: every
   * seed has its own real points and teacher. Default [1, 2, 3].
   */
  seeds?: number[];
  teacherSeed?: number;
  /** Image settings override (ignored for two-moons). */
  settings?: Partial<CakeImageSettings>;
  /** Two-moons settings override (ignored for images). */
  toySettings?: Partial<TwoMoonsSettings>;
  teacher?: { model: tfl.LayersModel; spec: ModelSpec };
  save?: boolean;
  resultsDir?: string;
  /** Checkpoint root for the image syntheses (default data/cache/cake; null = none). */
  cacheRoot?: string | null;
}

/** Rows of an ablation: one per (variant, seed), plus mean ± std per variant. */
export interface CakeAblationResult {
  dataset: string;
  scale: Scale;
  /** The settings used (image or two-moons). */
  settings: CakeImageSettings | TwoMoonsSettings;
  /** Teacher accuracy (mean over seeds for two-moons). */
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

/**
 * Laptop-scale image ablation settings: smaller than {@link cakeImageSettings} because every
 * variant × seed synthesises its own set (≈ 1 min each on 2 cores).
 */
export function cakeAblationSettings(dataset: "mnist" | "fmnist", scale: Scale): CakeImageSettings {
  const base = cakeImageSettings(dataset, scale);
  if (scale !== "laptop") return base;
  // 6,000 samples; the student needs ≈ 2,000 SGD steps to leave the near-uniform-output plateau
  // (10 epochs of batch 128 on 4,000 samples left every student at one class).
  return {
    ...base,
    synth: { numBatches: 12, steps: 8 },
    student: { ...base.student, epochs: 20, batchSize: 64 },
  };
}

/**
 * The CAKE ablations: every variant × seed synthesises its own set (variants that only change the
 * student reuse the matching synthesis) and trains a student; accuracies are final-epoch accuracies
 * on the real test set (images) or on the real points (two-moons).
 */
export async function runCakeAblation(opts: CakeAblationOptions = {}): Promise<CakeAblationResult> {
  await initBackend();
  const dataset = opts.dataset ?? "mnist";
  const scale = opts.scale ?? "laptop";
  const seeds = opts.seeds ?? (scale === "smoke" ? [1] : [1, 2, 3]);
  const variants = (opts.variants ?? defaultAblations(dataset)).map((v) => {
    if (typeof v !== "string") return { name: v.label, v };
    const found = CAKE_ABLATIONS[v];
    if (!found) {
      throw new Error(`runCakeAblation: unknown variant "${v}" (${Object.keys(CAKE_ABLATIONS).join(", ")})`);
    }
    return { name: v, v: found };
  });
  const rows: CakeAblationResult["rows"] = [];
  const teacherAccs: number[] = [];
  let settings: CakeImageSettings | TwoMoonsSettings;
  let finish = () => {};

  // Per dataset: how to get (teacher, evaluation data, student spec, synthesis base) for a seed.
  let setup: (seed: number) => Promise<{
    teacher: tfl.LayersModel;
    evalData: LabeledData;
    student: ModelSpec;
    recipe: StudentRecipe;
    base: CakeOptionsInput;
    cacheDir: (key: string) => string | undefined;
    teacherKey: string;
    release: () => void;
  }>;
  if (dataset === "two-moons") {
    const s: TwoMoonsSettings = { ...twoMoonsSettings(scale), ...(opts.toySettings ?? {}) };
    settings = s;
    const spec: ModelSpec = { name: "mlp", inputShape: [2], numClasses: 2, options: { ...s.mlp } };
    setup = async (seed) => {
      const real = twoMoons({ n: s.realPoints, noise: s.noise, seed });
      const t = await trainToyTeacher(spec, real, s, seed);
      teacherAccs.push(t.accuracy);
      return {
        teacher: t.model,
        evalData: real,
        student: spec,
        recipe: s.student,
        base: { dataset: "two-moons", ...s.cake },
        cacheDir: () => undefined,
        teacherKey: `two-moons-s${seed}`,
        release: () => t.model.dispose(),
      };
    };
  } else {
    const s: CakeImageSettings = { ...cakeAblationSettings(dataset, scale), ...(opts.settings ?? {}) };
    settings = s;
    const teacherSeed = opts.teacherSeed ?? 1;
    const teacher = opts.teacher ??
      await getTeacher({ dataset, model: s.teacherModel, scale, seed: teacherSeed });
    const test = await loadDataset(dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
    teacherAccs.push(await evaluate(teacher.model, test));
    if (!opts.teacher) finish = () => teacher.model.dispose();
    const tk = teacherIdentity(teacher, `${dataset}-${s.teacherModel}-${scale}-s${teacherSeed}`);
    setup = (seed) =>
      Promise.resolve({
        teacher: teacher.model,
        evalData: test,
        student: {
          name: s.studentModel,
          inputShape: teacher.spec.inputShape,
          numClasses: teacher.spec.numClasses,
        },
        recipe: s.student,
        base: { dataset, ...s.synth },
        cacheDir: (key: string) =>
          opts.cacheRoot === null || (opts.teacher && opts.cacheRoot === undefined)
            ? undefined
            : `${opts.cacheRoot ?? defaultCacheRoot()}/ablation-${tk.split("@")[0]}-s${seed}-${
              hashOf([key, tk])
            }`,
        teacherKey: tk,
        release: () => {},
      });
  }

  for (const seed of seeds) {
    const ctx = await setup(seed);
    const made = new Map<string, SyntheticSet & { stats: { hitRate: number; seconds: number } }>();
    for (const { name, v } of variants) {
      const synthOpts: CakeOptionsInput = mergeSynth(ctx.base, v.synth ?? {});
      const key = hashOf(synthOpts);
      let set = made.get(key);
      if (!set) {
        set = await synthesize(logitsGradOracle(ctx.teacher), {
          ...synthOpts,
          seed,
          teacherKey: ctx.teacherKey,
          cacheDir: ctx.cacheDir(key),
          progress: `CAKE ${name} s${seed}`,
        });
        made.set(key, set);
      }
      const run = startRun({
        experiment: "cake-ablation",
        method: `cake:${name}`,
        dataset,
        scale,
        seed,
        config: { settings, variant: v },
      });
      const st = await trainStudent(ctx.student, set, ctx.recipe, ctx.evalData, {
        seed: seed + 100,
        hard: v.hardTargets,
        label: `student ${name} s${seed}`,
      });
      st.model.dispose();
      const record = run.finish({
        studentAcc: st.accuracy,
        studentBestAcc: st.bestAccuracy,
        teacherAcc: teacherAccs.at(-1)!,
        hitRate: set.stats.hitRate,
        synthSeconds: set.stats.seconds,
      }, { ledger: set.ledger });
      if (opts.save ?? true) await saveRun(record, { dir: opts.resultsDir });
      rows.push({
        variant: name,
        label: v.label,
        seed,
        accuracy: st.accuracy,
        hitRate: set.stats.hitRate,
        seconds: set.stats.seconds + st.trainSeconds,
      });
    }
    ctx.release();
  }
  finish();
  const summary = variants.map(({ name, v }) => ({
    ...stats(name, rows.filter((r) => r.variant === name).map((r) => r.accuracy)),
    variant: name,
    label: v.label,
  }));
  return {
    dataset,
    scale,
    settings: settings!,
    teacherAccuracy: teacherAccs.reduce((a, b) => a + b, 0) / teacherAccs.length,
    rows,
    summary,
  };
}

/**
 * What identifies a teacher in synthesis caches: the getTeacher key plus the fingerprint of its
 * weights and topology (a retrained or swapped teacher never reuses samples made with the old one,
 * whatever its file name or creation time); "injected-" marks teachers passed in.
 */
function teacherIdentity(t: { model: tfl.LayersModel; meta?: unknown }, key: string): string {
  const created = (t.meta as { createdAt?: string } | undefined)?.createdAt;
  const fp = modelFingerprint(t.model).slice(0, 16);
  return created ? `${key}@${fp}` : `injected-${key}@${fp}`;
}

function mergeSynth(a: CakeOptionsInput, b: CakeOptionsInput): CakeOptionsInput {
  return { ...a, ...b, weights: { ...(a.weights ?? {}), ...(b.weights ?? {}) } };
}

function defaultCacheRoot(): string {
  return Deno.env.get("BKD_CAKE_CACHE") ?? `${repoRoot()}/data/cache/cake`;
}

function defaultCacheDir(name: string): string {
  return `${defaultCacheRoot()}/${name}`;
}

/** Short stable hash of a JSON value (cache keys). */
function hashOf(v: unknown): string {
  const s = JSON.stringify(v, Object.keys(flatKeys(v)).sort());
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function flatKeys(v: unknown, out: Record<string, true> = {}): Record<string, true> {
  if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      out[k] = true;
      flatKeys(x, out);
    }
  }
  return out;
}
