/**
 * The "zsdb3kd" experiment as data (notebooks 30, 31, 32 and 33): a resolved spec and its run plan.
 *
 * Levels, per seed (every seed is a whole pipeline: its own pseudo samples, labels and students):
 * 1. `init` — one unit per round: the noise initialisation. Its draws serve every class at once (one
 *    query labels a draw for all classes), so a round cannot be split further.
 * 2. `generate` — contiguous ranges of pseudo-sample ids, `shardSize` each: the iterations of untargeted
 *    Sign-OPT and steps for those samples, through a journaled label oracle with per-sample budgets.
 *    Each sample's path depends only on its own queries (its own random streams, the round's
 *    iteration-0 images as fallback anchors), so the split does not change the samples.
 * 3. `label` — per iteration with a student, the same ranges: BD distances towards the other classes.
 *    A level of its own, not inside `generate`: BD's direction streams are the *whole* pseudo pool of
 *    that iteration, which exists only once every generation shard is done.
 * 4. `reduce` — one unit per seed: exact ledgers (generation and each labeling; no sample over its
 *    budget), the soft labels of each labelled iteration, the teacher's test accuracy. The pseudo
 *    samples stay in the generation units' files and are read back in id order.
 *
 * Seeds enter as in `generatePseudoSamples`: (seed, round, iteration) streams and per-id streams, so
 * the shard size (an execution setting) never changes a number.
 * 5. `student` — one unit per cell: (seed, iteration) students, and for notebook 33 the (seed, iteration,
 *    pseudo samples per class) cells of the per-class sweep (relabelled with their own pools).
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import type { Scale } from "../scale.ts";
import { hashOf } from "../runner/hash.ts";
import type { LevelPlan, RunPlan, UnitEstimate } from "../runner/plan.ts";
import type { Db3LabelTeacher } from "./db3_label_spec.ts";
import type { DeepPartial } from "./settings.ts";
import { type ZsSettings, zsSettings } from "./zs_settings.ts";
import { zsEstimates } from "./zs_estimate.ts";
import { parseTeacherSource, type TeacherSource, tokenlessSource } from "./teacher_source.ts";
import { resolveTeacher, type SpecTeacherOptions } from "./open_teacher.ts";

/** How the ZSDB3KD units and planner open the spec's teacher (labels only). */
export const ZS_TEACHER: SpecTeacherOptions = { need: "label", method: "ZSDB3KD" };

/** Classes of every dataset the family runs on. */
const NUM_CLASSES: Record<DatasetName, number> = { mnist: 10, fmnist: 10, cifar10: 10 };

/** The resolved spec of one zsdb3kd run (plain JSON). */
export interface ZsSpec {
  family: "zsdb3kd";
  /** Experiment name of the run records (e.g. "zsdb3kd-mnist", "zsdb3kd-ablations"). */
  experiment: string;
  scale: Scale;
  dataset: DatasetName;
  numClasses: number;
  teacher: Db3LabelTeacher;
  engine: TeacherEngine;
  /** One whole pipeline per seed (generation, labels and students draw from it). */
  seeds: number[];
  settings: ZsSettings;
  /** Iterations a student trains on, per seed (0 = the raw accepted noise, the baseline). */
  studentIterations: number[];
  /** Notebook 33's sweep: the first m pseudo samples per class, relabelled; empty: none. */
  sweep: { counts: number[]; iterations: number[] };
}

/** What {@link zsSpec} needs. */
export interface ZsRequest {
  dataset: DatasetName;
  scale: Scale;
  /** Pipeline seeds (default [1]). */
  seeds?: number[];
  /** Where the teacher comes from (default: the kit recipe of the scale, seed 1). No tokens (see db3-label). */
  teacher?: TeacherSource | string;
  engine?: TeacherEngine;
  /** Iterations with a student (default 0 and the last). */
  studentIterations?: number[];
  sweep?: { counts: number[]; iterations: number[] };
  experiment?: string;
  /** Last-word settings (e.g. a notebook parameter). */
  settings?: DeepPartial<ZsSettings>;
}

/** Resolve a spec: the settings of the scale, the teacher, the cells. */
export function zsSpec(req: ZsRequest): ZsSpec {
  const settings = zsSettings(req.scale, req.dataset, req.settings);
  const g = settings.generate;
  const seeds = req.seeds ?? [1];
  if (seeds.length === 0 || new Set(seeds).size !== seeds.length) {
    throw new RangeError(`zsdb3kd: seeds must be distinct and at least one, got [${seeds}]`);
  }
  const given = tokenlessSource(
    parseTeacherSource(req.teacher, { dataset: req.dataset, scale: req.scale, seed: 1 }),
    "zsdb3kd",
  );
  const teacher: Db3LabelTeacher = given.kind !== "recipe" ? given : {
    kind: "recipe",
    dataset: given.dataset,
    model: given.model ?? (given.dataset === "cifar10" ? "db3-alexnet" : "db3-lenet5"),
    scale: given.scale ?? req.scale,
    seed: given.seed ?? 1,
  };
  const kept = [0, ...g.snapshotAt.filter((i) => i >= 1 && i <= g.iterations)];
  const last = kept.at(-1)!;
  const studentIterations = req.studentIterations ?? (last === 0 ? [0] : [0, last]);
  for (const it of [...studentIterations, ...(req.sweep?.iterations ?? [])]) {
    if (!kept.includes(it)) {
      throw new RangeError(`zsdb3kd: no snapshot at iteration ${it}; kept iterations are ${kept.join(", ")}`);
    }
  }
  return {
    family: "zsdb3kd",
    experiment: req.experiment ?? `zsdb3kd-${req.dataset}`,
    scale: req.scale,
    dataset: req.dataset,
    numClasses: NUM_CLASSES[req.dataset],
    teacher,
    engine: req.engine ?? "auto",
    seeds,
    settings,
    studentIterations,
    sweep: req.sweep ?? { counts: [], iterations: [] },
  };
}

/** Pseudo-sample ids of one seed: round r holds ids r·K·perClass … (r+1)·K·perClass − 1. */
export function idSpace(spec: ZsSpec): number {
  return spec.settings.generate.rounds * spec.numClasses * spec.settings.generate.perClass;
}

/** Id ranges [start, end) of the generation and labeling units of one seed. */
export function zsRanges(spec: ZsSpec): [number, number][] {
  const out: [number, number][] = [];
  const n = idSpace(spec), size = spec.settings.shardSize;
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

/** One unit of the init level. */
export interface InitUnit {
  seed: number;
  round: number;
}
/** One unit of the generate level. */
export interface GenUnit {
  seed: number;
  range: [number, number];
}
/** One unit of the label level. */
export interface LabelUnit {
  seed: number;
  iteration: number;
  range: [number, number];
}
/** One student cell: `perClass` null for the main students, m for the sweep. */
export interface StudentCell {
  seed: number;
  iteration: number;
  perClass: number | null;
}

/** The units of every level, in level order (index = unit index). */
export function zsUnits(spec: ZsSpec): {
  init: InitUnit[];
  generate: GenUnit[];
  label: LabelUnit[];
  reduce: number[];
  student: StudentCell[];
} {
  const ranges = zsRanges(spec);
  const rounds = [...Array(spec.settings.generate.rounds).keys()];
  return {
    init: spec.seeds.flatMap((seed) => rounds.map((round) => ({ seed, round }))),
    generate: spec.seeds.flatMap((seed) => ranges.map((range) => ({ seed, range }))),
    label: spec.seeds.flatMap((seed) =>
      spec.studentIterations.flatMap((iteration) => ranges.map((range) => ({ seed, iteration, range })))
    ),
    reduce: [...spec.seeds],
    student: spec.seeds.flatMap((seed) => [
      ...spec.studentIterations.map((iteration) => ({ seed, iteration, perClass: null })),
      ...spec.sweep.iterations.flatMap((iteration) =>
        spec.sweep.counts.map((perClass) => ({ seed, iteration, perClass }))
      ),
    ]),
  };
}

const minutes = (cpuSeconds: number) => Math.ceil((4 * cpuSeconds) / 60) + 10;

/** The plan (see the module doc); `teacherFingerprint` binds every key to the teacher. */
export function zsPlan(spec: ZsSpec, teacherFingerprint: string): RunPlan {
  const u = zsUnits(spec);
  const s = spec.settings;
  const shared = {
    family: spec.family,
    dataset: spec.dataset,
    teacher: spec.teacher,
    fingerprint: teacherFingerprint,
    engine: spec.engine,
    perSampleBudget: s.perSampleBudget,
    generate: s.generate,
  };
  const initKeys = u.init.map((x) => hashOf({ kind: "zs-init", ...shared, ...x }));
  const ofSeed = (keys: string[], units: { seed: number }[], seed: number) =>
    keys.filter((_, i) => units[i].seed === seed);
  const genKeys = u.generate.map((x) =>
    hashOf({ kind: "zs-generate", ...shared, ...x, inputs: ofSeed(initKeys, u.init, x.seed) })
  );
  const labelKeys = u.label.map((x) =>
    hashOf({ kind: "zs-label", label: s.label, ...x, inputs: ofSeed(genKeys, u.generate, x.seed) })
  );
  const reduceKeys = u.reduce.map((seed) =>
    hashOf({
      kind: "zs-reduce",
      testLimit: s.testLimit,
      inputs: [...ofSeed(initKeys, u.init, seed), ...ofSeed(genKeys, u.generate, seed)],
      labels: ofSeed(labelKeys, u.label, seed),
    })
  );
  const studentKeys = u.student.map((c) =>
    hashOf({
      kind: "zs-student",
      experiment: spec.experiment,
      student: s.student,
      label: c.perClass === null ? null : s.label,
      testLimit: s.testLimit,
      ...c,
      input: reduceKeys[u.reduce.indexOf(c.seed)],
    })
  );
  const est = zsEstimates(spec);
  const level = (
    name: string,
    deps: string[],
    keys: string[],
    describe: string[],
    estimate: UnitEstimate,
    cores = 2,
  ): LevelPlan => ({
    name,
    kind: `zs-${name}`,
    keys,
    resources: { cores, memoryMB: 3000, timeMinutes: minutes(estimate.cpuSeconds) },
    deps,
    describe,
    estimate,
  });
  const range = (r: [number, number]) => `ids ${r[0]}–${r[1] - 1}`;
  return {
    family: spec.family,
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels: [
      level(
        "init",
        [],
        initKeys,
        u.init.map((x) => `seed ${x.seed}, round ${x.round}: noise init`),
        est.init,
      ),
      level(
        "generate",
        ["init"],
        genKeys,
        u.generate.map((x) => `seed ${x.seed}, ${range(x.range)}: ${s.generate.iterations} iterations`),
        est.generate,
      ),
      level(
        "label",
        ["generate"],
        labelKeys,
        u.label.map((x) => `seed ${x.seed}, iteration ${x.iteration}, ${range(x.range)}: BD distances`),
        est.label,
      ),
      level(
        "reduce",
        ["init", "generate", "label"],
        reduceKeys,
        u.reduce.map((seed) => `seed ${seed}: merge`),
        {
          queries: 0,
          cpuSeconds: 30,
          source: "reads and merges files; the teacher's test accuracy",
        },
        1,
      ),
      level(
        "student",
        ["reduce"],
        studentKeys,
        u.student.map((c) =>
          `seed ${c.seed}, iteration ${c.iteration}` +
          (c.perClass === null ? "" : `, first ${c.perClass}/class`)
        ),
        est.student,
      ),
    ],
  };
}

/** Options of {@link zsNotebookPlan} (the notebooks' parameters). */
export interface ZsNotebookOverrides {
  /** First seed (default 1); the notebook's seed list starts there. */
  seed?: number;
  /** Explicit seeds (default: the notebook's). */
  seeds?: number[];
  teacher?: TeacherSource | string;
  engine?: TeacherEngine;
  settings?: DeepPartial<ZsSettings>;
}

const NOTEBOOK_DATASET: Record<"30" | "31" | "32" | "33", DatasetName> = {
  "30": "mnist",
  "31": "fmnist",
  "32": "cifar10",
  "33": "mnist",
};

/**
 * Seeds per notebook: three on MNIST (30, 33) to measure the spread; one for Fashion-MNIST (an extra
 * teacher to train) and CIFAR-10 (AlexNet queries ~20× dearer). 33 at laptop: 3 × (≈ 2 min generation,
 * 6 labelings + 6 students ≈ 3 min, sweep ≈ 1.5 min) ≈ 20 min on 2 cores.
 */
export function zsNotebookSeeds(notebook: "30" | "31" | "32" | "33", first = 1): number[] {
  return NOTEBOOK_DATASET[notebook] === "mnist" ? [first, first + 1, first + 2] : [first];
}

/** The spec of a notebook: 30/31/32 (one dataset each), 33 (MNIST ablations: every snapshot, the sweep). */
export function zsNotebookSpec(
  notebook: "30" | "31" | "32" | "33",
  scale: Scale,
  o: ZsNotebookOverrides = {},
): ZsSpec {
  const dataset = NOTEBOOK_DATASET[notebook];
  const seeds = o.seeds ?? zsNotebookSeeds(notebook, o.seed ?? 1);
  const base = { dataset, scale, seeds, teacher: o.teacher, engine: o.engine, settings: o.settings };
  if (notebook !== "33") return zsSpec(base);
  const g = zsSettings(scale, dataset, o.settings).generate;
  const kept = [0, ...g.snapshotAt.filter((i) => i >= 1 && i <= g.iterations)];
  const total = g.perClass * g.rounds;
  const counts = [
    ...new Set([Math.max(1, Math.round(total / 4)), Math.max(1, Math.round(total / 2)), total]),
  ];
  return zsSpec({
    ...base,
    experiment: "zsdb3kd-ablations",
    studentIterations: kept,
    sweep: { counts, iterations: [...new Set([0, kept.at(-1)!])] },
  });
}

/** The run plan of a notebook (opens the teacher once to fingerprint it; a recipe is trained if missing). */
export async function zsNotebookPlan(
  notebook: "30" | "31" | "32" | "33",
  scale: Scale,
  overrides: ZsNotebookOverrides = {},
): Promise<RunPlan> {
  const spec = zsNotebookSpec(notebook, scale, overrides);
  return zsPlan(spec, (await resolveTeacher(spec, ZS_TEACHER)).fingerprint);
}
