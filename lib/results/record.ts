/**
 * Run records: one JSON file per run with everything needed to trust a number later (config, seed,
 * scale, backend, versions, git commit, wall time, metrics, ledger), plus one CSV row per run for
 * quick tables.
 *
 * Layout: `<dir>/<experiment>/<id>.json` and `<dir>/<experiment>.csv` (default dir `results/runs`).
 *
 * @module
 */
import { version_core as tfjsVersion } from "@tensorflow/tfjs-core";
import { type BackendInfo, backendInfo } from "../backend.ts";
import { trainEngineMark, trainEnginesSince, type TrainEngineUse } from "../train/engine.ts";
import type { Scale } from "../scale.ts";
import pkg from "../../package.json" with { type: "json" };
import { type CsvRow, parseCsv, toCsv, unionColumns } from "./csv.ts";
import { type FlatRow, flattenObject } from "./flatten.ts";
import { readTextIfExists, writeAtomic } from "./io.ts";
import { resultsPath } from "../util/paths.ts";

/** Everything recorded about one run. */
export interface RunRecord {
  /** Unique, file-name safe: `<time>-<method>-<dataset>-<scale>-s<seed>-<random>`. */
  id: string;
  /** Experiment name, e.g. `"table-a"`, `"db3-budget"`; names the folder and CSV. */
  experiment: string;
  /** Method, e.g. `"cake"`, `"db3-mbd"`, `"kd"`. */
  method: string;
  /** Dataset name. */
  dataset: string;
  /** Scale the run used. */
  scale: Scale;
  /** Seed of the run. */
  seed: number;
  /** All hyperparameters (nested objects allowed; flattened with dots in the CSV). */
  config: Record<string, unknown>;
  /** Backend info at start (`null` if no backend was initialised). */
  backend: BackendInfo | null;
  /**
   * The engine of every `train(...)` call made while the run was open (native or wasm, what was asked
   * for, why a fallback happened; lib/train/engine.ts). Absent when the run trained nothing, and in
   * records written before this field existed.
   */
  trainEngines?: TrainEngineUse[];
  /** Versions that decide the result. */
  versions: { deno: string; tfjs: string; kit: string };
  /** `git rev-parse HEAD` of the checkout, `null` if unavailable. */
  gitCommit: string | null;
  /** Uncommitted changes to tracked files at start (`null` if unknown). */
  gitDirty: boolean | null;
  /**
   * The notebook execution (or process) that produced the record: one id shared by every record of
   * that execution, the notebook's file name when run by `tools/notebooks.ts` (`BKD_NOTEBOOK`), and
   * when the execution started. Absent in records written before this field existed.
   */
  execution?: RunExecution;
  /**
   * `"superseded"` when a later run replaced this one (see `lib/results/supersede.ts`); absent for
   * current records.
   */
  status?: "superseded";
  /** Why the record was superseded and by what (only with `status: "superseded"`). */
  supersededBy?: string;
  /** Problems with the record's provenance, e.g. a work tree with uncommitted changes. */
  warnings?: string[];
  /** ISO time the run started. */
  startedAt: string;
  /** Seconds from start to finish. */
  wallTimeSec: number;
  /** Measured numbers, e.g. `{studentAcc: 0.912, teacherAcc: 0.99, queries: 120000}`. */
  metrics: Record<string, number>;
  /** A ledger snapshot (plain JSON). */
  ledger?: unknown;
  /** Free notes, e.g. deviations from the paper's settings. */
  notes?: string[];
}

/** Which notebook execution produced a record. */
export interface RunExecution {
  /** Shared by all records of one execution: `<start time>-<pid>-<random>` or `BKD_EXECUTION_ID`. */
  id: string;
  /** Notebook file name (`BKD_NOTEBOOK`, set by tools/notebooks.ts), `null` outside the runner. */
  notebook: string | null;
  /** ISO time the execution's first run started. */
  startedAt: string;
}

/** What {@link startRun} needs. */
export interface RunStart {
  /** Experiment name. */
  experiment: string;
  /** Method name. */
  method: string;
  /** Dataset name. */
  dataset: string;
  /** Scale. */
  scale: Scale;
  /** Seed. */
  seed: number;
  /** All hyperparameters. */
  config: Record<string, unknown>;
}

/** Extra fields given at {@link RunHandle.finish}. */
export interface RunExtra {
  /** Ledger snapshot. */
  ledger?: unknown;
  /** Notes to add. */
  notes?: string[];
  /** Config entries only known at the end (merged over the start config). */
  config?: Record<string, unknown>;
}

/** A started run. */
export interface RunHandle {
  /** The run id. */
  readonly id: string;
  /** ISO start time. */
  readonly startedAt: string;
  /** Stop the clock and build the record (does not save; see {@link saveRun}). */
  finish(metrics: Record<string, number>, extra?: RunExtra): RunRecord;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "x";
}

function git(args: string[]): string | undefined {
  try {
    const out = new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined; // no git, or no --allow-run
  }
}

/** The checkout's commit and whether tracked files have uncommitted changes (asks git every call). */
export function gitState(): { commit: string | null; dirty: boolean | null } {
  const commit = git(["rev-parse", "HEAD"]);
  if (!commit) return { commit: null, dirty: null };
  const status = git(["status", "--porcelain", "--untracked-files=no"]);
  return { commit, dirty: status === undefined ? null : status.length > 0 };
}

/** Provenance shared by every record of one process (= one notebook execution in a kernel). */
export interface RunContext {
  /** Commit at the execution's first run. */
  gitCommit: string | null;
  /** Tracked files had uncommitted changes at the execution's first run. */
  gitDirty: boolean | null;
  /** The execution. */
  execution: RunExecution;
  /** Warnings every record of the execution carries. */
  warnings: string[];
}

let context: RunContext | undefined;

/**
 * The commit, dirty flag and execution id of this process, resolved once at first use and then
 * reused, so every record of one notebook execution names the same commit even when commits land
 * while it runs. A dirty work tree is recorded (`gitDirty: true`) with a warning.
 */
export function runContext(): RunContext {
  if (context) return context;
  const g = gitState();
  const now = new Date();
  const env = (k: string) => {
    try {
      return Deno.env.get(k) || undefined;
    } catch {
      return undefined; // no --allow-env
    }
  };
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const warnings: string[] = [];
  if (g.dirty) {
    warnings.push(
      `work tree had uncommitted changes to tracked files at ${g.commit}: the code that produced ` +
        `this record is not exactly that commit; commit first and rerun for a reproducible record`,
    );
  }
  context = {
    gitCommit: g.commit,
    gitDirty: g.dirty,
    execution: {
      id: env("BKD_EXECUTION_ID") ?? `${stamp}-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`,
      notebook: env("BKD_NOTEBOOK") ?? null,
      startedAt: now.toISOString(),
    },
    warnings,
  };
  return context;
}

function currentBackend(): BackendInfo | null {
  try {
    return backendInfo();
  } catch {
    return null;
  }
}

/** Versions recorded with every run. */
export function kitVersions(): RunRecord["versions"] {
  const p = pkg as { name?: string; version?: string };
  return {
    deno: Deno.version.deno,
    tfjs: tfjsVersion,
    kit: `${p.name ?? "boundary-kd"}@${p.version ?? "0.0.0"}`,
  };
}

/** Start the clock on a run; call `.finish(metrics, extra)` at the end. */
export function startRun(start: RunStart): RunHandle {
  const t0 = performance.now();
  const started = new Date();
  const stamp = started.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const id = [stamp, slug(start.method), slug(start.dataset), start.scale, `s${start.seed}`].join("-") +
    `-${crypto.randomUUID().slice(0, 6)}`;
  const ctx = runContext();
  const backend = currentBackend();
  const trainMark = trainEngineMark();
  return {
    id,
    startedAt: started.toISOString(),
    finish(metrics, extra = {}) {
      // A metric that is not a finite number is left out (never NaN in the JSON or the CSV).
      const finite: Record<string, number> = {};
      const dropped: string[] = [];
      for (const [k, v] of Object.entries(metrics)) {
        if (typeof v === "number" && Number.isFinite(v)) finite[k] = v;
        else dropped.push(`${k} = ${v}`);
      }
      const notes = [
        ...(extra.notes ?? []),
        ...(dropped.length ? [`metrics left out (not finite numbers): ${dropped.join(", ")}`] : []),
      ];
      const trainEngines = trainEnginesSince(trainMark);
      return {
        id,
        experiment: start.experiment,
        method: start.method,
        dataset: start.dataset,
        scale: start.scale,
        seed: start.seed,
        config: { ...start.config, ...(extra.config ?? {}) },
        backend: backend ?? currentBackend(),
        ...(trainEngines.length ? { trainEngines } : {}),
        versions: kitVersions(),
        gitCommit: ctx.gitCommit,
        gitDirty: ctx.gitDirty,
        execution: { ...ctx.execution },
        startedAt: started.toISOString(),
        wallTimeSec: (performance.now() - t0) / 1000,
        metrics: finite,
        ...(extra.ledger !== undefined ? { ledger: extra.ledger } : {}),
        ...(notes.length ? { notes } : {}),
        ...(ctx.warnings.length ? { warnings: [...ctx.warnings] } : {}),
      };
    },
  };
}

/** The CSV row of a record: identity columns, then `config.*` and `metrics.*` flattened. */
export function runToRow(r: RunRecord): FlatRow {
  return {
    id: r.id,
    experiment: r.experiment,
    method: r.method,
    dataset: r.dataset,
    scale: r.scale,
    seed: r.seed,
    startedAt: r.startedAt,
    wallTimeSec: Math.round(r.wallTimeSec * 1000) / 1000,
    backend: r.backend?.name ?? null,
    // Only records that trained carry the column (older CSVs stay as they were).
    ...(r.trainEngines ? { trainEngine: [...new Set(r.trainEngines.map((u) => u.engine))].join("+") } : {}),
    gitCommit: r.gitCommit,
    gitDirty: r.gitDirty,
    executionId: r.execution?.id ?? null,
    notebook: r.execution?.notebook ?? null,
    ...flattenObject(r.config, "config"),
    ...flattenObject(r.metrics, "metrics"),
  };
}

/** Where results go unless told otherwise: `<repo>/results/runs`, whatever the working directory. */
export const DEFAULT_RUNS_DIR: string = resultsPath("runs");

/** Where `smoke`-scale results go unless told otherwise (git-ignored: every test run rewrites them). */
export const SMOKE_RUNS_DIR: string = resultsPath("smoke", "runs");

/** Paths of an experiment's JSON folder and CSV. */
export function runPaths(experiment: string, dir = DEFAULT_RUNS_DIR): { folder: string; csv: string } {
  const e = slug(experiment);
  return { folder: `${dir}/${e}`, csv: `${dir}/${e}.csv` };
}

/**
 * Save a record: `<dir>/<experiment>/<id>.json`, then rebuild `<dir>/<experiment>.csv` from every
 * JSON record in the folder; `dir` defaults to `results/runs`, or `results/smoke/runs` for
 * smoke-scale records. The JSON records are the source of truth and the CSV is derived from them:
 * it is rebuilt under an exclusive lock (so the last rebuild of concurrent savers sees every record
 * written before it) and replaced atomically (so a reader never sees half a file). Returns the
 * paths written.
 */
export async function saveRun(
  record: RunRecord,
  opts: { dir?: string } = {},
): Promise<{ json: string; csv: string }> {
  const dir = opts.dir ?? (record.scale === "smoke" ? SMOKE_RUNS_DIR : DEFAULT_RUNS_DIR);
  const { folder, csv } = runPaths(record.experiment, dir);
  const json = `${folder}/${record.id}.json`;
  await writeAtomic(json, JSON.stringify(record, null, 2) + "\n");
  await rebuildRunsCsv(record.experiment, { dir });
  return { json, csv };
}

/**
 * Rewrite `<dir>/<experiment>.csv` from the JSON records in `<dir>/<experiment>/` (one row per
 * record, oldest first, the union of their columns). Serialised across processes by an exclusive
 * lock on the runs folder itself. Records marked superseded
 * are left out unless `includeSuperseded` (the archive in `superseded/`). Returns the rows written.
 */
export async function rebuildRunsCsv(
  experiment: string,
  opts: { dir?: string; includeSuperseded?: boolean } = {},
): Promise<number> {
  const dir = opts.dir ?? DEFAULT_RUNS_DIR;
  const { csv } = runPaths(experiment, dir);
  await Deno.mkdir(dir, { recursive: true });
  return await withFolderLock(csv, async () => {
    const rows = (await loadRuns(experiment, { dir, includeSuperseded: opts.includeSuperseded })).map(
      runToRow,
    );
    const columns = unionColumns(...rows.map((r) => Object.keys(r)));
    await writeAtomic(csv, rows.length === 0 ? "" : toCsv(columns, rows));
    return rows.length;
  });
}

/**
 * Run `f` holding an exclusive `flock` on the folder that holds `path` (the folder itself is locked,
 * so no lock file is left behind anywhere; the lock is released when the descriptor closes).
 */
async function withFolderLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  const slash = path.lastIndexOf("/");
  const dir = await Deno.open(slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".", { read: true });
  try {
    await dir.lock(true);
    return await f();
  } finally {
    dir.close();
  }
}

/**
 * All current saved records of an experiment, oldest first. Records marked superseded are left out
 * unless `includeSuperseded` (superseded records moved to `<dir>/superseded/` are never read here).
 */
export async function loadRuns(
  experiment: string,
  opts: { dir?: string; includeSuperseded?: boolean } = {},
): Promise<RunRecord[]> {
  const { folder } = runPaths(experiment, opts.dir);
  const out: RunRecord[] = [];
  try {
    for await (const e of Deno.readDir(folder)) {
      if (e.isFile && e.name.endsWith(".json")) {
        const file = `${folder}/${e.name}`;
        let r: RunRecord;
        try {
          r = JSON.parse(await Deno.readTextFile(file)) as RunRecord;
        } catch (err) {
          throw new Error(
            `run record ${file} is not valid JSON (${
              (err as Error).message
            }); restore it from git or delete it`,
          );
        }
        if (r.status !== "superseded" || opts.includeSuperseded) out.push(r);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
}

/** The experiment's CSV parsed back (typed numbers), or no rows if it does not exist. */
export async function loadRunsCsv(
  experiment: string,
  opts: { dir?: string } = {},
): Promise<{ columns: string[]; rows: CsvRow[] }> {
  const text = await readTextIfExists(runPaths(experiment, opts.dir).csv);
  return text === undefined ? { columns: [], rows: [] } : parseCsv(text);
}
