/**
 * The quickstart experiment (`notebooks/00_quickstart.ipynb`): the kit end to end in minutes.
 *
 * 1. Two-moons: an MLP teacher 2→20→20→20→2 on real points, then two students of the same
 *    architecture distilled from a small set of uniform probe points in [−2, 2]²: one sees only the
 *    teacher's hard labels (`label` access), the other its logits (`probs`-level soft targets, τ = 1).
 *    Fewer probes than points makes the difference visible: soft targets carry how far each probe is
 *    from the boundary, hard labels only which side it is on.
 * 2. MNIST: the DB3 LeNet-5 teacher (a teacher source; default the kit recipe of the scale, trained or
 *    loaded from the cache), its test accuracy, and the backend's training and inference throughput.
 *
 * Settings are a table (`paper` the base); the run is a plan of two units (`quickstart_units.ts`) run
 * by the runner, so a rerun of the same settings reads its results from the run store. The views are
 * in `lib/views/quickstart.ts`.
 *
 * @module
 */
import { saveRun } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import { resolveTeacher } from "./open_teacher.ts";
import {
  collectQuickstart,
  type MnistResult,
  type MoonsResult,
  quickstartPlan,
  type QuickstartSpec,
  quickstartTeacher,
} from "./quickstart_units.ts";
import { type LocalExecutor, runExperiment } from "./run.ts";
import { type DeepPartial, resolveSettings, settingsNote, type SettingsTable } from "./settings.ts";
import { parseTeacherSource, type TeacherSource } from "./teacher_source.ts";
import type { RunRecord } from "../results/record.ts";

export { MOONS_MLP } from "./quickstart_units.ts";

/** The quickstart's settings; recorded with the run. */
export interface QuickstartSettings {
  /** Real two-moons points for the teacher (and as many again for testing). */
  moonsPoints: number;
  /** Teacher epochs on the real points. */
  teacherEpochs: number;
  /** Uniform probe points in [−2, 2]² the students learn from. */
  probes: number;
  /** Student epochs on the probes. */
  studentEpochs: number;
  /** Field resolution (points per axis). */
  fieldSteps: number;
  /** Images for the inference throughput measurement. */
  inferImages: number;
}

/** The settings table: `paper` is the base (Figure 1's grid), the others shorten training. */
export const QUICKSTART_SETTINGS: SettingsTable<QuickstartSettings> = {
  paper: {
    base: {
      moonsPoints: 1000,
      teacherEpochs: 300,
      probes: 24,
      studentEpochs: 800,
      fieldSteps: 200,
      inferImages: 10000,
    },
    note: "two-moons as CAKE's Figure 1 (noise 0.3, MLP 2→20→20→20→2, fields over [−2, 2]² on a 200×200 " +
      "grid), 1,000 points, teacher 300 and students 800 epochs on 24 probes; throughput on 10,000 test images",
  },
  laptop: {
    override: { teacherEpochs: 150, studentEpochs: 400, fieldSteps: 120 },
    note: "half the epochs (teacher 150, students 400) and a 120×120 field grid: both boundaries are " +
      "settled well before, and the notebook runs in a minute",
  },
  smoke: {
    override: { moonsPoints: 400, teacherEpochs: 30, studentEpochs: 60, fieldSteps: 60, inferImages: 2048 },
    note: "pipeline check: 400 points, teacher 30 and students 60 epochs, a 60×60 grid, 2,048 images for " +
      "the throughput",
  },
};

/** What {@link runQuickstart} returns. */
export interface QuickstartResult {
  settings: QuickstartSettings;
  /** What differs from the paper settings and why. */
  note: string;
  moons: MoonsResult;
  mnist: MnistResult;
  /** The run records (saved under `results/runs/quickstart/` unless `save: false`). */
  records: RunRecord[];
}

/** Options of {@link runQuickstart}. */
export interface QuickstartOptions {
  scale: Scale;
  seed?: number;
  /** Laid over the scale's settings. */
  settings?: DeepPartial<QuickstartSettings>;
  /** The MNIST teacher (default the kit recipe db3-lenet5 of the scale and seed). */
  teacher?: TeacherSource | string;
  /** Save the run records (default true). */
  save?: boolean;
  /** Executor (default in-process) and run store (default one per plan under `data/runs/`). */
  executor?: LocalExecutor;
  store?: string;
}

/** The resolved spec of a run. */
export function quickstartSpec(opts: QuickstartOptions): QuickstartSpec {
  const seed = opts.seed ?? 1;
  const teacher = opts.teacher ?? { kind: "recipe", dataset: "mnist", model: "db3-lenet5" };
  return {
    family: "quickstart",
    scale: opts.scale,
    seed,
    settings: resolveSettings<QuickstartSettings>(QUICKSTART_SETTINGS, opts.scale, opts.settings),
    teacher: parseTeacherSource(teacher, { dataset: "mnist", scale: opts.scale, seed }),
  };
}

/** Run the quickstart at `scale` (see the module doc). */
export async function runQuickstart(opts: QuickstartOptions): Promise<QuickstartResult> {
  const spec = quickstartSpec(opts);
  const { fingerprint } = await resolveTeacher(quickstartTeacher(spec), { method: "quickstart" });
  const store = await runExperiment(quickstartPlan(spec, fingerprint), {
    executor: opts.executor,
    store: opts.store,
  });
  const r = await collectQuickstart(store);
  if (opts.save !== false) { for (const rec of r.records) await saveRun(rec); }
  return { settings: spec.settings, note: settingsNote(QUICKSTART_SETTINGS, opts.scale), ...r };
}
