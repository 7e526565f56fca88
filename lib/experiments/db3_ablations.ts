/**
 * The DB3 ablations on MNIST (notebook 13, LeNet-5 → LeNet-5-half): the DB3 table run (CE, SD, BD and
 * MBD students; its transfer set labelled once, sharing notebook 10's labeling cache when the settings
 * match), then one student per variant of the settings table (`db3abl_spec.ts`), run by the runner as
 * units of the "db3-ablations" family (`db3abl_units.ts`). Every student is a run record (experiment
 * `db3-ablations`), saved unless `save: false`; the views are in `lib/views/db3_ablations.ts`.
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import { saveRun } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import {
  DB3_ABLATION_PARTS,
  type Db3AblationConfig,
  db3AblationConfig,
  type Db3AblationPart,
  type Db3AblationResult,
  type Db3AblationSettings,
} from "./db3abl_spec.ts";
import { db3Settings } from "./db3.ts";
import {
  ablationTeacher,
  collectDb3Ablations,
  DB3_ABLATIONS,
  db3AblationPlan,
  type Db3AblationSpec,
} from "./db3abl_units.ts";
import { resolveTeacher } from "./open_teacher.ts";
import { type LocalExecutor, runExperiment } from "./run.ts";
import type { DeepPartial } from "./settings.ts";
import { parseTeacherSource, type TeacherSource, tokenlessSource } from "./teacher_source.ts";

/** Options of {@link runDb3Ablations}. */
export interface Db3AblationOptions {
  scale: Scale;
  seed: number;
  /** Parts to run (default all). */
  parts?: Db3AblationPart[];
  /** Laid over the scale's ablation settings (a key the table lacks is an error). */
  settings?: DeepPartial<Db3AblationSettings>;
  /** Labeling cache root of the table run (default `<repo>/data/db3`); `false` disables it. */
  cache?: string | false;
  /** Save the run records under `results/` (default true). */
  save?: boolean;
  /** The teacher: a TeacherSource or its string form (default the kit recipe). */
  teacher?: TeacherSource | string;
  /** Executor (default in-process) and run store (default one per plan under `data/runs/`). */
  executor?: LocalExecutor;
  store?: string;
}

/** The ablation's settings of `scale` (MNIST), starting from the DB3 table's, `extra` laid on top. */
export function db3AblationSettings(
  scale: Scale,
  extra?: DeepPartial<Db3AblationSettings>,
): Db3AblationConfig {
  return db3AblationConfig(scale, db3Settings(scale, "mnist"), extra);
}

/** The resolved spec of a run (the scale is resolved here, once). */
export function db3AblationSpec(opts: Db3AblationOptions): Db3AblationSpec {
  const dataset: DatasetName = "mnist";
  const teacher = tokenlessSource(
    parseTeacherSource(opts.teacher, { dataset, scale: opts.scale, seed: opts.seed }),
    "DB3 ablations",
  );
  return {
    family: DB3_ABLATIONS,
    scale: opts.scale,
    seed: opts.seed,
    teacher,
    settings: db3AblationSettings(opts.scale, opts.settings),
    parts: [...(opts.parts ?? DB3_ABLATION_PARTS)],
    cache: opts.cache ?? null,
  };
}

/** Run the DB3 ablations (see the module doc) and return what notebook 13 shows. */
export async function runDb3Ablations(opts: Db3AblationOptions): Promise<Db3AblationResult> {
  const spec = db3AblationSpec(opts);
  const plan = db3AblationPlan(
    spec,
    (await resolveTeacher(ablationTeacher(spec), { method: "DB3 ablations" })).fingerprint,
  );
  const store = await runExperiment(plan, { executor: opts.executor, store: opts.store });
  const r = await collectDb3Ablations(store);
  if (opts.save !== false) { for (const rec of r.records) await saveRun(rec); }
  return r;
}
