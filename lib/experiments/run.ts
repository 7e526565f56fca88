/**
 * Running an experiment: its plan goes into a run store (by default one per plan under
 * `data/runs/`, so a rerun of the same spec finds its finished units) and an executor runs every
 * unfinished unit. Notebooks use the in-process executor; `local` starts one process per unit.
 *
 * @module
 */
import { resolve } from "node:path";
import { createProgress } from "../show/progress.ts";
import { hashOf } from "../runner/hash.ts";
import { planIdentity, type RunPlan } from "../runner/plan.ts";
import { RunStore } from "../runner/store.ts";
import { runInProcess, type UnitReport } from "../runner/executors/in_process.ts";
import { runLocal } from "../runner/executors/local.ts";
import { repoRoot } from "../util/paths.ts";
import { familyOf } from "./families.ts";

/** Executors a notebook or test can start here (Slurm and Kubernetes go through `deno task bkd`). */
export type LocalExecutor = "in-process" | "local";

/** Options of {@link runExperiment}. */
export interface RunExperimentOptions {
  /** Run store folder (default {@link defaultStoreRoot}). */
  store?: string;
  /** Default "in-process". */
  executor?: LocalExecutor;
  /** Unit processes for the local executor (default 2). */
  workers?: number;
  /** Hears about every unit as it ends (default: a progress bar over the plan's units). */
  onUnit?: (r: UnitReport) => void;
}

/**
 * The `cache` option of the runners: a run store folder (kept; a rerun resumes it), true (the plan's
 * store under `data/runs/`, whose finished units are reused) or false (a temporary store).
 */
export type CacheOption = boolean | string;

/**
 * {@link runExperiment} in the store `opts.cache` names, then `collect` from it; a temporary store
 * (cache false) is removed once collected. `prepare` sees a kept store before its units run (e.g. to
 * import finished units from the stores beside it).
 */
export async function runAndCollect<T>(
  plan: RunPlan,
  opts: Omit<RunExperimentOptions, "store"> & {
    cache?: CacheOption;
    prepare?: (store: RunStore) => Promise<void>;
  },
  collect: (store: RunStore) => Promise<T>,
): Promise<T> {
  const { cache, prepare, ...run } = opts;
  const root = await storeRootOf(plan, cache);
  try {
    if (cache !== false && prepare) await prepare(await RunStore.create(root, plan));
    return await collect(await runExperiment(plan, { ...run, store: root }));
  } finally {
    if (cache === false) await Deno.remove(root, { recursive: true });
  }
}

/** The run store folder `cache` names for `plan` (false: a new temporary folder, left to the caller). */
export async function storeRootOf(plan: RunPlan, cache: CacheOption = true): Promise<string> {
  if (cache === false) return await Deno.makeTempDir({ prefix: `bkd-${plan.family}-` });
  return typeof cache === "string" ? resolve(cache) : defaultStoreRoot(plan);
}

/** `data/runs/<family>-<first 16 hex of the hash of the plan's identity>` in the repository. */
export function defaultStoreRoot(plan: RunPlan): string {
  return resolve(repoRoot(), "data", "runs", `${plan.family}-${hashOf(planIdentity(plan)).slice(0, 16)}`);
}

/** Raised when units failed; names them and where their logs are. */
export class RunFailedError extends Error {
  constructor(readonly failed: UnitReport[], root: string) {
    super(
      `${failed.length} unit(s) failed: ` +
        failed.map((r) => `${r.level}[${r.index}]${r.detail ? ` (${r.detail.split("\n")[0]})` : ""}`).join(
          "; ",
        ) + `. Logs and partial work are in ${root}; fix the cause and run again (finished units are kept)`,
    );
    this.name = "RunFailedError";
  }
}

/**
 * Run every unfinished unit of `plan` and return its store (finished units are never redone). Throws
 * {@link RunFailedError} when a unit failed.
 */
export async function runExperiment(plan: RunPlan, opts: RunExperimentOptions = {}): Promise<RunStore> {
  const store = await RunStore.create(opts.store ?? defaultStoreRoot(plan), plan);
  const total = plan.levels.reduce((a, l) => a + l.keys.length, 0);
  let onUnit = opts.onUnit;
  let bar: ReturnType<typeof createProgress> | undefined;
  if (!onUnit) {
    bar = createProgress({ label: `${plan.family} units`, total, unit: "unit" });
    let n = 0;
    onUnit = (r) => bar!.update(++n, `${r.level}[${r.index}] ${r.status} ${r.seconds.toFixed(1)} s`);
  }
  const family = familyOf(plan.family);
  const reports = (opts.executor ?? "in-process") === "in-process"
    ? await runInProcess(store, family, { onUnit })
    : await runLocal(store, { workers: opts.workers, onUnit });
  bar?.done();
  const failed = reports.filter((r) => r.status === "failed");
  if (failed.length > 0) throw new RunFailedError(failed, store.root);
  return store;
}
