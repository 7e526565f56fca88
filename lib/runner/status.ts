/**
 * The state of a run, read from its store alone (plus the Slurm queue when asked): per level the
 * units done, running (a live claim), queued (Slurm), failed (tried before, neither done nor running)
 * and not started; queries spent by finished units and, from their journals, by units still running
 * or killed.
 *
 * @module
 */
import { JOURNAL_PREFIX, journalImages } from "./journal.ts";
import type { QueuedTask } from "./executors/slurm.ts";
import type { RunStore } from "./store.ts";
import { pathExists } from "../util/files.ts";

/** One level's counts. */
export interface LevelStatus {
  level: string;
  units: number;
  done: number;
  running: number;
  queued: number;
  failed: number;
  notStarted: number;
  /** Indices of failed units. */
  failedIndices: number[];
}

/** A run's state. */
export interface RunStatus {
  levels: LevelStatus[];
  units: number;
  done: number;
  /** Teacher queries of finished units (their final ledgers, plus killed attempts they replayed). */
  queriesDone: number;
  /** Queries paid by unfinished units' attempts so far (journals). */
  queriesInFlight: number;
}

async function journalsOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(JOURNAL_PREFIX)) out.push(`${dir}/${e.name}`);
    }
  } catch {
    // no work folder: never started
  }
  return out;
}

/** Read the run's state; `queue` adds Slurm's view (elements pending or running). */
export async function runStatus(store: RunStore, queue: QueuedTask[] = []): Promise<RunStatus> {
  const levels: LevelStatus[] = [];
  let queriesDone = 0, queriesInFlight = 0, units = 0, doneAll = 0;
  for (const level of store.plan.levels) {
    const s: LevelStatus = {
      level: level.name,
      units: level.keys.length,
      done: 0,
      running: 0,
      queued: 0,
      failed: 0,
      notStarted: 0,
      failedIndices: [],
    };
    const inQueue = new Map(queue.filter((t) => t.level === level.name).map((t) => [t.index, t.state]));
    for (let i = 0; i < level.keys.length; i++) {
      const key = level.keys[i];
      if (await store.isDone(key)) {
        s.done++;
        const done = JSON.parse(await store.readText(key, "done.json"));
        queriesDone += (done.queries ?? 0) + (done.lostQueries ?? 0);
        continue;
      }
      const journals = await journalsOf(`${store.root}/work/${key}`);
      for (const j of journals) queriesInFlight += await journalImages(j);
      if (await store.claimHolder(key)) s.running++;
      else if (inQueue.get(i) === "RUNNING") s.running++;
      else if (inQueue.has(i)) s.queued++;
      else if (journals.length > 0 || await pathExists(`${store.root}/logs/${level.name}-${i}.log`)) {
        s.failed++;
        s.failedIndices.push(i);
      } else s.notStarted++;
    }
    units += s.units;
    doneAll += s.done;
    levels.push(s);
  }
  return { levels, units, done: doneAll, queriesDone, queriesInFlight };
}
