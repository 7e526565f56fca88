/**
 * The in-process executor: every unit of every level, in order, in this process (the notebooks'
 * default). Done units are skipped; a unit held by another live process is an error.
 *
 * @module
 */
import type { Family } from "../family.ts";
import type { RunStore } from "../store.ts";
import { runUnit, type UnitStatus } from "../unit.ts";

/** One unit's outcome. */
export interface UnitReport {
  level: string;
  index: number;
  status: UnitStatus | "failed";
  seconds: number;
  /** Log file or error text when failed. */
  detail?: string;
}

/** Run the whole plan here; `onUnit` hears about each unit as it ends. */
export async function runInProcess(
  store: RunStore,
  family: Family,
  opts: { onUnit?: (r: UnitReport) => void } = {},
): Promise<UnitReport[]> {
  const out: UnitReport[] = [];
  for (const level of store.plan.levels) {
    for (let i = 0; i < level.keys.length; i++) {
      const r = await runUnit(store, family, level.name, i);
      if (r.status === "held-elsewhere") {
        throw new Error(
          `unit ${level.name}[${i}] is being run by another process (claim in ${store.root}/claims); ` +
            `wait for it, or use \`bkd status\` to see who holds it`,
        );
      }
      const rep: UnitReport = { level: level.name, index: i, status: r.status, seconds: r.seconds };
      out.push(rep);
      opts.onUnit?.(rep);
    }
  }
  return out;
}
