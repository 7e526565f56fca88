/**
 * Teachers, trained once per (dataset, model, scale, seed) and cached on disk in
 * `data/teachers/<dataset>-<model>-<scale>-s<seed>/` (`saveModel` layout: spec.json, meta.json,
 * weights.bin, manifest.json with SHA-256 digests of weights, spec and meta). A cached teacher is
 * verified when loaded and reused only if its recorded recipe equals the current one; otherwise it is
 * retrained. A folder that fails verification (corrupt weights, an edited `testAcc`, truncated JSON)
 * is an error naming the file, never silently retrained: retraining it happens only when asked, with
 * `retrain: true` or the environment variable `BKD_RETRAIN_TEACHERS=1` (both train from scratch and
 * replace the folder). A folder saved before the digests existed loads with
 * `meta.integrityWarning` set. Training checkpoints every epoch into
 * `data/teachers/.checkpoints/<key>/`, so an interrupted run resumes; the checkpoint is deleted once
 * the teacher is saved.
 *
 * Recipes are plain data in {@link TEACHER_RECIPES} and are recorded in each teacher's meta.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { backendInfo } from "../backend.ts";
import type { TrainEngineUse } from "./engine.ts";
import { DATASET_NAMES, type DatasetName, loadDataset, repoRoot } from "../data/mod.ts";
import { loadModelIfPresent, saveModel } from "../models/io.ts";
import { MODEL_NAMES, type ModelName, type ModelSpec } from "../models/registry.ts";
import { type Scale, SCALES } from "../scale.ts";
import { checkChoice, checkSeed } from "../util/checks.ts";
import { stableJson } from "./checkpoint.ts";
import type { LossSpec } from "../learn/losses.ts";
import type { OptimizerConfig } from "../learn/optim.ts";
import type { ScheduleSpec } from "./schedule.ts";
import { train } from "./trainer.ts";

/** How a teacher is trained at one scale. */
export interface TeacherRecipe {
  epochs: number;
  batchSize: number;
  loss: LossSpec;
  optimizer: OptimizerConfig;
  schedule: ScheduleSpec;
  /** Use only the first `trainLimit` training images (all if absent). */
  trainLimit?: number;
  /** Evaluate on the first `testLimit` test images (all if absent). */
  testLimit?: number;
  /** Where the recipe comes from / what it is for. */
  note: string;
}

/** Teacher families with their own recipes: DB3 LeNet-5 style (28×28) and DB3 AlexNet (32×32×3). */
export type TeacherFamily = "lenet" | "alexnet";

const CE: LossSpec = { kind: "ce" };

/**
 * Teacher recipes by scale and family. `paper` is the DB3 reference (Adam 5e-4 / SGD 0.1 with
 * steps, batch 1024, 200 epochs); `laptop` reaches ≥ 99.0 % (MNIST) and ≥ 90.0 % (Fashion-MNIST)
 * with LeNet-5 in minutes on 2 cores; `smoke` proves the pipeline in seconds.
 */
export const TEACHER_RECIPES: Record<Scale, Record<TeacherFamily, TeacherRecipe>> = {
  smoke: {
    lenet: {
      epochs: 1,
      batchSize: 128,
      loss: CE,
      optimizer: { kind: "adam", lr: 1e-3 },
      schedule: { kind: "constant" },
      trainLimit: 2048,
      testLimit: 1000,
      note: "pipeline check only: 2,048 images, 1 epoch",
    },
    alexnet: {
      epochs: 1,
      batchSize: 64,
      loss: CE,
      optimizer: { kind: "adam", lr: 1e-3 },
      schedule: { kind: "constant" },
      trainLimit: 256,
      testLimit: 256,
      note: "pipeline check only: 256 images, 1 epoch",
    },
  },
  laptop: {
    lenet: {
      epochs: 10,
      batchSize: 128,
      loss: CE,
      optimizer: { kind: "adam", lr: 1e-3 },
      schedule: { kind: "step", milestones: [7], gamma: 0.1 },
      note: "Adam 1e-3, batch 128, 10 epochs, lr ×0.1 from epoch 8; full training set",
    },
    alexnet: {
      epochs: 6,
      batchSize: 64,
      loss: CE,
      optimizer: { kind: "adam", lr: 5e-4 },
      schedule: { kind: "step", milestones: [4], gamma: 0.1 },
      note: "CIFAR-10 subset budget: Adam 5e-4, batch 64, 6 epochs, lr ×0.1 from epoch 5",
    },
  },
  paper: {
    lenet: {
      epochs: 200,
      batchSize: 1024,
      loss: CE,
      optimizer: { kind: "adam", lr: 5e-4 },
      schedule: { kind: "constant" },
      note: "DB3 reference: Adam lr 5e-4, batch 1024, 200 epochs",
    },
    alexnet: {
      epochs: 200,
      batchSize: 1024,
      loss: CE,
      optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
      schedule: { kind: "step", milestones: [60, 120], gamma: 0.1 },
      note: "DB3 reference: SGD 0.1 momentum 0.9 wd 1e-4, batch 1024, ×0.1 at 60/120, 200 epochs",
    },
  },
};

/** What {@link getTeacher} needs. */
export interface TeacherRequest {
  dataset: DatasetName;
  /** Default: db3-lenet5 for mnist/fmnist, db3-alexnet for cifar10. */
  model?: ModelName;
  scale: Scale;
  seed: number;
  /** Cache root (default `<repo>/data/teachers`, or env `BKD_TEACHER_DIR`). */
  dir?: string;
  /** Workers for training (default "auto"). */
  workers?: number | "auto";
  /** Override the recipe (recorded in meta; a changed recipe retrains). */
  recipe?: TeacherRecipe;
  /**
   * Train from scratch and replace the cached folder even if it exists (e.g. after it failed
   * verification). Default: the environment variable `BKD_RETRAIN_TEACHERS` ("1"/"true"), else false.
   */
  retrain?: boolean;
}

/** Environment variable that asks every {@link getTeacher} call to retrain ("1" or "true"). */
export const RETRAIN_ENV = "BKD_RETRAIN_TEACHERS";

/** Whether retraining was asked for: the option, else {@link RETRAIN_ENV}. */
export function retrainRequested(option: boolean | undefined): boolean {
  if (option !== undefined) return option;
  let v: string | undefined;
  try {
    v = Deno.env.get(RETRAIN_ENV);
  } catch {
    v = undefined;
  }
  return v === "1" || v?.toLowerCase() === "true";
}

/** The advice attached to a cached teacher folder that failed verification. */
export function retrainFix(dir: string): string {
  return `The cached teacher cannot be trusted: delete the folder ${dir} to retrain, ` +
    `or pass \`retrain: true\` (or set ${RETRAIN_ENV}=1) to train it again from scratch.`;
}

/** Metadata saved with every teacher. */
export interface TeacherMeta {
  dataset: DatasetName;
  model: ModelName;
  scale: Scale;
  seed: number;
  /** Final-epoch test accuracy (the reported number). */
  testAcc: number;
  /** Best test accuracy over epochs (test-set selection; for reference only) and its epoch. */
  bestTestAcc?: number;
  bestEpoch?: number;
  testImages: number;
  trainImages: number;
  epochs: number;
  backend: string;
  workers: number;
  /** The engine the teacher trained on (absent in folders written before it was recorded). */
  trainEngine?: TrainEngineUse;
  wallTimeSec: number;
  imagesPerSec: number;
  recipe: TeacherRecipe;
  history: unknown[];
  createdAt: string;
  /** Set (on load only) when the folder predates the SHA-256 digests, so meta could not be verified. */
  integrityWarning?: string;
}

/** The recipe family of a model name. */
export function teacherFamily(model: ModelName): TeacherFamily {
  return model.startsWith("db3-alexnet") ? "alexnet" : "lenet";
}

/** Cache folder name of a teacher. */
export function teacherKey(dataset: DatasetName, model: ModelName, scale: Scale, seed: number): string {
  return `${dataset}-${model}-${scale}-s${seed}`;
}

/** The kit's DB3 teacher of a dataset: LeNet-5, or AlexNet for CIFAR-10. */
export function defaultTeacherModel(dataset: DatasetName): ModelName {
  return dataset === "cifar10" ? "db3-alexnet" : "db3-lenet5";
}

/**
 * The teacher for (dataset, model, scale, seed): loaded from the cache, or trained with the scale's
 * recipe (progress through the trainer's bar), saved, and returned.
 */
export async function getTeacher(
  req: TeacherRequest,
): Promise<{ model: tfl.LayersModel; spec: ModelSpec; meta: TeacherMeta }> {
  checkChoice("getTeacher", "dataset", req.dataset, DATASET_NAMES);
  if (req.model !== undefined) checkChoice("getTeacher", "model", req.model, MODEL_NAMES);
  checkChoice("getTeacher", "scale", req.scale ?? "(missing)", SCALES);
  const scale = req.scale;
  checkSeed(req.seed, "getTeacher");
  const model = req.model ?? defaultTeacherModel(req.dataset);
  const recipe = req.recipe ?? TEACHER_RECIPES[scale][teacherFamily(model)];
  const root = req.dir ?? Deno.env.get("BKD_TEACHER_DIR") ?? `${repoRoot()}/data/teachers`;
  const key = teacherKey(req.dataset, model, scale, req.seed);
  const dir = `${root}/${key}`;
  const checkpointDir = `${root}/.checkpoints/${key}`;

  if (retrainRequested(req.retrain)) {
    await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
  } else {
    const cached = await loadModelIfPresent(dir, retrainFix(dir));
    if (cached) {
      const meta = cached.meta as TeacherMeta;
      if (!cached.integrity.verified) meta.integrityWarning = cached.integrity.warning;
      if (stableJson(meta.recipe) === stableJson(recipe)) {
        return { model: cached.model, spec: cached.spec, meta };
      }
      cached.model.dispose();
    }
  }

  const trainSet = await loadDataset(
    req.dataset,
    "train",
    recipe.trainLimit ? { limit: recipe.trainLimit } : {},
  );
  const testSet = await loadDataset(req.dataset, "test", recipe.testLimit ? { limit: recipe.testLimit } : {});
  const spec: ModelSpec = {
    name: model,
    inputShape: trainSet.shape.slice(1),
    numClasses: trainSet.numClasses,
  };
  const res = await train(spec, { x: trainSet.x, shape: trainSet.shape, y: trainSet.y }, {
    epochs: recipe.epochs,
    batchSize: recipe.batchSize,
    seed: req.seed,
    loss: recipe.loss,
    optimizer: recipe.optimizer,
    schedule: recipe.schedule,
    workers: req.workers ?? "auto",
    checkpointDir,
    label: `teacher ${key}`,
  }, testSet);
  const meta: TeacherMeta = {
    dataset: req.dataset,
    model,
    scale,
    seed: req.seed,
    testAcc: res.finalTestAcc!,
    bestTestAcc: res.bestTestAcc,
    bestEpoch: res.bestEpoch,
    testImages: testSet.shape[0],
    trainImages: trainSet.shape[0],
    epochs: recipe.epochs,
    backend: backendInfo().name,
    workers: res.workers,
    trainEngine: res.trainEngine,
    wallTimeSec: res.wallTimeSec,
    imagesPerSec: res.imagesPerSec,
    recipe,
    history: res.history,
    createdAt: new Date().toISOString(),
  };
  await saveModel(dir, res.model, spec, meta);
  await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
  return { model: res.model, spec, meta };
}
