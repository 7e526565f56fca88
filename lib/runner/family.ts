/**
 * What an experiment family gives the runner: how a unit of each kind runs. Families register
 * themselves in `families.ts`; the runner finds one by the plan's `family` field.
 *
 * @module
 */
import type { LevelPlan, RunPlan } from "./plan.ts";
import type { RunStore } from "./store.ts";

/** Everything a running unit may use. */
export interface UnitContext {
  store: RunStore;
  plan: RunPlan;
  level: LevelPlan;
  index: number;
  key: string;
  /** Scratch folder kept across attempts (journals, caches). */
  workDir: string;
  /** Unique name of this attempt (host, pid, time). */
  attempt: string;
}

/** A unit's outputs: files written atomically, then `done` as `done.json`. */
export interface UnitOutput {
  files: Record<string, string | Uint8Array>;
  done: Record<string, unknown>;
}

/** An experiment family as the runner sees it. */
export interface Family {
  /** Family name as in `RunPlan.family`. */
  name: string;
  /** Run one unit of the given kind. */
  runUnit(kind: string, ctx: UnitContext): Promise<UnitOutput>;
}
