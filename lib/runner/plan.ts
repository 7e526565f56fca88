/**
 * A run plan: an experiment turned into an ordered list of levels (the levels of a DAG). Every level
 * holds `units` units of one kind, each with a content key; a level may start once the levels it
 * depends on are done. Executors only see plans, never experiment internals.
 *
 * @module
 */

/** What one unit of a kind needs from a scheduler. */
export interface UnitResources {
  /** CPU cores (Slurm `-c`, Kubernetes cpu request). */
  cores: number;
  /** Memory in MB (Slurm `--mem`, Kubernetes memory request). */
  memoryMB: number;
  /** Wall-time limit in minutes (Slurm `--time`, Kubernetes `activeDeadlineSeconds`). */
  timeMinutes: number;
}

/** One level of the DAG: `keys.length` units of one kind. */
export interface LevelPlan {
  /** Level name, unique in the plan (e.g. "label", "reduce"); used on the command line. */
  name: string;
  /** Unit kind (decides resources and the function that runs a unit). */
  kind: string;
  /** Unit key per index: SHA-256 of the spec fields the unit depends on, the teacher and its inputs. */
  keys: string[];
  /** What each unit of this level needs. */
  resources: UnitResources;
  /** Names of earlier levels this one reads. */
  deps: string[];
  /** One line per unit saying what it does (e.g. "samples 0–9"). */
  describe: string[];
  /**
   * Estimated cost of one unit of this level, from the kit's measured rates (for `bkd plan`): teacher
   * queries (images) and CPU-seconds. Absent: not estimated.
   */
  estimate?: UnitEstimate;
}

/** What one unit is expected to cost. */
export interface UnitEstimate {
  /** Teacher queries (images sent to the teacher). */
  queries: number;
  /** CPU-seconds on the reference machine (2 cores, AVX2). */
  cpuSeconds: number;
  /** Where the rate comes from (a bench file, a measured run). */
  source: string;
}

/** A whole run: the spec it came from and its levels in dependency order. */
export interface RunPlan {
  /** Experiment family, e.g. "db3-label". */
  family: string;
  /** The resolved spec (plain JSON). */
  spec: Record<string, unknown>;
  /** Teacher fingerprint the keys were derived from. */
  teacher: string;
  /** Levels in an order where every dependency comes first. */
  levels: LevelPlan[];
}

/**
 * What decides a run's outputs: family, spec, teacher and every level's name, kind, keys and
 * dependencies. Resources, cost estimates and descriptions are left out: re-measuring a rate or
 * raising a time limit must not orphan a run store or move a notebook's default store.
 */
export function planIdentity(plan: RunPlan): unknown {
  return {
    family: plan.family,
    spec: plan.spec,
    teacher: plan.teacher,
    levels: plan.levels.map((l) => ({ name: l.name, kind: l.kind, keys: l.keys, deps: l.deps })),
  };
}

/** The level called `name`, or an error listing the plan's levels. */
export function levelOf(plan: RunPlan, name: string): LevelPlan {
  const l = plan.levels.find((v) => v.name === name);
  if (!l) {
    throw new Error(
      `level "${name}" is not in this run; its levels are: ${plan.levels.map((v) => v.name).join(", ")}`,
    );
  }
  return l;
}

/** Check that levels are named uniquely and depend only on earlier levels; throws naming the fault. */
export function validatePlan(plan: RunPlan): void {
  const seen = new Set<string>();
  for (const l of plan.levels) {
    if (seen.has(l.name)) throw new Error(`plan: level "${l.name}" appears twice; give levels unique names`);
    for (const d of l.deps) {
      if (!seen.has(d)) {
        throw new Error(`plan: level "${l.name}" depends on "${d}", which does not come before it`);
      }
    }
    if (l.describe.length !== l.keys.length) {
      throw new Error(
        `plan: level "${l.name}" has ${l.keys.length} keys but ${l.describe.length} descriptions`,
      );
    }
    seen.add(l.name);
  }
}
