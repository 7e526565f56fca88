/**
 * The rest of ZSDB3KD, which the reference never wrote: soft labels for pseudo samples and a student
 * trained on them without any ground truth.
 *
 * - {@link labelPseudoSamples}: DB3 boundary distances (BD, or BD refined by MBD) of each pseudo sample
 *   of class c towards every other class t, with the class-t pseudo pool as the stream of direction
 *   inits (`makeClassStreams` over the pseudo set itself: no real image is involved), then
 *   z_t = 1/d_t, z_c = Σ_{t≠c} 1/d_t (`softLabelsFromDistances`). Composes `lib/db3` unchanged.
 * - {@link trainZeroShotStudent}: the student on (pseudo images, z) with the "kd-db3" loss and
 *   `hard: false` — Σ_batch KL(softmax(z/τ) ‖ softmax(S/τ)), τ = 20, no CE term — evaluated once,
 *   after the final epoch, on the real test split.
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LabeledData } from "../data/types.ts";
import type { BdOptions } from "../db3/bd.ts";
import { type Db3Distances, labelDistances } from "../db3/label_run.ts";
import type { MbdOptions } from "../db3/mbd.ts";
import { type SoftLabelOptions, type SoftLabels, softLabelsFromDistances } from "../db3/soft_labels.ts";
import { makeClassStreams } from "../db3/streams.ts";
import type { ModelName, ModelSpec } from "../models/registry.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { evaluate } from "../learn/evaluate.ts";
import { train } from "../train/trainer.ts";

/** One labelled pseudo set: images, generation classes, ledger ids. */
export interface PseudoBatch {
  x: Float32Array;
  y: Int32Array;
  ids: Int32Array;
  /** [h, w, c]. */
  imageShape: number[];
  numClasses: number;
}

/** Options of {@link labelPseudoSamples}. */
export interface PseudoLabelOptions {
  /** "bd" (default) or "mbd". */
  method?: "bd" | "mbd";
  bd?: Omit<BdOptions, "lockstep">;
  mbd?: Omit<MbdOptions, "bd" | "lockstep">;
  /** Seed of the stream order (and MBD's directions). */
  seed?: number;
  /** Soft-label remedies (default none, as the reference). */
  softLabels?: Omit<SoftLabelOptions, "teacherLabels">;
  /** Cache folder for resumable labeling (see `labelDistances`). */
  cacheDir?: string;
  /** Progress label, or false. */
  progress?: string | false;
  /** Samples per labeling chunk. */
  chunkSize?: number;
  /** Identity of the teacher (fingerprint + engine): part of the labeling cache's key. */
  teacher?: string;
}

/** Distances and soft labels of a pseudo set. */
export interface PseudoLabels {
  distances: Db3Distances;
  soft: SoftLabels;
}

/** Soft labels for pseudo samples (see the module doc). */
export async function labelPseudoSamples(
  oracle: LabelOracle,
  set: PseudoBatch,
  opts: PseudoLabelOptions = {},
): Promise<PseudoLabels> {
  const n = set.y.length;
  const shape = [n, ...set.imageShape];
  const seed = opts.seed ?? 0;
  const pool = { x: set.x, y: set.y, shape, numClasses: set.numClasses };
  const streams = makeClassStreams(pool, seed);
  // A stream shorter than the candidate count would repeat candidates: cap it at the pool size.
  const smallest = Math.min(...streams.byClass.filter((c) => c.length > 0).map((c) => c.length));
  const bd = { ...opts.bd, candidates: Math.min(opts.bd?.candidates ?? 201, smallest) };
  const method = opts.method ?? "bd";
  const distances = await labelDistances(oracle, { ...pool, ids: set.ids }, streams, {
    method,
    bd,
    mbd: { ...opts.mbd, seed },
    cacheDir: opts.cacheDir,
    progress: opts.progress,
    chunkSize: opts.chunkSize ?? n,
    teacher: opts.teacher,
  });
  const soft = softLabelsFromDistances(distances.distances, set.y, set.numClasses, {
    ...opts.softLabels,
    teacherLabels: distances.teacherLabels,
    exhausted: distances.exhausted,
  });
  return { distances, soft };
}

/** Student recipe (DB3 reference: Adam, lr 1e-3 for LeNet students, no schedule, τ = 20). */
export interface StudentOptions {
  model: ModelName;
  epochs: number;
  batchSize: number;
  lr: number;
  temperature: number;
}

/** A trained zero-shot student and its final-epoch test accuracy. */
export interface StudentResult {
  model: tfl.LayersModel;
  testAcc: number;
  seconds: number;
  trainedOn: number;
}

/**
 * Train a student on pseudo images and soft labels z (rows `keep`, default all) with KD only — no
 * ground-truth term — and measure it on `test` after the final epoch.
 */
export async function trainZeroShotStudent(
  set: PseudoBatch,
  z: Float32Array,
  student: StudentOptions,
  test: LabeledData,
  seed: number,
  opts: { keep?: Int32Array; label?: string; workers?: number | "auto" } = {},
): Promise<StudentResult> {
  const dim = set.imageShape.reduce((a, b) => a * b, 1), k = set.numClasses;
  const keep = opts.keep ?? Int32Array.from({ length: set.y.length }, (_, i) => i);
  const x = new Float32Array(keep.length * dim);
  const targets = new Float32Array(keep.length * k);
  keep.forEach((i, j) => {
    x.set(set.x.subarray(i * dim, (i + 1) * dim), j * dim);
    targets.set(z.subarray(i * k, (i + 1) * k), j * k);
  });
  const spec: ModelSpec = { name: student.model, inputShape: set.imageShape, numClasses: k };
  const r = await train(spec, { x, shape: [keep.length, ...set.imageShape], targets }, {
    epochs: student.epochs,
    batchSize: Math.min(student.batchSize, keep.length),
    seed,
    loss: { kind: "kd-db3", temperature: student.temperature, hard: false },
    optimizer: { kind: "adam", lr: student.lr },
    schedule: { kind: "constant" },
    workers: opts.workers ?? "auto",
    label: opts.label ?? "zero-shot student",
  });
  const testAcc = await evaluate(r.model, test);
  return { model: r.model, testAcc, seconds: r.wallTimeSec, trainedOn: keep.length };
}
