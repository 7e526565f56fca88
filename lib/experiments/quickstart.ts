/**
 * The quickstart experiment (`notebooks/00_quickstart.ipynb`): the kit end to end in minutes.
 *
 * 1. Two-moons: an MLP teacher 2→20→20→20→2 on real points, then two students of the same
 *    architecture distilled from a small set of uniform probe points in [−2, 2]²: one sees only the
 *    teacher's hard labels (`label` access), the other its logits (`probs`-level soft targets, τ = 1).
 *    Fewer probes than points makes the difference visible: soft targets carry how far each probe is
 *    from the boundary, hard labels only which side it is on.
 * 2. MNIST: the DB3 LeNet-5 teacher trained (or loaded from the cache) at the chosen scale, its test
 *    accuracy, and the backend's training and inference throughput.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { backendInfo, initBackend } from "../backend.ts";
import { loadDataset, twoMoons } from "../data/mod.ts";
import type { LabeledData } from "../data/mod.ts";
import type { ModelSpec } from "../models/registry.ts";
import { ModelPool } from "../parallel/pool.ts";
import { getWeightsFlat } from "../models/io.ts";
import { type RunRecord, saveRun, startRun } from "../results/mod.ts";
import type { DecisionFieldInput } from "../show/plots.ts";
import { evaluate, train, type TrainConfig } from "../train/trainer.ts";
import { argmaxRows, predictLogits } from "../learn/evaluate.ts";
import { getTeacher } from "../train/teachers.ts";
import type { Scale } from "../scale.ts";
import { Rng } from "../util/rng.ts";
import { classField } from "./fields.ts";

/** Per-scale settings of the quickstart; recorded with the run. */
export interface QuickstartSettings {
  /** Real two-moons points for the teacher (and as many again for testing). */
  moonsPoints: number;
  /** Teacher epochs on the real points. */
  teacherEpochs: number;
  /** Uniform probe points in [−2, 2]² the students learn from. */
  probes: number;
  /** Student epochs on the probes. */
  studentEpochs: number;
  /** Field resolution (points per axis). */
  fieldSteps: number;
  /** Images for the inference throughput measurement. */
  inferImages: number;
}

/** The quickstart's settings per scale. */
export const QUICKSTART: Record<Scale, QuickstartSettings> = {
  smoke: {
    moonsPoints: 400,
    teacherEpochs: 30,
    probes: 24,
    studentEpochs: 60,
    fieldSteps: 60,
    inferImages: 2048,
  },
  laptop: {
    moonsPoints: 1000,
    teacherEpochs: 150,
    probes: 24,
    studentEpochs: 400,
    fieldSteps: 120,
    inferImages: 10000,
  },
  paper: {
    moonsPoints: 1000,
    teacherEpochs: 300,
    probes: 24,
    studentEpochs: 800,
    fieldSteps: 200,
    inferImages: 10000,
  },
};

/** The two-moons MLP of CAKE's Figure 1: 2→20→20→20→2. */
export const MOONS_MLP: ModelSpec = {
  name: "mlp",
  inputShape: [2],
  numClasses: 2,
  options: { hidden: 20, depth: 2 },
};

/** One model's result on two-moons. */
export interface MoonsModelResult {
  name: string;
  /** Accuracy on fresh real two-moons points (final epoch). */
  accuracy: number;
  field: DecisionFieldInput;
}

/** What {@link runQuickstart} returns. */
export interface QuickstartResult {
  settings: QuickstartSettings;
  moons: {
    teacher: MoonsModelResult;
    hardStudent: MoonsModelResult;
    softStudent: MoonsModelResult;
    /** The probe points with the teacher's hard labels (drawn on the student fields). */
    probes: LabeledData;
  };
  mnist: {
    teacherAcc: number;
    teacherEpochs: number;
    /** Training images/s measured when the teacher was trained (cached teachers keep theirs). */
    trainImagesPerSec: number;
    /** Workers used to train it. */
    trainWorkers: number;
    /** Label queries/s in this process (one thread), batch 1024. */
    inferImagesPerSecInProcess: number;
    /** Label queries/s through the worker pool (all cores), one big batch. */
    inferImagesPerSecPool: number;
    fromCache: boolean;
  };
  records: RunRecord[];
}

/** Run the quickstart at `scale`; saves run records under `results/runs/quickstart/`. */
export async function runQuickstart(opts: { scale: Scale; seed?: number }): Promise<QuickstartResult> {
  const { scale } = opts;
  const seed = opts.seed ?? 1;
  await initBackend();
  const s = QUICKSTART[scale];
  const records: RunRecord[] = [];

  // --- two-moons teacher on real points
  const moonsRun = startRun({
    experiment: "quickstart",
    method: "two-moons-kd",
    dataset: "two-moons",
    scale,
    seed,
    config: { ...s, mlp: MOONS_MLP },
  });
  const real = twoMoons({ n: s.moonsPoints, seed });
  const test = twoMoons({ n: s.moonsPoints, seed: seed + 7919, split: "test" });
  const small = (epochs: number, loss: TrainConfig["loss"], label: string): TrainConfig => ({
    epochs,
    batchSize: 64,
    seed,
    loss,
    optimizer: { kind: "adam", lr: 1e-2 },
    workers: 1,
    label,
  });
  const teacher = await train(MOONS_MLP, real, small(s.teacherEpochs, { kind: "ce" }, "moons teacher"), test);

  // --- probes: uniform in [−2, 2]², labelled by the teacher
  const rng = new Rng(seed + 1);
  const px = rng.fillUniform(new Float32Array(s.probes * 2), -2, 2);
  const z = predictLogits(teacher.model, px, s.probes);
  const py = argmaxRows(z, s.probes);
  const probes: LabeledData = {
    name: "two-moons-probes",
    split: "synthetic",
    x: px,
    y: py,
    shape: [s.probes, 2],
    numClasses: 2,
    classNames: real.classNames,
  };
  const hard = await train(
    MOONS_MLP,
    { x: px, shape: [s.probes, 2], y: py },
    small(s.studentEpochs, { kind: "ce" }, "hard-label student"),
    test,
  );
  const soft = await train(
    MOONS_MLP,
    { x: px, shape: [s.probes, 2], targets: z },
    small(s.studentEpochs, { kind: "soft-ce", temperature: 1 }, "soft-label student"),
    test,
  );
  const field = (m: tfl.LayersModel, pts: LabeledData) => classField(m, { steps: s.fieldSteps }, pts);
  const moons = {
    teacher: {
      name: "teacher (real points)",
      accuracy: teacher.finalTestAcc!,
      field: field(teacher.model, real),
    },
    hardStudent: {
      name: "student: hard labels",
      accuracy: hard.finalTestAcc!,
      field: field(hard.model, probes),
    },
    softStudent: {
      name: "student: soft labels",
      accuracy: soft.finalTestAcc!,
      field: field(soft.model, probes),
    },
    probes,
  };
  const moonsRecord = moonsRun.finish({
    teacherAcc: moons.teacher.accuracy,
    hardStudentAcc: moons.hardStudent.accuracy,
    softStudentAcc: moons.softStudent.accuracy,
  }, { notes: ["accuracies are final-epoch, on fresh real two-moons points"] });
  await saveRun(moonsRecord);
  records.push(moonsRecord);

  // --- MNIST LeNet-5 teacher (cached) and throughput
  const mnistRun = startRun({
    experiment: "quickstart",
    method: "teacher",
    dataset: "mnist",
    scale,
    seed,
    config: { model: "db3-lenet5", inferImages: s.inferImages },
  });
  const asked = Date.now();
  const t = await getTeacher({ dataset: "mnist", model: "db3-lenet5", scale, seed });
  const mnistTest = await loadDataset("mnist", "test");
  const teacherAcc = await evaluate(t.model, mnistTest);
  const nInfer = Math.min(s.inferImages, mnistTest.shape[0]);
  const d = mnistTest.x.length / mnistTest.shape[0];
  const xs = mnistTest.x.subarray(0, nInfer * d);
  predictLogits(t.model, xs.subarray(0, 256 * d), 256); // warm-up
  let t0 = performance.now();
  argmaxRows(predictLogits(t.model, xs, nInfer, 1024), nInfer);
  const inProcess = nInfer / ((performance.now() - t0) / 1000);
  const pool = await ModelPool.create(t.spec, getWeightsFlat(t.model));
  let poolRate: number;
  try {
    await pool.predictLabels(xs.subarray(0, 1024 * d), 1024); // warm-up
    t0 = performance.now();
    await pool.predictLabels(xs, nInfer);
    poolRate = nInfer / ((performance.now() - t0) / 1000);
  } finally {
    pool.close();
  }
  const meta = t.meta;
  const mnist = {
    teacherAcc,
    teacherEpochs: meta.epochs,
    trainImagesPerSec: meta.imagesPerSec,
    trainWorkers: meta.workers,
    inferImagesPerSecInProcess: inProcess,
    inferImagesPerSecPool: poolRate,
    fromCache: Date.parse(meta.createdAt) < asked,
  };
  const mnistRecord = mnistRun.finish({
    teacherAcc,
    trainImagesPerSec: mnist.trainImagesPerSec,
    inferImagesPerSecInProcess: inProcess,
    inferImagesPerSecPool: poolRate,
  }, { config: { teacherMeta: meta, backend: backendInfo().name } });
  await saveRun(mnistRecord);
  records.push(mnistRecord);
  return { settings: s, moons, mnist, records };
}
