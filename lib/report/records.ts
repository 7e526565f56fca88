/**
 * Which run records an executed notebook produced: the records of the notebook's experiments
 * (see `catalog.ts`) whose start time falls inside the notebook's execution window
 * (`metadata.bkd_execution.started` + `wall_seconds`, a few seconds of slack either side). Older
 * runs of the same experiment stay out.
 *
 * @module
 */
import { loadRuns, runPaths, type RunRecord } from "../results/record.ts";
import type { ExecutedNotebook } from "./notebook.ts";

/** A run record and where its files are. */
export interface LocatedRecord {
  /** The record. */
  record: RunRecord;
  /** Path of its JSON file. */
  json: string;
  /** Path of its experiment's CSV. */
  csv: string;
}

/** Slack around the execution window, in seconds (clock rounding of `started`). */
export const WINDOW_SLACK_SEC = 5;

/** The execution window of a notebook in ms since the epoch, or `undefined` if it was not recorded. */
export function executionWindow(nb: ExecutedNotebook): { from: number; to: number } | undefined {
  const start = nb.execution.started ? Date.parse(nb.execution.started) : NaN;
  const wall = nb.execution.wall_seconds;
  if (!Number.isFinite(start) || typeof wall !== "number") return undefined;
  return { from: start - WINDOW_SLACK_SEC * 1000, to: start + (wall + WINDOW_SLACK_SEC) * 1000 };
}

/** The records of `experiments` under `runsDir` that the notebook's execution wrote, oldest first. */
export async function recordsOfNotebook(
  nb: ExecutedNotebook,
  experiments: readonly string[],
  runsDir: string,
): Promise<LocatedRecord[]> {
  const win = executionWindow(nb);
  if (!win) return [];
  const out: LocatedRecord[] = [];
  for (const exp of [...experiments].sort()) {
    const { folder, csv } = runPaths(exp, runsDir);
    for (const record of await loadRuns(exp, { dir: runsDir })) {
      const t = Date.parse(record.startedAt);
      if (t >= win.from && t <= win.to && record.scale === nb.scale) {
        out.push({ record, json: `${folder}/${record.id}.json`, csv });
      }
    }
  }
  return out.sort((a, b) =>
    a.record.startedAt.localeCompare(b.record.startedAt) || a.record.id.localeCompare(b.record.id)
  );
}
