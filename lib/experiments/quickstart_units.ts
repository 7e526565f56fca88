/**
 * The quickstart on the runner ("quickstart"): two units, each with its run record — `moons` (the
 * two-moons MLP teacher on real points, and a hard-label and a soft-label student on the same probe
 * points, with their decision fields) and `mnist` (the MNIST teacher from the spec's teacher source:
 * its test accuracy, the training throughput recorded when it was trained, and the inference
 * throughput measured when the unit ran).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { backendInfo, initBackend } from "../backend.ts";
import { type LabeledData, loadDataset, twoMoons } from "../data/mod.ts";
import { argmaxRows, predictLogits } from "../learn/evaluate.ts";
import { getWeightsFlat } from "../models/io.ts";
import type { ModelSpec } from "../models/registry.ts";
import { ModelPool } from "../parallel/pool.ts";
import { type RunRecord, startRun } from "../results/record.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { hashOf } from "../runner/hash.ts";
import { levelOf, type RunPlan } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
import type { DecisionFieldInput } from "../show/plots.ts";
import { evaluate, train, type TrainConfig } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import { packFiles, readPacked } from "./packed.ts";
import { recordsOfThisExecution } from "./records.ts";
import { classField } from "./fields.ts";
import { openPlannedTeacher, type SpecTeacher } from "./open_teacher.ts";
import type { QuickstartSettings } from "./quickstart.ts";
import type { TeacherSource } from "./teacher_source.ts";

/** The two-moons MLP of CAKE's Figure 1: 2→20→20→20→2. */
export const MOONS_MLP: ModelSpec = {
  name: "mlp",
  inputShape: [2],
  numClasses: 2,
  options: { hidden: 20, depth: 2 },
};

/** The resolved spec of a run (plain JSON). */
export interface QuickstartSpec {
  family: "quickstart";
  scale: Scale;
  seed: number;
  settings: QuickstartSettings;
  /** The MNIST teacher (a kit recipe: its training throughput is in its metadata). */
  teacher: TeacherSource;
}

/** One model on two-moons: accuracy on fresh real points (final epoch) and its decision field. */
export interface MoonsModel {
  accuracy: number;
  field: DecisionFieldInput;
}

/** The moons unit's result. */
export interface MoonsResult {
  teacher: MoonsModel;
  hardStudent: MoonsModel;
  softStudent: MoonsModel;
  /** The probe points with the teacher's hard labels (drawn on the student fields). */
  probes: LabeledData;
}

/** The mnist unit's result. */
export interface MnistResult {
  teacherAcc: number;
  teacherEpochs: number;
  /** Training images/s measured when the teacher was trained (cached teachers keep theirs). */
  trainImagesPerSec: number;
  /** Workers used to train it. */
  trainWorkers: number;
  /** Label queries/s in this process (one thread), batch 1024, when the unit ran. */
  inferImagesPerSecInProcess: number;
  /** Label queries/s through the worker pool (all cores), one big batch, when the unit ran. */
  inferImagesPerSecPool: number;
  fromCache: boolean;
}

/** The quickstart's teacher as the units and the planner open it (MNIST images). */
export function quickstartTeacher(spec: QuickstartSpec): SpecTeacher {
  return { teacher: spec.teacher, dataset: "mnist" };
}

/** The plan: the two units, independent of each other. */
export function quickstartPlan(spec: QuickstartSpec, teacherFingerprint: string): RunPlan {
  const { inferImages, ...moons } = spec.settings;
  const res = { cores: 2, memoryMB: 2000, timeMinutes: 60 };
  return {
    family: "quickstart",
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels: [{
      name: "moons",
      kind: "quickstart-moons",
      keys: [hashOf({ kind: "quickstart-moons", scale: spec.scale, seed: spec.seed, moons })],
      resources: res,
      deps: [],
      describe: ["two-moons teacher, hard- and soft-label students, decision fields"],
    }, {
      name: "mnist",
      kind: "quickstart-mnist",
      keys: [
        hashOf({
          kind: "quickstart-mnist",
          scale: spec.scale,
          seed: spec.seed,
          teacherFingerprint,
          inferImages,
        }),
      ],
      resources: res,
      deps: [],
      describe: ["MNIST teacher: test accuracy and throughput"],
    }],
  };
}

async function moonsUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as QuickstartSpec;
  const { scale, seed, settings: s } = spec;
  await initBackend();
  const run = startRun({
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
  // Probes: uniform in [−2, 2]², labelled by the teacher.
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
  const points = { x: px, shape: [s.probes, 2] };
  const hard = await train(
    MOONS_MLP,
    { ...points, y: py },
    small(s.studentEpochs, { kind: "ce" }, "hard-label student"),
    test,
  );
  const soft = await train(
    MOONS_MLP,
    { ...points, targets: z },
    small(s.studentEpochs, { kind: "soft-ce", temperature: 1 }, "soft-label student"),
    test,
  );
  const model = (m: tfl.LayersModel, acc: number, pts: LabeledData): MoonsModel => ({
    accuracy: acc,
    field: classField(m, { steps: s.fieldSteps }, pts),
  });
  const r: MoonsResult = {
    teacher: model(teacher.model, teacher.finalTestAcc!, real),
    hardStudent: model(hard.model, hard.finalTestAcc!, probes),
    softStudent: model(soft.model, soft.finalTestAcc!, probes),
    probes,
  };
  const weights = [teacher, hard, soft].map((t) => getWeightsFlat(t.model));
  for (const t of [teacher, hard, soft]) t.model.dispose();
  const record = run.finish({
    teacherAcc: r.teacher.accuracy,
    hardStudentAcc: r.hardStudent.accuracy,
    softStudentAcc: r.softStudent.accuracy,
  }, { notes: ["accuracies are final-epoch, on fresh real two-moons points"] });
  return {
    files: packFiles({ result: r, record, weights }, "moons"),
    done: { teacherAcc: r.teacher.accuracy },
  };
}

async function mnistUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as QuickstartSpec;
  const s = spec.settings;
  await initBackend();
  const run = startRun({
    experiment: "quickstart",
    method: "teacher",
    dataset: "mnist",
    scale: spec.scale,
    seed: spec.seed,
    config: { model: "db3-lenet5", inferImages: s.inferImages },
  });
  const asked = Date.now();
  const t = await openPlannedTeacher(quickstartTeacher(spec), ctx.plan.teacher, {
    method: "quickstart",
    workers: 0,
  });
  try {
    if (!t.model || !t.spec || !t.meta) {
      throw new Error(
        `quickstart: teacher ${t.name} has no kit training metadata (its training throughput is shown); ` +
          `use a kit recipe (the default) or a folder written by the kit`,
      );
    }
    const test = await loadDataset("mnist", "test");
    const teacherAcc = await evaluate(t.model, test);
    const nInfer = Math.min(s.inferImages, test.shape[0]);
    const d = test.x.length / test.shape[0];
    const xs = test.x.subarray(0, nInfer * d);
    const warm = Math.min(256, nInfer), poolWarm = Math.min(1024, nInfer);
    predictLogits(t.model, xs.subarray(0, warm * d), warm); // warm-up
    let t0 = performance.now();
    argmaxRows(predictLogits(t.model, xs, nInfer, 1024), nInfer);
    const inProcess = nInfer / ((performance.now() - t0) / 1000);
    const pool = await ModelPool.create(t.spec, getWeightsFlat(t.model));
    let poolRate: number;
    try {
      await pool.predictLabels(xs.subarray(0, poolWarm * d), poolWarm); // warm-up
      t0 = performance.now();
      await pool.predictLabels(xs, nInfer);
      poolRate = nInfer / ((performance.now() - t0) / 1000);
    } finally {
      pool.close();
    }
    const meta = t.meta;
    const r: MnistResult = {
      teacherAcc,
      teacherEpochs: meta.epochs,
      trainImagesPerSec: meta.imagesPerSec,
      trainWorkers: meta.workers,
      inferImagesPerSecInProcess: inProcess,
      inferImagesPerSecPool: poolRate,
      fromCache: Date.parse(meta.createdAt) < asked,
    };
    const record = run.finish({
      teacherAcc,
      trainImagesPerSec: r.trainImagesPerSec,
      inferImagesPerSecInProcess: inProcess,
      inferImagesPerSecPool: poolRate,
    }, { config: { teacherMeta: meta, backend: backendInfo().name } });
    return { files: packFiles({ result: r, record }, "mnist"), done: { teacherAcc } };
  } finally {
    t.close();
    t.model?.dispose();
  }
}

/** Read a finished run: both units' results and their records as this execution's (moons first). */
export async function collectQuickstart(
  store: RunStore,
): Promise<{ moons: MoonsResult; mnist: MnistResult; records: RunRecord[] }> {
  const m = await readPacked<{ result: MoonsResult; record: RunRecord }>(
    store,
    levelOf(store.plan, "moons").keys[0],
    "moons",
  );
  const t = await readPacked<{ result: MnistResult; record: RunRecord }>(
    store,
    levelOf(store.plan, "mnist").keys[0],
    "mnist",
  );
  return { moons: m.result, mnist: t.result, records: recordsOfThisExecution([m.record, t.record], store) };
}

/** The family as the runner sees it. */
export const QUICKSTART_FAMILY: Family = {
  name: "quickstart",
  runUnit(kind, ctx) {
    if (kind === "quickstart-moons") return moonsUnit(ctx);
    if (kind === "quickstart-mnist") return mnistUnit(ctx);
    throw new Error(`quickstart has no unit kind "${kind}" (kinds: quickstart-moons, quickstart-mnist)`);
  },
};
