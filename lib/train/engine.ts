/**
 * Which engine the trainer steps on (issue 12), and the per-process log of that choice that run records
 * read.
 *
 * - `native`: the native training engine (forward, loss and backward in C++ on all cores, the kit's
 *   optimizer on flat arrays in JS): `lib/native/lenet_grads.ts` for DB3 LeNet-5s, `lib/native/seq_train.ts`
 *   for every other feed-forward network (conv, dense, batch norm, ReLU, max-pool, dropout, padding,
 *   flatten, residual add, global average pooling: the DB3 AlexNets, CAKE LeNets, CNN, MLP and ResNets).
 *   ViTs (attention layers) are not covered and train on wasm.
 * - `wasm`: the tfjs path (`lib/parallel/replica.ts`, one replica or a worker pool) on the backend that
 *   `initBackend()` chose (wasm unless told otherwise; the record's `backend` names it).
 * - `auto` (default): native when the model is supported and the engine builds, else wasm, with the
 *   reason recorded.
 *
 * The choice comes from `TrainConfig.engine`, else `BKD_TRAIN_ENGINE`, else `auto`.
 *
 * @module
 */
import { envVar } from "../native/build.ts";
import { InputError } from "../util/checks.ts";

/** Engines a training run can step on. */
export const TRAIN_ENGINES = ["native", "wasm"] as const;
/** An engine a training run steps on. */
export type TrainEngine = typeof TRAIN_ENGINES[number];
/** What a caller may ask for: an engine, or `auto`. */
export type TrainEngineChoice = TrainEngine | "auto";

/**
 * Parse an engine choice (case and surrounding blanks ignored): undefined when unset or empty, an
 * {@link InputError} naming `source` and the valid values when unknown.
 */
export function parseTrainEngine(v: string | undefined, source = "engine"): TrainEngineChoice | undefined {
  const s = v?.trim().toLowerCase();
  if (s === undefined || s === "") return undefined;
  if (s === "auto" || (TRAIN_ENGINES as readonly string[]).includes(s)) return s as TrainEngineChoice;
  throw new InputError(
    `${source} ${JSON.stringify(v)} is not a training engine; use one of native, wasm, auto ` +
      `(or leave it unset for "auto")`,
  );
}

/** The choice in force: `option` if given, else `BKD_TRAIN_ENGINE`, else `auto`. */
export function trainEngineChoice(option?: TrainEngineChoice): TrainEngineChoice {
  if (option !== undefined) return parseTrainEngine(option, "TrainConfig.engine") ?? "auto";
  return parseTrainEngine(envVar("BKD_TRAIN_ENGINE"), "BKD_TRAIN_ENGINE") ?? "auto";
}

/** One training run's engine, as recorded. */
export interface TrainEngineUse {
  /** The run's label (progress label, e.g. "db3 student mbd"). */
  label: string;
  /** Model name, e.g. "db3-lenet5-half". */
  model: string;
  /** What was asked for. */
  requested: TrainEngineChoice;
  /** What the run stepped on. */
  engine: TrainEngine;
  /** Why `auto` fell back to wasm (absent when it did not). */
  nativeUnavailable?: string;
  /** Native threads, or tfjs replicas (workers). */
  threads: number;
}

const uses: TrainEngineUse[] = [];

/** Append a run's engine to the log (called by `train`). */
export function logTrainEngine(use: TrainEngineUse): void {
  uses.push({ ...use });
}

/** How many runs the log holds: a mark to pass to {@link trainEnginesSince}. */
export function trainEngineMark(): number {
  return uses.length;
}

/** The runs logged since `mark` (copies). */
export function trainEnginesSince(mark: number): TrainEngineUse[] {
  return uses.slice(mark).map((u) => ({ ...u }));
}
