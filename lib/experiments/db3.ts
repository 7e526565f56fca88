/**
 * DB3 with training data (Wang 2021), notebooks 10/11/12: teacher → label-only soft labels (SD, BD,
 * MBD) → students, beside the label-only CE student and the standard-KD student (probs access), on
 * the same images. The experiment is the `db3` family (spec and settings in `db3_spec.ts`, plan in
 * `db3_plan.ts`, units in `db3_units.ts` and `db3_student.ts`); {@link runDb3} runs it through the
 * runner and collects the result. A rerun of the same spec finds its finished units in the run store,
 * and a new store takes the finished units it shares with the stores beside it (by key).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { saveRun } from "../results/record.ts";
import { hashOf } from "../runner/hash.ts";
import { importUnits } from "../runner/import.ts";
import { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
import { collectDb3, type Db3TableResult } from "./db3_collect.ts";
import { resolveTeacher } from "./open_teacher.ts";
import { db3Plan, type Db3Request, db3Spec, db3TeacherAccess } from "./db3_plan.ts";
import type { Db3Config, Db3Settings } from "./db3_spec.ts";
import { type CacheOption, type LocalExecutor, runAndCollect } from "./run.ts";
import type { DeepPartial } from "./settings.ts";

export { collectDb3, type Db3Row, type Db3TableResult } from "./db3_collect.ts";
export { DB3_TABLE_METHODS, type Db3Settings, db3Settings, type Db3TableMethod } from "./db3_spec.ts";
export { trainDb3Student } from "./db3_student.ts";

/** Options of {@link runDb3}: a {@link Db3Request} plus where and how to run it. */
export interface Db3RunOptions extends Db3Request {
  /**
   * Run store: a folder (kept; a rerun resumes it), `true` (default: `data/runs/db3-<plan hash>`) or
   * `false` (a temporary store, removed after collecting).
   */
  cache?: CacheOption;
  /** Save one run record per student cell under results/ (default true). */
  save?: boolean;
  /** Default "in-process" (notebooks); "local" runs each unit as a process. */
  executor?: LocalExecutor;
  workers?: number;
  /**
   * Only collect: the run store must be finished (paper scale in a notebook: the units ran on a
   * cluster with `deno task bkd run`).
   */
  collectOnly?: boolean;
}

/** Run (or resume, or only collect) a db3 experiment and return what the notebook shows. */
export async function runDb3(opts: Db3RunOptions): Promise<Db3TableResult> {
  const spec = db3Spec(opts);
  const cache = opts.cache ?? true;
  if (opts.collectOnly) {
    if (typeof cache !== "string") throw new Error("db3: collecting needs the run store folder (cache: DIR)");
    const store = await RunStore.open(resolve(cache));
    const got = store.plan.spec as { family?: string; dataset?: string };
    if (got.family !== "db3" || got.dataset !== spec.dataset) {
      throw new Error(
        `db3: run store ${store.root} holds a ${got.family} run on ${got.dataset}, not db3 on ${spec.dataset}: ` +
          `give the store made by \`deno task bkd run --notebook …\` for this notebook`,
      );
    }
    return await finish(store, opts.save);
  }
  const { fingerprint } = await resolveTeacher(spec, db3TeacherAccess(spec));
  return await runAndCollect(
    db3Plan(spec, fingerprint),
    { cache, executor: opts.executor, workers: opts.workers, prepare: shareFinishedUnits },
    (store) => finish(store, opts.save),
  );
}

/**
 * Import the finished units of the run stores beside `store` whose keys its plan has (hard links): a
 * notebook sharing another's labeling (notebook 13 and notebook 10, or a db3-label run) never pays it
 * twice. A folder that is not a readable run store is passed over.
 */
async function shareFinishedUnits(store: RunStore): Promise<void> {
  const parent = dirname(store.root);
  for await (const e of Deno.readDir(parent)) {
    const other = `${parent}/${e.name}`;
    if (!e.isDirectory || other === store.root) continue;
    const from = await RunStore.open(other).catch(() => undefined);
    if (from && ["db3", "db3-label"].includes(from.plan.family)) await importUnits(store, from);
  }
}

async function finish(store: RunStore, save = true): Promise<Db3TableResult> {
  const r = await collectDb3(store);
  if (save) { for (const rec of r.records) await saveRun(rec); }
  return r;
}

/** Options of {@link runDb3Table} (one seed; kept for notebook 13 and older callers). */
export interface Db3TableOptions extends Omit<Db3RunOptions, "seeds" | "override"> {
  dataset: Db3Request["dataset"];
  scale: Scale;
  seed: number;
  /** Settings laid over the scale's (deep merge; a full `Db3Settings` replaces them). */
  settings?: DeepPartial<Db3Settings>;
  /** Old name of `cache` (a folder holding run stores, or false). */
  cacheDir?: string | false;
}

/** One seed of {@link runDb3} (the labeling seed and the student seed are `seed`). */
export async function runDb3Table(opts: Db3TableOptions): Promise<Db3TableResult> {
  const { seed, settings, cacheDir, ...rest } = opts;
  const { note: _note, ...override } = settings ?? {};
  let cache = rest.cache;
  if (cache === undefined && cacheDir !== undefined) {
    cache = cacheDir === false
      ? false
      : `${cacheDir}/db3-${hashOf({ ...rest, seed, override }).slice(0, 16)}`;
  }
  return await runDb3({ ...rest, seeds: [seed], override: override as DeepPartial<Db3Config>, cache });
}
