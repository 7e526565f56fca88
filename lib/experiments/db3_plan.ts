/**
 * A db3 run from a request (notebook parameters or `bkd` flags) to its plan: the resolved spec, the
 * BD labeling spec its shards share with `db3-label`, and the levels with their keys and cost
 * estimates.
 *
 * Levels: `teacher` (its test accuracy: from the recipe's metadata, else measured through labels),
 * `label` (BD shards, exactly a db3-label run's units and keys), `mbd` (MBD shards refining the BD
 * distances), `sd` (no teacher queries), `kd` (the teacher's probabilities), `reduce` (distances and
 * soft labels per method, merged ledgers), `student` (one unit per method × seed).
 *
 * @module
 */
import { BD_DEFAULTS } from "../db3/bd.ts";
import { MBD_DEFAULTS } from "../db3/mbd.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import type { DatasetName } from "../data/types.ts";
import type { Scale } from "../scale.ts";
import { hashOf } from "../runner/hash.ts";
import type { LevelPlan, RunPlan } from "../runner/plan.ts";
import { type Db3LabelSpec, estimateBd, labelLevel } from "./db3_label_spec.ts";
import type { SpecTeacherOptions } from "./open_teacher.ts";
import {
  DB3_TABLE_METHODS,
  type Db3Config,
  db3Settings,
  type Db3Spec,
  type Db3TableMethod,
  transferSize,
} from "./db3_spec.ts";
import type { DeepPartial } from "./settings.ts";
import { parseTeacherSource, type TeacherSource, tokenlessSource } from "./teacher_source.ts";
import type { SoftLabelOptions } from "../db3/soft_labels.ts";

/** What {@link db3Spec} needs: the option vocabulary of every notebook plus the teacher and methods. */
export interface Db3Request {
  dataset: DatasetName;
  scale: Scale;
  /** Student seeds (default [1]); the first one is also the labeling seed unless `labelSeed` is given. */
  seeds?: number[];
  /** Seed of the transfer set, class streams and MBD directions (default `seeds[0]`). */
  labelSeed?: number;
  /** Student rows (default all; an HTTP teacher has no KD row unless asked for, which then fails). */
  methods?: Db3TableMethod[];
  /** Teacher source or its string form (default the kit recipe of the scale and labeling seed). */
  teacher?: TeacherSource | string;
  engine?: TeacherEngine;
  /** Last-word settings (e.g. `--set student.epochs=20`), checked for unknown keys. */
  override?: DeepPartial<Db3Config>;
  softLabels?: Omit<SoftLabelOptions, "teacherLabels" | "exhausted">;
  experiment?: string;
}

/** Resolve a request into a spec (the scale is resolved here and nowhere else). */
export function db3Spec(req: Db3Request): Db3Spec {
  const seeds = req.seeds ?? [1];
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new RangeError(`db3: seeds must be non-negative integers, at least one; got [${seeds}]`);
  }
  const labelSeed = req.labelSeed ?? seeds[0];
  const source = tokenlessSource(
    parseTeacherSource(req.teacher, { dataset: req.dataset, scale: req.scale, seed: labelSeed }),
    "db3",
  );
  const teacher = source.kind === "recipe"
    ? {
      kind: "recipe" as const,
      dataset: source.dataset,
      model: source.model ?? (source.dataset === "cifar10" ? "db3-alexnet" as const : "db3-lenet5" as const),
      scale: source.scale ?? req.scale,
      seed: source.seed ?? labelSeed,
    }
    : source;
  const methods = req.methods ?? DB3_TABLE_METHODS.filter((m) => !(source.kind === "http" && m === "kd"));
  const unknown = methods.filter((m) => !DB3_TABLE_METHODS.includes(m));
  if (unknown.length > 0) {
    throw new RangeError(`db3: unknown method(s) ${unknown.join(", ")}; use ${DB3_TABLE_METHODS.join(", ")}`);
  }
  return {
    family: "db3",
    scale: req.scale,
    dataset: req.dataset,
    teacher,
    labelSeed,
    seeds: [...seeds],
    methods: DB3_TABLE_METHODS.filter((m) => methods.includes(m)),
    engine: req.engine ?? "auto",
    settings: db3Settings(req.scale, req.dataset, req.override),
    softLabels: req.softLabels ?? {},
    experiment: req.experiment ?? `db3-${req.dataset}`,
  };
}

/** The db3-label spec of a db3 run's BD shards (paper scale: the same keys as a db3-label run). */
export function bdLabelSpec(spec: Db3Spec): Db3LabelSpec {
  const spc = spec.settings.samplesPerClass;
  return {
    family: "db3-label",
    scale: spec.scale,
    dataset: spec.dataset,
    teacher: spec.teacher,
    method: "bd",
    // Unset fields filled in, so equal options give equal keys however they were written.
    bd: { ...BD_DEFAULTS, ...spec.settings.bd },
    n: transferSize(spec),
    shardSize: spec.settings.chunk.bd,
    seed: spec.labelSeed,
    engine: spec.engine,
    budgetPerSample: null,
    ...(spc > 0 ? { samplesPerClass: spc } : {}),
  };
}

/** Contiguous sample ranges of `n` samples in units of `size`. */
export function ranges(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

/**
 * Measured rates (2-core reference machine): MBD at the reference settings spends 179,174 queries and
 * 6.69 CPU-seconds per MNIST sample, BD included (results/bench/db3.md); the trainer runs 2,724 LeNet-5
 * images/s on 2 cores at batch 512 (results/bench/train_vs_torch.md); AlexNet-half ~200 images/s per
 * core (measured for notebook 12's laptop settings).
 */
export const DB3_RATES = {
  mbdQueriesPerSample: 179174,
  mbdCpuSecondsPerSample: 6.69,
  mbdQueryLimit: 20000,
  lenetImagesPerCpuSecond: 2724 / 2,
  alexnetImagesPerCpuSecond: 200,
};

const est = (queries: number, cpuSeconds: number, source: string) => ({ queries, cpuSeconds, source });

/** The access a run's teacher must give: probs when the table has row kd (standard KD), else labels. */
export function db3TeacherAccess(spec: Db3Spec): SpecTeacherOptions {
  return spec.methods.includes("kd")
    ? { need: "probs", method: "DB3 table row kd (standard KD)" }
    : { need: "label", method: "db3-label" };
}

/** The plan of a db3 run (see the module doc). */
export function db3Plan(spec: Db3Spec, teacherFingerprint: string): RunPlan {
  const n = transferSize(spec);
  const s = spec.settings;
  const m = new Set(spec.methods);
  const levels: LevelPlan[] = [];
  const common = {
    family: spec.family,
    dataset: spec.dataset,
    teacher: spec.teacher,
    fp: teacherFingerprint,
  };
  const res = (cores: number, memoryMB: number, timeMinutes: number) => ({ cores, memoryMB, timeMinutes });
  const one = (
    name: string,
    kind: string,
    deps: string[],
    what: string,
    key: unknown,
    e: LevelPlan["estimate"],
  ) =>
    levels.push({
      name,
      kind,
      keys: [hashOf({ kind, ...common, key })],
      resources: res(2, 3000, 120),
      deps,
      describe: [what],
      estimate: e,
    });
  one(
    "teacher",
    "db3-teacher",
    [],
    "teacher test accuracy",
    { engine: spec.engine, testLimit: s.testLimit },
    est(
      spec.teacher.kind === "recipe" ? 0 : s.testLimit || 10000,
      5,
      "recipe: its metadata; otherwise one label query per test image",
    ),
  );
  const labelSpec = bdLabelSpec(spec);
  if (m.has("bd") || m.has("mbd")) levels.push(labelLevel(labelSpec, teacherFingerprint));
  if (m.has("mbd")) {
    const rs = ranges(n, s.chunk.mbd);
    const f = (s.mbd.queryLimit ?? MBD_DEFAULTS.queryLimit) / DB3_RATES.mbdQueryLimit;
    const bd = estimateBd(s.chunk.mbd, labelSpec.bd);
    levels.push({
      name: "mbd",
      kind: "db3-mbd-shard",
      keys: rs.map((r) =>
        hashOf({
          kind: "db3-mbd-shard",
          ...common,
          bd: levelKeys(levels, "label"),
          mbd: s.mbd,
          seed: spec.labelSeed,
          range: r,
        })
      ),
      resources: res(2, 3000, Math.ceil((4 * s.chunk.mbd * DB3_RATES.mbdCpuSecondsPerSample * f) / 60) + 10),
      deps: ["label"],
      describe: rs.map(([a, b]) => `MBD samples ${a}–${b - 1}`),
      estimate: est(
        Math.max(0, s.chunk.mbd * DB3_RATES.mbdQueriesPerSample * f - bd.queries),
        Math.max(0, s.chunk.mbd * DB3_RATES.mbdCpuSecondsPerSample * f - bd.cpuSeconds),
        "results/bench/db3.md (MBD, MNIST, native engine, limit 20,000; scaled by the query limit, BD excluded)",
      ),
    });
  }
  if (m.has("sd")) {
    one("sd", "db3-sd", [], "SD distances (no teacher queries)", {
      sd: s.sd,
      n,
      seed: spec.labelSeed,
      spc: s.samplesPerClass,
    }, est(0, n * 1e-3, "nearest-image search, ~1 ms per sample"));
  }
  if (m.has("kd")) {
    one("kd", "db3-kd-targets", [], "teacher probabilities (standard KD)", {
      n,
      seed: spec.labelSeed,
      spc: s.samplesPerClass,
      engine: spec.engine,
    }, est(n, n * 1e-3, "one probs query per transfer image"));
  }
  const inputs = ["label", "mbd", "sd", "kd"].filter((l) => levels.some((v) => v.name === l));
  one("reduce", "db3-reduce", inputs, "distances, soft labels and ledgers per method", {
    inputs: inputs.map((l) => levelKeys(levels, l)),
    softLabels: spec.softLabels,
  }, est(0, 5, "no teacher queries; reads the labeling units"));
  const cells = spec.methods.flatMap((method) => spec.seeds.map((seed) => ({ method, seed })));
  const rate = spec.dataset === "cifar10"
    ? DB3_RATES.alexnetImagesPerCpuSecond
    : DB3_RATES.lenetImagesPerCpuSecond;
  const studentCpu = (s.student.epochs * n) / rate;
  levels.push({
    name: "student",
    kind: "db3-student",
    keys: cells.map((c) =>
      hashOf({
        kind: "db3-student",
        ...common,
        reduce: levelKeys(levels, "reduce"),
        ...c,
        student: s.student,
        testLimit: s.testLimit,
        scale: spec.scale,
        experiment: spec.experiment,
      })
    ),
    resources: res(2, 3000, Math.ceil((4 * studentCpu) / 60) + 10),
    deps: ["teacher", "reduce"],
    describe: cells.map((c) => `student ${c.method}, seed ${c.seed}`),
    estimate: est(
      0,
      studentCpu,
      "results/bench/train_vs_torch.md (LeNet-5, batch 512); AlexNet-half ~200 images/s per core",
    ),
  });
  return {
    family: spec.family,
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels,
  };
}

function levelKeys(levels: LevelPlan[], name: string): string[] {
  return levels.find((l) => l.name === name)?.keys ?? [];
}
