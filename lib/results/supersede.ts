/**
 * Retire run records that a later run replaced, without deleting them: each record's JSON moves
 * from `<dir>/<experiment>/` to `<dir>/superseded/<experiment>/` with `status: "superseded"` and the
 * reason, both CSVs (`<dir>/<experiment>.csv`, `<dir>/superseded/<experiment>.csv`) are rebuilt from their records, and
 * one line saying what and why is added to `<dir>/superseded/README.md`. Readers of `<dir>` (tables,
 * reports, {@link loadRuns}) then see only current records.
 *
 * @module
 */
import { readTextIfExists, writeAtomic } from "../util/files.ts";
import { DEFAULT_RUNS_DIR, rebuildRunsCsv, runPaths, type RunRecord } from "./record.ts";

/** Options of {@link supersedeRuns}. */
export interface SupersedeOptions {
  /** Runs folder (default `results/runs`). */
  dir?: string;
  /** Why the records no longer count, e.g. "200 samples per class; notebook 30 now uses 50". */
  reason: string;
  /** What replaced them, e.g. a notebook execution id or a commit (optional). */
  by?: string;
  /** Date written in the README line (default today, UTC). */
  date?: string;
}

/** What {@link supersedeRuns} moved. */
export interface SupersedeResult {
  /** Ids moved. */
  moved: string[];
  /** Where their JSON files went. */
  folder: string;
  /** The README line added. */
  readmeLine: string;
}

const README_HEAD = "# Superseded run records\n\n" +
  "Records moved here were replaced by later runs (settings changed, or the notebook no longer produces\n" +
  "them). They are kept as evidence; tables and reports read only `results/runs/<experiment>/`.\n\n";

/** Move the records `ids` of `experiment` to the superseded folder (see the module doc). */
export async function supersedeRuns(
  experiment: string,
  ids: readonly string[],
  opts: SupersedeOptions,
): Promise<SupersedeResult> {
  if (!opts.reason.trim()) throw new Error("supersedeRuns: give a reason (it is written into each record)");
  if (ids.length === 0) throw new Error("supersedeRuns: no record ids given");
  const dir = opts.dir ?? DEFAULT_RUNS_DIR;
  const from = runPaths(experiment, dir);
  const to = runPaths(experiment, `${dir}/superseded`);
  const note = opts.by ? `${opts.reason} (replaced by ${opts.by})` : opts.reason;
  // Read every record first, so a missing id changes nothing.
  const records: RunRecord[] = [];
  for (const id of ids) {
    const text = await readTextIfExists(`${from.folder}/${id}.json`);
    if (text === undefined) {
      throw new Error(
        `supersedeRuns: no record ${id}.json in ${from.folder}; list the folder to find the ids`,
      );
    }
    records.push(JSON.parse(text) as RunRecord);
  }
  for (const r of records) {
    const marked: RunRecord = { ...r, status: "superseded", supersededBy: note };
    await writeAtomic(`${to.folder}/${r.id}.json`, JSON.stringify(marked, null, 2) + "\n");
    await Deno.remove(`${from.folder}/${r.id}.json`);
  }
  // Both CSVs are derived from their JSON records: rebuild them rather than edit rows.
  await rebuildRunsCsv(experiment, { dir });
  await rebuildRunsCsv(experiment, { dir: `${dir}/superseded`, includeSuperseded: true });
  const date = opts.date ?? new Date().toISOString().slice(0, 10);
  const readmeLine = `- ${date} · \`${experiment}\` · ${ids.length} record(s) · ${note}`;
  const readme = `${dir}/superseded/README.md`;
  const prevReadme = (await readTextIfExists(readme)) ?? README_HEAD;
  await writeAtomic(readme, prevReadme + (prevReadme.endsWith("\n") ? "" : "\n") + readmeLine + "\n");
  return { moved: [...ids], folder: to.folder, readmeLine };
}
