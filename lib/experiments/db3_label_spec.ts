/**
 * The "db3-label" experiment as data: BD distances for the first `n` images of a dataset's training
 * split, labelled by a kit teacher through the label oracle in contiguous shards, then reduced to
 * distances n×K, one exact ledger and soft labels z.
 *
 * Settings: `paper` is the base (all 60,000 MNIST training images, BD's reference defaults: 201
 * candidates, tolerance 1e-5); `laptop` and `smoke` override a few fields, each with a note.
 *
 * @module
 */
import { BD_DEFAULTS } from "../db3/bd.ts";
import type { DatasetName } from "../data/types.ts";
import type { ModelName } from "../models/registry.ts";
import type { Scale } from "../scale.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import {
  type FolderTeacherSource,
  type HttpTeacherSource,
  parseTeacherSource,
  type TeacherSource,
  tokenlessSource,
} from "./teacher_source.ts";
import { hashOf } from "../runner/hash.ts";
import type { LevelPlan, RunPlan } from "../runner/plan.ts";

/** BD options that decide the distances (the reference defaults' fields). */
export type Db3LabelBd = typeof BD_DEFAULTS;

/** A kit teacher: trained by `getTeacher` with the recipe of its scale. */
export interface KitTeacher {
  kind: "recipe";
  dataset: DatasetName;
  model: ModelName;
  scale: Scale;
  seed: number;
}

/**
 * The teacher of a run: a kit recipe with every field resolved, a model folder, or a label endpoint
 * (its token is never part of a spec, which is written to the run store: units read it from
 * `BKD_TEACHER_TOKEN`).
 */
export type Db3LabelTeacher = KitTeacher | FolderTeacherSource | Omit<HttpTeacherSource, "token">;

/** The resolved spec of one db3-label run (plain JSON). */
export interface Db3LabelSpec {
  family: "db3-label";
  scale: Scale;
  dataset: DatasetName;
  teacher: Db3LabelTeacher;
  method: "bd";
  bd: Db3LabelBd;
  /** Label the training images 0..n−1 (sample ids are these indices). */
  n: number;
  /** Samples per labeling unit; the last shard may be shorter. */
  shardSize: number;
  /** Seed of the class streams (candidate order). */
  seed: number;
  /** Teacher engine (answers may differ across engines within ~1e-5 of a boundary: part of the key). */
  engine: TeacherEngine;
  /** Per-sample query budget (images), or null for none. */
  budgetPerSample: number | null;
  /**
   * Label a class-balanced transfer set (`samplesPerClass` training images per class drawn with
   * `seed`, in training order) instead of the first `n` training images; sample ids are then indices
   * into that set. Absent in db3-label runs (their keys do not change); set by the `db3` family below
   * paper scale.
   */
  samplesPerClass?: number;
}

/** Fields a scale may override. */
export type Db3LabelOverride = Partial<Pick<Db3LabelSpec, "n" | "shardSize" | "budgetPerSample">> & {
  bd?: Partial<Db3LabelBd>;
  teacherScale?: Scale;
};

/** The settings table: `paper` is the base; the others are overrides with the reason. */
export const DB3_LABEL_SETTINGS: {
  paper: { n: number; shardSize: number; bd: Db3LabelBd; budgetPerSample: null; note: string };
  laptop: { override: Db3LabelOverride; note: string };
  smoke: { override: Db3LabelOverride; note: string };
} = {
  paper: {
    n: 60000,
    shardSize: 1000,
    bd: { ...BD_DEFAULTS },
    budgetPerSample: null,
    note: "DB3 reference: all 60,000 training images, BD with 201 candidates and tolerance 1e-5; " +
      "1,000 samples per unit (≈ 2.2 M queries, ≈ 1.5 CPU-min each on this machine)",
  },
  laptop: {
    override: { n: 2000, shardSize: 250, teacherScale: "laptop" },
    note: "2,000 images in 8 units, reference BD settings: minutes on 2 cores",
  },
  smoke: {
    override: { n: 30, shardSize: 10, bd: { candidates: 40 }, teacherScale: "smoke" },
    note: "pipeline check: 30 images in 3 units, 40 candidates instead of 201, smoke teacher",
  },
};

/** What {@link db3LabelSpec} needs. */
export interface Db3LabelRequest {
  dataset: DatasetName;
  scale: Scale;
  seed?: number;
  /** Teacher model (default: DB3 LeNet-5, or AlexNet for CIFAR-10). */
  model?: ModelName;
  /**
   * Where the teacher comes from (default: the kit recipe of the scale): a TeacherSource or its string
   * form (folder, endpoint URL, dataset:model:scale[:seed]). A token is refused here (see
   * `BKD_TEACHER_TOKEN`).
   */
  teacher?: TeacherSource | string;
  engine?: TeacherEngine;
  /** Last-word overrides (e.g. from the command line). */
  override?: Db3LabelOverride;
}

/** Resolve a spec: the paper base, then the scale's override, then the request's override. */
export function db3LabelSpec(req: Db3LabelRequest): Db3LabelSpec {
  const base = DB3_LABEL_SETTINGS.paper;
  const scaleOv: Db3LabelOverride = req.scale === "paper" ? {} : DB3_LABEL_SETTINGS[req.scale].override;
  const ov = req.override ?? {};
  const seed = req.seed ?? 0;
  const given = req.teacher === undefined ? undefined : tokenlessSource(
    parseTeacherSource(req.teacher, { dataset: req.dataset, scale: req.scale, seed }),
    "db3-label",
  );
  const teacher: Db3LabelTeacher = given && given.kind !== "recipe" ? given : {
    kind: "recipe",
    dataset: given?.dataset ?? req.dataset,
    model: given?.model ?? req.model ?? (req.dataset === "cifar10" ? "db3-alexnet" : "db3-lenet5"),
    scale: (given ? given.scale : undefined) ?? ov.teacherScale ?? scaleOv.teacherScale ?? "paper",
    seed: given?.seed ?? seed,
  };
  const spec: Db3LabelSpec = {
    family: "db3-label",
    scale: req.scale,
    dataset: req.dataset,
    teacher,
    method: "bd",
    bd: { ...base.bd, ...scaleOv.bd, ...ov.bd },
    n: ov.n ?? scaleOv.n ?? base.n,
    shardSize: ov.shardSize ?? scaleOv.shardSize ?? base.shardSize,
    seed,
    engine: req.engine ?? "auto",
    budgetPerSample: ov.budgetPerSample ?? scaleOv.budgetPerSample ?? base.budgetPerSample,
  };
  if (!Number.isInteger(spec.n) || spec.n < 1) {
    throw new RangeError(`db3-label: n must be ≥ 1, got ${spec.n}`);
  }
  if (!Number.isInteger(spec.shardSize) || spec.shardSize < 1) {
    throw new RangeError(`db3-label: shardSize must be a positive integer, got ${spec.shardSize}`);
  }
  return spec;
}

/** Sample range [start, end) of each shard. */
export function shardRanges(spec: Db3LabelSpec): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < spec.n; s += spec.shardSize) out.push([s, Math.min(spec.n, s + spec.shardSize)]);
  return out;
}

/**
 * Measured on this kit's 2-core AVX2 reference machine in the paper-scale MNIST run (60 shards of
 * 1,000 samples, native engine, 2 threads, laptop teacher): 2,178 queries per sample (every shard
 * within 2,177–2,180), and 98.8 s of wall time for the quietest shard = 0.198 CPU-seconds per sample
 * (shards that shared the cores with other work took up to 5× longer). The AVX-512 machine of
 * results/bench/db3.md was 2.5× faster (0.080).
 */
export const BD_RATES = {
  queriesPerSample: 2178,
  cpuSecondsPerSample: 0.198,
  candidates: 201,
  source: "paper-scale MNIST BD run, quietest of 30 shards (2 cores, AVX2, native engine)",
};

/** Estimated teacher queries and CPU-seconds for `samples` samples (scaled by candidates). */
export function estimateBd(samples: number, bd: Db3LabelBd): { queries: number; cpuSeconds: number } {
  const f = bd.candidates / BD_RATES.candidates;
  return {
    queries: samples * BD_RATES.queriesPerSample * f,
    cpuSeconds: samples * BD_RATES.cpuSecondsPerSample * f,
  };
}

/** The key of every labeling shard: the spec fields a shard's answers depend on, the teacher, its range. */
export function labelShardKeys(spec: Db3LabelSpec, teacherFingerprint: string): string[] {
  const shared = {
    family: spec.family,
    dataset: spec.dataset,
    teacher: spec.teacher,
    fingerprint: teacherFingerprint,
    method: spec.method,
    bd: spec.bd,
    seed: spec.seed,
    engine: spec.engine,
    budgetPerSample: spec.budgetPerSample,
    samplesPerClass: spec.samplesPerClass,
  };
  return shardRanges(spec).map((r) => hashOf({ kind: "db3-label-shard", ...shared, range: r }));
}

/** The labeling level of a plan (shared by db3-label and db3, so their shards are interchangeable). */
export function labelLevel(spec: Db3LabelSpec, teacherFingerprint: string): LevelPlan {
  const worst = estimateBd(spec.shardSize, spec.bd);
  return {
    name: "label",
    kind: "db3-label-shard",
    keys: labelShardKeys(spec, teacherFingerprint),
    // 2 cores (the native engine's threads); time: 4× the measured rate plus start-up.
    resources: { cores: 2, memoryMB: 3000, timeMinutes: Math.ceil((4 * worst.cpuSeconds) / 60) + 10 },
    deps: [],
    describe: shardRanges(spec).map(([a, b]) => `samples ${a}–${b - 1}`),
    estimate: { ...worst, source: BD_RATES.source },
  };
}

/** The plan: one "label" level (a unit per shard) and one "reduce" level reading them all. */
export function db3LabelPlan(spec: Db3LabelSpec, teacherFingerprint: string): RunPlan {
  const label = labelLevel(spec, teacherFingerprint);
  return {
    family: spec.family,
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels: [
      label,
      {
        name: "reduce",
        kind: "db3-label-reduce",
        keys: [hashOf({ kind: "db3-label-reduce", inputs: label.keys })],
        resources: { cores: 1, memoryMB: 2000 + Math.ceil(spec.n / 100), timeMinutes: 30 },
        deps: ["label"],
        describe: [`merge ${label.keys.length} shards: distances, ledger, soft labels`],
        estimate: { queries: 0, cpuSeconds: 5, source: "no teacher queries; reads the shards" },
      },
    ],
  };
}
