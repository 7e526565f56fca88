/**
 * Collecting a finished CAKE run: every student cell with its metrics, run record, synthetic set
 * (assembled from its shards, ledgers merged exactly) and teacher; `save` writes the run records (one
 * per student cell, with the synthesis ledger) to `results/…/runs/<experiment>/`. The notebooks'
 * result objects are built from these in `lib/views/cake_results.ts`.
 *
 * @module
 */
import { type RunRecord, saveRun } from "../results/record.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { CakeCell, CakeSpec } from "./cake_spec.ts";
import { readStoredSet, type StoredSet, type TeacherInfo, teacherInfo } from "./cake_sets.ts";
import type { CellMetrics } from "./cake_units.ts";
import { readStudentCell } from "./student_cell.ts";
import { f32Of } from "./packed.ts";

/** One student cell as stored: its spec entry, metrics, record, set and teacher. */
export interface CollectedCell {
  cell: CakeCell;
  metrics: CellMetrics;
  record: RunRecord;
  set: StoredSet;
  teacher: TeacherInfo;
  teacherIndex: number;
  /** Two-moons: the student's class-0 field values on the cell's grid. */
  field?: Float32Array;
}

/** Options of the readers. */
export interface CollectOptions {
  /** Save the run records (default false). */
  save?: boolean;
  /** Where records go (default results/runs, or results/smoke/runs at smoke). */
  resultsDir?: string;
}

function requireDone(store: RunStore, done: boolean) {
  if (!done) throw new Error(`run ${store.root} is not finished: run it first (runExperiment), then read it`);
}

/** Every cell of a finished run, in spec order (records saved when `opts.save`). */
export async function collectCells(store: RunStore, opts: CollectOptions = {}): Promise<CollectedCell[]> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const keys = levelOf(store.plan, "student").keys;
  const sets = new Map<number, StoredSet>();
  const out: CollectedCell[] = [];
  for (let i = 0; i < spec.cells.length; i++) {
    const cell = spec.cells[i];
    requireDone(store, await store.isDone(keys[i]));
    if (!sets.has(cell.synth)) sets.set(cell.synth, await readStoredSet(store, cell.synth));
    const teacherIndex = spec.syntheses[cell.synth].teacher;
    const { metrics, record } = await readStudentCell<CellMetrics>(store, keys[i]);
    if (opts.save) await saveRun(record, { dir: opts.resultsDir });
    out.push({
      cell,
      metrics,
      record,
      set: sets.get(cell.synth)!,
      teacher: await teacherInfo(store, teacherIndex),
      teacherIndex,
      ...(cell.grid ? { field: f32Of(await store.readBytes(keys[i], "field.f32")) } : {}),
    });
  }
  return out;
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}
