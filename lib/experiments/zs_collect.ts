/**
 * Collecting a finished zsdb3kd run store into what notebooks 30–33 show: per seed the pseudo set
 * (as `generatePseudoSamples` returns it), the students, the ledgers and the run records; and
 * notebook 33's sweep. With `save` the run records (one per
 * main student, built by its unit) are written to `results/runs` (the same id each time: a rerun
 * overwrites, never duplicates).
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import type { ModelSpec } from "../models/registry.ts";
import { tableARow } from "../results/paper.ts";
import { type RunRecord, saveRun } from "../results/record.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
import { GENERATE_DEFAULTS, type PseudoSet } from "../zeroshot/generate.ts";
import { keptIterations, readGeneration } from "./zs_generate_units.ts";
import { readReduced } from "./zs_label_units.ts";
import type { ZsSettings } from "./zs_settings.ts";
import { type ZsNotebookOverrides, zsNotebookPlan, type ZsSpec, zsUnits } from "./zs_spec.ts";
import { type CacheOption, runAndCollect } from "./run.ts";
import {
  generationQueriesAt,
  type ZeroShotStudentRow,
  type ZeroShotSweepRow,
  type ZsCell,
} from "./zs_student_units.ts";
import { recordsOfThisExecution } from "./records.ts";

export type { ZeroShotStudentRow, ZeroShotSweepRow };

/** Everything one seed's pipeline produced. */
export interface ZeroShotResult {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
  settings: ZsSettings;
  /** Kit spec (null for a TF.js folder or an endpoint), name, test accuracy and source. */
  teacher: { spec: ModelSpec | null; name: string; testAcc: number; source: string };
  set: PseudoSet;
  /** Main students, by iteration. */
  students: ZeroShotStudentRow[];
  /** Cumulative generation queries after each iteration (index 0 = initialisation only). */
  generationQueriesAt: number[];
  /** Total teacher label queries of the pipeline (generation + every main labeling), dead attempts included. */
  totalQueries: number;
  /** Largest spend of one pseudo sample (its generation + one labeling), and the budget. */
  maxSampleSpend: number;
  perSampleBudget: number;
  /** Paper's student and teacher accuracy (percent), table A. */
  paperAcc: number | null;
  paperTeacherAcc: number | null;
  /** Test images the accuracies are measured on. */
  testImages: number;
  /** Seconds the init and generation units took, summed. */
  generationSeconds: number;
  records: RunRecord[];
}

/** A whole run: every seed and the sweep. */
export interface ZeroShotSeedsResult {
  spec: ZsSpec;
  runs: ZeroShotResult[];
  sweep: ZeroShotSweepRow[];
}

async function readCells(store: RunStore): Promise<ZsCell[]> {
  const level = levelOf(store.plan, "student");
  const out: ZsCell[] = [];
  for (const key of level.keys) {
    if (!(await store.isDone(key))) {
      throw new Error(`run ${store.root}: a student unit is not done; run the experiment first`);
    }
    out.push(JSON.parse(await store.readText(key, "cell.json")) as ZsCell);
  }
  return out;
}

/** One seed's pipeline from the store. */
async function collectSeed(store: RunStore, seed: number, cells: ZsCell[]): Promise<ZeroShotResult> {
  const spec = store.plan.spec as unknown as ZsSpec;
  const g = spec.settings.generate;
  const gen = await readGeneration(store, seed);
  const red = await readReduced(store, seed);
  const stats = gen.queries.map((queries, i) => {
    let sum = 0, found = 0;
    for (const d of gen.distances[i]) if (Number.isFinite(d)) [sum, found] = [sum + d, found + 1];
    return {
      iteration: i + 1,
      meanDistance: found > 0 ? sum / found : 0,
      found,
      moved: gen.moved[i],
      meanStep: gen.moved[i] > 0 ? gen.stepSum[i] / gen.moved[i] : 0,
      queries,
    };
  });
  const set: PseudoSet = {
    imageShape: gen.imageShape,
    numClasses: gen.numClasses,
    y: gen.y,
    ids: gen.ids,
    round: gen.round,
    origin: gen.origin,
    snapshots: gen.snapshots,
    distances: gen.distances,
    searchQueries: gen.searchQueries,
    stats,
    init: gen.init,
    options: {
      ...GENERATE_DEFAULTS,
      ...g,
      snapshotAt: keptIterations(spec).slice(1),
      seed,
      idOffset: 0,
      untargeted: { ...g.untargeted, seed: 0 },
      noise: { ...g.noise },
    },
    ledger: red.generation.ledger,
    seconds: gen.seconds,
    totalSeconds: gen.seconds,
    resumedIterations: 0,
  };
  const mine = cells.filter((c): c is Extract<ZsCell, { kind: "main" }> =>
    c.kind === "main" && c.seed === seed
  );
  const paper = tableARow("zsdb3kd", spec.dataset);
  return {
    dataset: spec.dataset,
    scale: spec.scale,
    seed,
    settings: spec.settings,
    teacher: {
      spec: red.teacher.spec as ModelSpec | null,
      name: red.teacher.name,
      testAcc: red.teacher.testAcc,
      source: red.teacher.source,
    },
    set,
    students: mine.map((c) => c.row).sort((a, b) => a.iteration - b.iteration),
    generationQueriesAt: generationQueriesAt(gen.init.reduce((a, r) => a + r.queries, 0), gen.queries),
    totalQueries: red.generation.paid.totals.spent + red.labels.reduce((a, l) => a + l.paid.totals.spent, 0),
    maxSampleSpend: red.maxSampleSpend,
    perSampleBudget: spec.settings.perSampleBudget,
    paperAcc: paper?.studentAcc[0].mean ?? null,
    paperTeacherAcc: paper?.teacherAcc[0].mean ?? null,
    testImages: red.testImages,
    generationSeconds: gen.seconds,
    records: recordsOfThisExecution(mine.map((c) => c.record), store),
  };
}

/** The result of a finished run (see the module doc). */
export async function collectZeroShot(
  store: RunStore,
  opts: { save?: boolean } = {},
): Promise<ZeroShotSeedsResult> {
  const spec = store.plan.spec as unknown as ZsSpec;
  const cells = await readCells(store);
  const runs: ZeroShotResult[] = [];
  for (const seed of zsUnits(spec).reduce) runs.push(await collectSeed(store, seed, cells));
  if (opts.save) { for (const run of runs) for (const rec of run.records) await saveRun(rec); }
  const sweep = cells.flatMap((c) => (c.kind === "sweep" ? [c.row] : []));
  return { spec, runs, sweep };
}

/** Options of {@link runZeroShotNotebook}: the notebooks' vocabulary. */
export interface ZsRunOptions extends ZsNotebookOverrides {
  /** Where the run store is (see {@link CacheOption}); a temporary one is removed once collected. */
  cache?: CacheOption;
  /** Save the run records (default true). */
  save?: boolean;
}

/** Plan a notebook's run, run every unfinished unit in this process, and collect the result. */
export async function runZeroShotNotebook(
  notebook: "30" | "31" | "32" | "33",
  scale: Scale,
  o: ZsRunOptions = {},
): Promise<ZeroShotSeedsResult> {
  const plan = await zsNotebookPlan(notebook, scale, o);
  return await runAndCollect(
    plan,
    { cache: o.cache },
    (store) => collectZeroShot(store, { save: o.save ?? true }),
  );
}
