/**
 * CAKE across architectures: the CIFAR-10 ResNet depth experiment (notebook 22) and the MNIST
 * teacher-type × student-type matrix (notebook 24). Composes the drivers of `cake.ts` (student
 * recipe, `trainStudent`) with a teacher cache for arbitrary {@link ModelSpec}s (`getTeacher` only
 * knows the DB3 families and builds specs without options, so ResNet depths, widths and small ViTs
 * are trained here with an explicit recipe and cached under `data/teachers/cake-*`).
 *
 * Laptop-scale reductions (2 shared cores; the paper uses ResNet-34 → ResNet-18 at width 64 and
 * 250k synthetic samples × 256 steps):
 * - CIFAR-10: ResNet depth 8 → depth 8 / 4, all at width 8, on the offline subset (full set when
 *   BKD_CIFAR10_DIR is set); 2,000 synthetic samples × 8 steps; students 15 epochs. Measured: ResNet-8
 *   at width 16 trains at ≈ 38 images/s on the shared 2 cores (teacher alone > 30 min), ResNet-18 at
 *   width 64 far slower, which rules both out at this scale. Measured once (seed 1, ≈ 20 min): teacher
 *   51.8 %, synthesis hit rate 38 %, students 11.5 % (ResNet-8) and 11.2 % (ResNet-4) — near chance:
 *   2,000 samples are far too few for CIFAR-10 students; this setting proves the pipeline only.
 * - MNIST matrix: MLP (h = 100, 4 hidden layers as in the paper), the CAKE CNN, ResNet depth 8 width
 *   8, ViT depth 2 (dim 64, 4 heads × 16); teachers on 5,000 training images × 2 epochs; 2,000
 *   synthetic samples (8 batches × 250) × 8 steps per teacher; students 4 epochs; 500 test images.
 *   Sized from measured training rates on the shared 2 cores (CNN ≈ 60 images/s, ResNet-8 ≈ 110,
 *   ViT ≈ 150, MLP ≈ 1,000). A smaller first try (3,000 × 2 teacher images, 2 batches × 500 × 4
 *   steps, 3 student epochs; ≈ 12 min) gave hit rates of 10–38 % and chance-level students: two
 *   batches make the step-size decay degenerate and 4 steps do not reach the target classes. With
 *   these settings an MLP → MLP probe reaches 11 % test accuracy with 4 student epochs and 50 % with
 *   20 (teacher 82 %, hit rate 41 %): the students' SGD steps are the bottleneck, and more epochs do
 *   not fit ~30 min because the CNN student trains at ≈ 60 images/s. Expect a weak laptop matrix.
 *
 * @module
 */
import { modelFingerprint } from "../models/fingerprint.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { type DatasetName, type LabeledData, loadDataset, repoRoot } from "../data/mod.ts";
import type { ModelSpec } from "../models/registry.ts";
import { loadModelIfPresent, saveModel } from "../models/io.ts";
import { logitsGradOracle } from "../oracle/oracle.ts";
import { type RunRecord, saveRun, startRun } from "../results/mod.ts";
import type { Scale } from "../scale.ts";
import { retrainFix, retrainRequested } from "../train/teachers.ts";
import { evaluate, train } from "../train/trainer.ts";
import type { OptimizerConfig } from "../learn/optim.ts";
import type { ScheduleSpec } from "../train/schedule.ts";
import type { CakeOptionsInput } from "../cake/options.ts";
import { synthesize } from "../cake/synthesize.ts";
import { paperStudentRecipe, type StudentRecipe, trainStudent } from "./cake.ts";

// ---------------------------------------------------------------------------------------------
// Teachers of any spec

/** How a teacher of an arbitrary spec is trained (hard-label CE on the real training split). */
export interface SpecTeacherRecipe {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleSpec;
  /** First `trainLimit` training images (all if absent). */
  trainLimit?: number;
  /** First `testLimit` test images for the teacher's accuracy (all if absent). */
  testLimit?: number;
  /** Trainer replicas (default "auto"). */
  workers?: number | "auto";
}

/** A trained teacher with its accuracy and where it came from. */
export interface SpecTeacher {
  model: tfl.LayersModel;
  spec: ModelSpec;
  /** Final-epoch test accuracy in [0, 1] (on `recipe.testLimit` images). */
  accuracy: number;
  /** True when loaded from the cache. */
  cached: boolean;
  /** Cache key (also the synthesis cache's teacher key). */
  key: string;
  wallTimeSec: number;
}

/** Short readable name of a spec: `resnet8w16`, `mlp100x4`, `vit4d2`, `cake-cnn`. */
export function specLabel(spec: ModelSpec): string {
  const o = spec.options ?? {};
  if (spec.name === "resnet") return `resnet${o.depth}${o.width ? `w${o.width}` : ""}`;
  if (spec.name === "mlp") return `mlp${o.hidden ?? 100}x${o.depth ?? 4}`;
  if (spec.name.startsWith("vit") && o.depth !== undefined) return `${spec.name}d${o.depth}`;
  return spec.name;
}

/**
 * Train (or load from `data/teachers/cake-<dataset>-<spec>-<scale>-s<seed>-<hash>`) a teacher of
 * `spec` with `recipe`. The hash covers spec and recipe, so a changed setting never meets an old
 * checkpoint. A cached folder is verified when loaded, as in `getTeacher`.
 */
export async function getSpecTeacher(req: {
  dataset: DatasetName;
  spec: Omit<ModelSpec, "inputShape" | "numClasses">;
  recipe: SpecTeacherRecipe;
  scale: Scale;
  seed: number;
  dir?: string;
  /** Train again and replace the cached folder (default: env `BKD_RETRAIN_TEACHERS`); see `getTeacher`. */
  retrain?: boolean;
}): Promise<SpecTeacher> {
  const root = req.dir ?? Deno.env.get("BKD_TEACHER_DIR") ?? `${repoRoot()}/data/teachers`;
  const label = specLabel({ ...req.spec, inputShape: [], numClasses: 0 });
  const key = `cake-${req.dataset}-${label}-${req.scale}-s${req.seed}-${
    hashOf({ s: req.spec, r: req.recipe })
  }`;
  const dir = `${root}/${key}`;
  // A folder that fails verification is an error naming it (see `getTeacher`), never retrained silently.
  const cached = retrainRequested(req.retrain) ? undefined : await loadModelIfPresent(dir, retrainFix(dir));
  if (cached) {
    const meta = cached.meta as { testAcc: number; wallTimeSec: number };
    return {
      model: cached.model,
      spec: cached.spec,
      accuracy: meta.testAcc,
      cached: true,
      key,
      wallTimeSec: meta.wallTimeSec,
    };
  }
  const r = req.recipe;
  const trainSet = await loadDataset(req.dataset, "train", r.trainLimit ? { limit: r.trainLimit } : {});
  const testSet = await loadDataset(req.dataset, "test", r.testLimit ? { limit: r.testLimit } : {});
  const spec: ModelSpec = {
    ...req.spec,
    inputShape: trainSet.shape.slice(1),
    numClasses: trainSet.numClasses,
  };
  const res = await train(spec, { x: trainSet.x, shape: trainSet.shape, y: trainSet.y }, {
    epochs: r.epochs,
    batchSize: r.batchSize,
    seed: req.seed,
    loss: { kind: "ce" },
    optimizer: r.optimizer,
    schedule: r.schedule,
    workers: r.workers ?? "auto",
    label: `teacher ${key}`,
  }, testSet);
  await saveModel(dir, res.model, spec, {
    dataset: req.dataset,
    scale: req.scale,
    seed: req.seed,
    recipe: r,
    testAcc: res.finalTestAcc,
    testImages: testSet.shape[0],
    trainImages: trainSet.shape[0],
    wallTimeSec: res.wallTimeSec,
    imagesPerSec: res.imagesPerSec,
    createdAt: new Date().toISOString(),
  });
  return {
    model: res.model,
    spec,
    accuracy: res.finalTestAcc!,
    cached: false,
    key,
    wallTimeSec: res.wallTimeSec,
  };
}

// ---------------------------------------------------------------------------------------------
// One transfer: teacher → synthesis → student

/** Outcome of one teacher → student transfer through CAKE. */
export interface CakeTransferResult {
  teacher: string;
  student: string;
  seed: number;
  teacherAccuracy: number;
  /** Final-epoch accuracy on the real test data, in [0, 1]. */
  studentAccuracy: number;
  studentBestAccuracy: number;
  syntheticSamples: number;
  hitRate: number;
  synthSeconds: number;
  trainSeconds: number;
  record: RunRecord;
}

/** A synthetic set made once per teacher and reused by every student of that teacher. */
type Made = Awaited<ReturnType<typeof synthesize>>;

async function synthesizeFor(
  teacher: SpecTeacher,
  synth: CakeOptionsInput,
  seed: number,
  cacheDir: string | undefined,
): Promise<Made> {
  return await synthesize(logitsGradOracle(teacher.model), {
    ...synth,
    seed,
    teacherKey: teacher.key,
    cacheDir,
    progress: `CAKE ${specLabel(teacher.spec)} s${seed}`,
  });
}

async function studentOn(
  set: Made,
  teacher: SpecTeacher,
  studentSpec: Omit<ModelSpec, "inputShape" | "numClasses">,
  recipe: StudentRecipe,
  test: LabeledData,
  ctx: {
    experiment: string;
    dataset: string;
    scale: Scale;
    seed: number;
    config: unknown;
    save: boolean;
    dir?: string;
  },
): Promise<CakeTransferResult> {
  const spec: ModelSpec = { ...studentSpec, inputShape: set.shape.slice(1), numClasses: set.numClasses };
  const run = startRun({
    experiment: ctx.experiment,
    method: `cake:${specLabel(teacher.spec)}->${specLabel(spec)}`,
    dataset: ctx.dataset,
    scale: ctx.scale,
    seed: ctx.seed,
    config: { settings: ctx.config, teacher: teacher.spec, student: spec, teacherKey: teacher.key },
  });
  const st = await trainStudent(spec, set, recipe, test, {
    seed: ctx.seed + 100,
    label: `student ${specLabel(teacher.spec)}→${specLabel(spec)} s${ctx.seed}`,
  });
  st.model.dispose();
  const record = run.finish({
    studentAcc: st.accuracy,
    studentBestAcc: st.bestAccuracy,
    teacherAcc: teacher.accuracy,
    valAgreement: st.valAgreement,
    syntheticSamples: set.shape[0],
    hitRate: set.stats.hitRate,
    synthSeconds: set.stats.seconds,
    sampleStepsPerSec: set.stats.sampleStepsPerSec,
    teacherForward: set.passes.forward,
    teacherBackward: set.passes.backward,
    studentTrainSec: st.trainSeconds,
  }, { ledger: set.ledger });
  if (ctx.save) await saveRun(record, { dir: ctx.dir });
  return {
    teacher: specLabel(teacher.spec),
    student: specLabel(spec),
    seed: ctx.seed,
    teacherAccuracy: teacher.accuracy,
    studentAccuracy: st.accuracy,
    studentBestAccuracy: st.bestAccuracy,
    syntheticSamples: set.shape[0],
    hitRate: set.stats.hitRate,
    synthSeconds: set.stats.seconds,
    trainSeconds: st.trainSeconds,
    record,
  };
}

/** Named architecture for a matrix / depth experiment. */
export interface NamedSpec {
  /** Shown in tables (and matched against the paper's names). */
  name: string;
  spec: Omit<ModelSpec, "inputShape" | "numClasses">;
}

/** Settings of a teacher-set × student-set CAKE experiment at one scale. */
export interface CakeMatrixSettings {
  dataset: DatasetName;
  teachers: NamedSpec[];
  students: NamedSpec[];
  teacherRecipe: SpecTeacherRecipe;
  /** Synthesis options over the dataset's paper defaults. */
  synth: CakeOptionsInput;
  student: StudentRecipe;
  /** Test images for the students' accuracy (all if absent). */
  testLimit?: number;
  /** What differs from the paper, for the notebook. */
  note: string;
}

/** Result of {@link runCakeMatrix}: one cell per (teacher, student, seed), and per-pair summaries. */
export interface CakeMatrixResult {
  scale: Scale;
  settings: CakeMatrixSettings;
  seeds: number[];
  teachers: { name: string; accuracy: number; cached: boolean; seconds: number }[];
  cells: (CakeTransferResult & { teacherName: string; studentName: string })[];
  /** Mean ± std over seeds of the student accuracy per (teacher, student). */
  summary: { teacherName: string; studentName: string; mean: number; std: number; n: number }[];
}

/**
 * For every teacher: train (or load) it, synthesise one CAKE set per seed through its `logits+grad`
 * oracle, and train every student on that set; accuracies on the real test split.
 */
export async function runCakeMatrix(opts: {
  settings: CakeMatrixSettings;
  scale: Scale;
  seeds: number[];
  experiment: string;
  teacherSeed?: number;
  save?: boolean;
  resultsDir?: string;
  /** Synthesis checkpoint root (default data/cache/cake; null = none). */
  cacheRoot?: string | null;
}): Promise<CakeMatrixResult> {
  await initBackend();
  const s = opts.settings;
  const test = await loadDataset(s.dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
  const cells: CakeMatrixResult["cells"] = [];
  const teachers: CakeMatrixResult["teachers"] = [];
  for (const t of s.teachers) {
    const teacher = await getSpecTeacher({
      dataset: s.dataset,
      spec: t.spec,
      recipe: s.teacherRecipe,
      scale: opts.scale,
      seed: opts.teacherSeed ?? 1,
    });
    teacher.accuracy = await evaluate(teacher.model, test);
    teachers.push({
      name: t.name,
      accuracy: teacher.accuracy,
      cached: teacher.cached,
      seconds: teacher.wallTimeSec,
    });
    for (const seed of opts.seeds) {
      const synthOpts: CakeOptionsInput = { dataset: cakeDatasetOf(s.dataset), ...s.synth };
      const cacheDir = opts.cacheRoot === null
        ? undefined
        : `${opts.cacheRoot ?? defaultCacheRoot()}/${opts.experiment}-${teacher.key}-s${seed}-${
          hashOf([synthOpts, modelFingerprint(teacher.model)])
        }`;
      const set = await synthesizeFor(teacher, synthOpts, seed, cacheDir);
      for (const st of s.students) {
        const r = await studentOn(set, teacher, st.spec, s.student, test, {
          experiment: opts.experiment,
          dataset: s.dataset,
          scale: opts.scale,
          seed,
          config: s,
          save: opts.save ?? true,
          dir: opts.resultsDir,
        });
        cells.push({ ...r, teacherName: t.name, studentName: st.name });
      }
    }
    teacher.model.dispose();
  }
  const summary: CakeMatrixResult["summary"] = [];
  for (const t of s.teachers) {
    for (const st of s.students) {
      const v = cells.filter((c) => c.teacherName === t.name && c.studentName === st.name).map((c) =>
        c.studentAccuracy
      );
      summary.push({ teacherName: t.name, studentName: st.name, ...meanStd(v) });
    }
  }
  return { scale: opts.scale, settings: s, seeds: opts.seeds, teachers, cells, summary };
}

function cakeDatasetOf(d: DatasetName): "mnist" | "fmnist" | "cifar10" {
  return d;
}

// ---------------------------------------------------------------------------------------------
// Settings per experiment and scale

const adam = (lr: number): OptimizerConfig => ({ kind: "adam", lr });

/** CIFAR-10 ResNet depth experiment (notebook 22): teachers × students per scale. */
export function cakeCifarSettings(scale: Scale): CakeMatrixSettings {
  const paper = paperStudentRecipe("cifar10");
  const rn = (depth: number, width: number): NamedSpec => ({
    name: `ResNet-${depth}`,
    spec: { name: "resnet", options: { depth, width } },
  });
  if (scale === "smoke") {
    return {
      dataset: "cifar10",
      teachers: [rn(4, 8)],
      students: [rn(4, 8)],
      teacherRecipe: {
        epochs: 1,
        batchSize: 64,
        optimizer: adam(1e-3),
        schedule: { kind: "constant" },
        trainLimit: 256,
        testLimit: 200,
        workers: 1,
      },
      synth: { numBatches: 2, batchSize: 10, steps: 2 },
      student: { ...paper, epochs: 1, batchSize: 16, workers: 1 },
      testLimit: 200,
      note: "smoke: pipeline check (ResNet-4 width 8, 256 training images, 20 synthetic samples × 2 steps)",
    };
  }
  if (scale === "laptop") {
    return {
      dataset: "cifar10",
      teachers: [rn(8, 8)],
      students: [rn(8, 8), rn(4, 8)],
      teacherRecipe: {
        epochs: 8,
        batchSize: 64,
        optimizer: adam(2e-3),
        schedule: { kind: "step", milestones: [6], gamma: 0.1 },
      },
      synth: { numBatches: 4, batchSize: 500, steps: 8 },
      student: { ...paper, epochs: 15 },
      note: "laptop: ResNet-8 teacher → ResNet-8 / ResNet-4 students, all width 8, on the offline subset " +
        "(full set with BKD_CIFAR10_DIR); 2,000 synthetic samples × 8 steps (paper: R34 → R18, width 64, " +
        "250,000 × 256). Measured on 2 shared cores: ResNet-8 at width 16 trains at ≈ 38 images/s, so even " +
        "that is out of reach here, and ResNet-18 (width 64) more so",
    };
  }
  return {
    dataset: "cifar10",
    teachers: [{ name: "ResNet-34", spec: { name: "resnet34" } }],
    students: [{ name: "ResNet-18", spec: { name: "resnet18" } }],
    teacherRecipe: {
      epochs: 200,
      batchSize: 128,
      optimizer: { kind: "sgd", lr: 0.5, momentum: 0.9, weightDecay: 5e-4 },
      schedule: { kind: "onecycle" },
    },
    synth: {},
    student: paper,
    note: "paper settings: ResNet-34 → ResNet-18, CIFAR-10 defaults of the reference config",
  };
}

/** MNIST model-type matrix (notebook 24): MLP, CNN, ResNet, ViT as teachers and students. */
export function cakeTypeSettings(scale: Scale): CakeMatrixSettings {
  const paper = paperStudentRecipe("mnist");
  const smoke = scale === "smoke";
  const types: NamedSpec[] = [
    {
      name: "MLP",
      spec: { name: "mlp", options: smoke ? { hidden: 32, depth: 1 } : { hidden: 100, depth: 4 } },
    },
    { name: "CNN", spec: { name: "cake-cnn" } },
    {
      name: "ResNet",
      spec: scale === "paper"
        ? { name: "resnet18" }
        : { name: "resnet", options: smoke ? { depth: 4, width: 8 } : { depth: 8, width: 8 } },
    },
    {
      name: "ViT",
      spec: scale === "paper" ? { name: "vit8" } : {
        name: "vit4",
        options: smoke
          ? { depth: 1, dim: 16, heads: 2, headDim: 8, mlpDim: 16 }
          : { depth: 2, heads: 4, headDim: 16 },
      },
    },
  ];
  if (smoke) {
    return {
      dataset: "mnist",
      teachers: types,
      students: types,
      teacherRecipe: {
        epochs: 1,
        batchSize: 64,
        optimizer: adam(1e-3),
        schedule: { kind: "constant" },
        trainLimit: 512,
        testLimit: 200,
        workers: 1,
      },
      synth: { numBatches: 1, batchSize: 20, steps: 2 },
      student: { ...paper, epochs: 1, batchSize: 16, workers: 1 },
      testLimit: 200,
      note: "smoke: tiny networks, 512 training images × 1 epoch, 20 synthetic samples × 2 steps",
    };
  }
  if (scale === "laptop") {
    return {
      dataset: "mnist",
      teachers: types,
      students: types,
      teacherRecipe: {
        epochs: 2,
        batchSize: 32,
        optimizer: adam(1e-3),
        schedule: { kind: "constant" },
        trainLimit: 5000,
      },
      synth: { numBatches: 8, batchSize: 250, steps: 8 },
      student: { ...paper, epochs: 4, batchSize: 64 },
      testLimit: 500,
      note:
        "laptop: teachers on 5,000 images × 2 epochs; ResNet depth 8 width 8, ViT depth 2 (4 heads × 16); " +
        "2,000 synthetic samples (8 batches × 250) × 8 steps per teacher; students 4 epochs (batch 64); 500 " +
        "test images (paper: ResNet-18, ViT-8, full synthesis). Measured rates on the shared 2 cores: " +
        "CNN ≈ 60 images/s, ResNet-8 ≈ 110, ViT ≈ 150, MLP ≈ 1,000",
    };
  }
  return {
    dataset: "mnist",
    teachers: types,
    students: types,
    teacherRecipe: {
      epochs: 10,
      batchSize: 128,
      optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
      schedule: { kind: "onecycle" },
    },
    synth: {},
    student: paper,
    note: "paper settings: MNIST defaults of the reference config",
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

function defaultCacheRoot(): string {
  return Deno.env.get("BKD_CAKE_CACHE") ?? `${repoRoot()}/data/cache/cake`;
}

/** Short stable hash of a JSON value (cache keys). */
export function hashOf(v: unknown): string {
  const s = stableJson(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) =>
        `${JSON.stringify(k)}:${stableJson(o[k])}`
      )
        .join(",")
    }}`;
  }
  return JSON.stringify(v);
}
