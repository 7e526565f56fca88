/**
 * The CAKE student (algorithms.md, "Student training"): a 99/1 train/validation split of the synthetic
 * set, soft-target cross entropy at τ = 1 (or the teacher's argmax for the hard-target ablation), SGD
 * with momentum and weight decay, a one-cycle schedule; the final-epoch student is tested on real data.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LabeledData } from "../data/types.ts";
import type { ModelSpec } from "../models/registry.ts";
import { evaluate, train, type TrainConfig, type TrainSet } from "../train/trainer.ts";
import { Rng } from "../util/rng.ts";
import type { SyntheticSet } from "./types.ts";

/** The CAKE student recipe (soft-target CE at τ = 1, SGD momentum, weight decay, one-cycle). */
export interface StudentRecipe {
  epochs: number;
  batchSize: number;
  /** Peak learning rate of the one-cycle schedule. */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Fraction of the synthetic set held out as validation (paper: 0.01). */
  valFraction: number;
  /** Trainer replicas ("auto": both cores). */
  workers: number | "auto";
}

/** The reference student recipes: MNIST-like data and the rest (CIFAR-10, SVHN, two-moons). */
export const CAKE_STUDENT: { mnistLike: StudentRecipe; other: StudentRecipe } = {
  mnistLike: {
    epochs: 10,
    batchSize: 128,
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 5e-4,
    valFraction: 0.01,
    workers: "auto",
  },
  other: {
    epochs: 30,
    batchSize: 256,
    lr: 0.5,
    momentum: 0.9,
    weightDecay: 5e-4,
    valFraction: 0.01,
    workers: "auto",
  },
};

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
