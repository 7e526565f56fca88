/**
 * Run records of a run whose units may have finished in an earlier execution (a rerun of the same
 * spec finds them in the run store and does not redo them). The records a notebook execution saves
 * are its own — its id, time, execution and checkout — so the report finds them in the execution's
 * window; a record whose numbers come from a unit finished before is issued again for this execution,
 * same metrics and ledger, with a note naming the unit's store and the record it was first saved as.
 *
 * @module
 */
import { type RunRecord, startRun } from "../results/record.ts";
import type { RunStore } from "../runner/store.ts";

/**
 * `records` (read from `store`) as this execution's: those started before the store was opened in this
 * process (`store.openedAt`) re-issued, fresh ones as they are. Every family's collect passes its
 * records through here before the notebook shows or saves them.
 */
export function recordsOfThisExecution(
  records: RunRecord[],
  store: Pick<RunStore, "root" | "openedAt">,
): RunRecord[] {
  const since = store.openedAt.getTime();
  return records.map((r) => (Date.parse(r.startedAt) >= since ? r : reissue(r, store.root)));
}

function reissue(r: RunRecord, store: string): RunRecord {
  const { experiment, method, dataset, scale, seed, config } = r;
  const note = `numbers reused from a finished unit of run store ${store} (first recorded as ${r.id}, ` +
    `${r.startedAt}, ${r.wallTimeSec.toFixed(1)} s)`;
  const fresh = startRun({ experiment, method, dataset, scale, seed, config }).finish(r.metrics, {
    ...(r.ledger !== undefined ? { ledger: r.ledger } : {}),
    notes: [...(r.notes ?? []), note],
  });
  return { ...fresh, ...(r.trainEngines ? { trainEngines: r.trainEngines } : {}) };
}
