/**
 * Running one unit: the single entry point every executor ends in (in this process, or in a process
 * started by a worker pool, Slurm or Kubernetes with its level and index).
 *
 * A done unit is never redone; a unit held by a live process is left alone; otherwise the unit is
 * claimed, run, committed atomically and released. Its dependencies must be done first.
 *
 * @module
 */
import { hostname } from "node:os";
import type { Family, UnitContext } from "./family.ts";
import { levelOf } from "./plan.ts";
import type { RunStore } from "./store.ts";

/** What happened to a unit. */
export type UnitStatus = "ran" | "already-done" | "held-elsewhere";

/** Raised when a unit cannot start; says what to do. */
export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

/** Run unit `index` of `levelName` (see the module doc). */
export async function runUnit(
  store: RunStore,
  family: Family,
  levelName: string,
  index: number,
): Promise<{ status: UnitStatus; key: string; seconds: number }> {
  const t0 = performance.now();
  const plan = store.plan;
  if (plan.family !== family.name) {
    throw new UnitError(`run store ${store.root} is a "${plan.family}" run, not "${family.name}"`);
  }
  const level = levelOf(plan, levelName);
  if (!Number.isInteger(index) || index < 0 || index >= level.keys.length) {
    throw new UnitError(
      `unit index ${index} is out of range: level "${levelName}" has units 0..${level.keys.length - 1}`,
    );
  }
  const key = level.keys[index];
  const secs = () => (performance.now() - t0) / 1000;
  if (await store.isDone(key)) return { status: "already-done", key, seconds: secs() };
  for (const d of level.deps) {
    const dep = levelOf(plan, d);
    const missing: number[] = [];
    for (let i = 0; i < dep.keys.length; i++) if (!(await store.isDone(dep.keys[i]))) missing.push(i);
    if (missing.length > 0) {
      throw new UnitError(
        `unit ${levelName}[${index}] needs level "${d}" done, but ${missing.length} of its units are not ` +
          `(indices ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""}): run them first`,
      );
    }
  }
  const claim = await store.claim(key);
  if (!claim) return { status: "held-elsewhere", key, seconds: secs() };
  try {
    if (await store.isDone(key)) return { status: "already-done", key, seconds: secs() };
    const ctx: UnitContext = {
      store,
      plan,
      level,
      index,
      key,
      workDir: await store.workDir(key),
      attempt: `${hostname()}-${Deno.pid}-${Date.now()}`,
    };
    const out = await family.runUnit(level.kind, ctx);
    const committed = await store.commit(key, out.files, {
      ...out.done,
      level: levelName,
      index,
      key,
      attempt: ctx.attempt,
      finishedAt: new Date().toISOString(),
    });
    return { status: committed ? "ran" : "already-done", key, seconds: secs() };
  } finally {
    await claim.release();
  }
}
