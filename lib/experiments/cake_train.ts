/**
 * Training the networks of a CAKE run: the two-moons teacher on its real points, teachers of any
 * {@link ModelSpec} (cached under `data/teachers/cake-*`; `getTeacher` only knows the DB3 families and
 * builds specs without options), and students on a synthetic set (99/1 split, soft or hard targets).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { type DatasetName, type LabeledData, loadDataset, repoRoot } from "../data/mod.ts";
import type { ModelSpec } from "../models/registry.ts";
import { loadModelIfPresent, saveModel } from "../models/io.ts";
import { retrainFix, retrainRequested } from "../train/teachers.ts";
import { evaluate, train, type TrainConfig, type TrainSet } from "../train/trainer.ts";
import type { SyntheticSet } from "../cake/types.ts";
import { Rng } from "../util/rng.ts";
import type { SpecTeacherRecipe, StudentRecipe, TwoMoonsSettings } from "./cake_settings.ts";

/** Short readable name of a spec: `resnet8w16`, `mlp100x4`, `vit4d2`, `cake-cnn`. */
export function specLabel(spec: Pick<ModelSpec, "name" | "options">): string {
  const o = spec.options ?? {};
  if (spec.name === "resnet") return `resnet${o.depth}${o.width ? `w${o.width}` : ""}`;
  if (spec.name === "mlp") return `mlp${o.hidden ?? 100}x${o.depth ?? 4}`;
  if (spec.name.startsWith("vit") && o.depth !== undefined) return `${spec.name}d${o.depth}`;
  return spec.name;
}

/** Short stable hash of a JSON value (the spec-teacher cache keys; FNV-1a over sorted-key JSON). */
export function shortHash(v: unknown): string {
  const s = stableJson(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * Train (or load from `data/teachers/cake-<dataset>-<spec>-<scale>-s<seed>-<hash>`) a teacher of
 * `spec` with `recipe`; the hash covers spec and recipe, so a changed setting never meets an old
 * checkpoint. A cached folder is verified when loaded, as in `getTeacher`.
 */
export async function getSpecTeacher(req: {
  dataset: DatasetName;
  spec: Omit<ModelSpec, "inputShape" | "numClasses">;
  recipe: SpecTeacherRecipe;
  scale: string;
  seed: number;
  dir?: string;
  retrain?: boolean;
}): Promise<{ model: tfl.LayersModel; spec: ModelSpec; cached: boolean; key: string; wallTimeSec: number }> {
  const root = req.dir ?? Deno.env.get("BKD_TEACHER_DIR") ?? `${repoRoot()}/data/teachers`;
  const key = `cake-${req.dataset}-${specLabel(req.spec)}-${req.scale}-s${req.seed}-${
    shortHash({ s: req.spec, r: req.recipe })
  }`;
  const dir = `${root}/${key}`;
  const cached = retrainRequested(req.retrain) ? undefined : await loadModelIfPresent(dir, retrainFix(dir));
  if (cached) {
    const meta = cached.meta as { wallTimeSec: number };
    return { model: cached.model, spec: cached.spec, cached: true, key, wallTimeSec: meta.wallTimeSec };
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
  return { model: res.model, spec, cached: false, key, wallTimeSec: res.wallTimeSec };
}

/** Train the two-moons teacher (hard-label CE on the real points, SGD + one-cycle, one replica). */
export async function trainMoonsTeacher(
  spec: ModelSpec,
  real: LabeledData,
  t: TwoMoonsSettings["teacher"],
  seed: number,
): Promise<{ model: tfl.LayersModel; accuracy: number }> {
  const r = await train(spec, { x: real.x, shape: real.shape, y: real.y }, {
    epochs: t.epochs,
    batchSize: t.batchSize,
    seed,
    loss: { kind: "ce" },
    optimizer: { kind: "sgd", lr: t.lr, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { kind: "onecycle" },
    workers: 1,
    label: `two-moons teacher s${seed}`,
  }, real);
  return { model: r.model, accuracy: r.finalTestAcc! };
}

/** A synthetic set split into the student's training part and a held-out validation part. */
export interface StudentSplit {
  train: TrainSet;
  /** Validation inputs with the teacher's argmax as label (agreement = student/teacher fidelity). */
  val: LabeledData;
}

/**
 * Split a synthetic set by `valFraction` with a seeded shuffle. `hard` replaces the soft targets
 * with the teacher's argmax labels (the soft-vs-hard ablation).
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
    workers: r.workers,
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
  /** Agreement with the teacher on the held-out synthetic part (NaN if none). */
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
  const hard = opts.hard ?? false;
  const split = splitSynthetic(set, recipe.valFraction, opts.seed, hard);
  const cfg = studentTrainConfig(recipe, opts.seed, hard, opts.label ?? `student (${set.method})`);
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

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}
