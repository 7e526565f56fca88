/**
 * The DB3 ablations on MNIST (notebook 13, LeNet-5 → LeNet-5-half): the DB3 table run (CE, SD, BD and
 * MBD students; its transfer set labelled once, sharing notebook 10's labeling cache when the settings
 * match), then one student per variant of {@link db3AblationVariants} — the settings and variants are
 * data in `db3abl_spec.ts`. Every student is a saved run record (experiment `db3-ablations`), so a
 * notebook can be re-read; the views are in `lib/views/db3_ablations.ts`.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { type LabeledData, loadDataset } from "../data/mod.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { type RunRecord, saveRun, startRun } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import { type Db3TableResult, runDb3Table, trainDb3Student } from "./db3.ts";
import {
  type Db3AblationPart,
  type Db3AblationResult,
  type Db3AblationRow,
  type Db3AblationSettings,
  db3AblationSettings,
  type Db3AblationVariant,
  db3AblationVariants,
  type StressSet,
} from "./db3abl_spec.ts";
import { buildStressSet } from "./db3abl_stress.ts";
import type { DeepPartial } from "./settings.ts";
import type { TeacherSource } from "./teacher_source.ts";

/** Options of {@link runDb3Ablations}. */
export interface Db3AblationOptions {
  scale: Scale;
  seed: number;
  /** Parts to run (default all). */
  parts?: Db3AblationPart[];
  /** Laid over the scale's ablation settings (a key the table lacks is an error). */
  settings?: DeepPartial<Db3AblationSettings>;
  /** Labeling cache root (as {@link runDb3Table}); `false` disables it. */
  cache?: string | false;
  /** Save run records (default true). */
  save?: boolean;
  /** The teacher (as {@link runDb3Table}: a TeacherSource or its string form; default the kit recipe). */
  teacher?: TeacherSource | string;
}

/** BD's mean label queries per (sample, other class). */
export function bdQueriesPerPair(base: Db3TableResult): number {
  const row = base.rows.find((r) => r.method === "bd");
  return row ? row.queriesPerSample / (base.samples.numClasses - 1) : NaN;
}

/** The table's student rows (CE, SD, BD, MBD) as the ablation's `methods` part. */
function methodRows(base: Db3TableResult, s: ReturnType<typeof db3AblationSettings>): Db3AblationRow[] {
  return base.rows.filter((r) => r.method !== "teacher" && r.method !== "kd").map((r) => {
    const src = r.method === "ce" || r.method === "teacher" || r.method === "kd" ? null : r.method;
    return {
      part: "methods",
      variant: r.method,
      source: src,
      budget: r.method === "bd" ? bdQueriesPerPair(base) : null,
      temperature: src ? s.table.student.temperature : null,
      student: s.table.student.model,
      testAcc: r.testAcc,
      bestTestAcc: r.bestTestAcc,
      trainedOn: r.trainedOn,
      maxLogit: src ? base.softLabels[src]?.maxLogit ?? null : null,
      flagged: r.flagged,
      epochs: s.table.student.epochs,
    };
  });
}

/**
 * Run the DB3 ablations (see the module doc): the table run plus one student per variant of `parts`.
 * Each part's baselines are trained at the ablation's epochs too, so a part compares like with like.
 */
export async function runDb3Ablations(opts: Db3AblationOptions): Promise<Db3AblationResult> {
  const { scale, seed } = opts;
  const settings = db3AblationSettings(scale, opts.settings);
  const variants = db3AblationVariants(settings, opts.parts);
  const experiment = "db3-ablations";
  await initBackend();
  const base = await runDb3Table({
    dataset: "mnist",
    scale,
    seed,
    methods: ["ce", "sd", "bd", "mbd"],
    settings: settings.table,
    cacheDir: opts.cache,
    save: opts.save,
    experiment,
    teacher: opts.teacher,
  });
  const test = await loadDataset(
    "mnist",
    "test",
    settings.table.testLimit ? { limit: settings.table.testLimit } : {},
  );
  const k = base.samples.numClasses;
  const rows = methodRows(base, settings);
  const records: RunRecord[] = [...base.records];
  const stress: StressSet | undefined = variants.some((v) => v.stress)
    ? await buildStressSet(base, settings, seed, opts.teacher)
    : undefined;
  const tag = stress?.added.length ? ` (+${stress.added.length} misclassified)` : "";

  /** The transfer set, distances and teacher labels a variant learns from. */
  const inputs = (v: Db3AblationVariant) => {
    if (v.stress) {
      return {
        set: stress!.samples,
        d: v.source && stress!.distances[v.source],
        teacher: stress!.teacherLabels,
      };
    }
    const dist = v.source ? base.distances[v.source]! : undefined;
    const snap = v.snapshot === undefined ? -1 : dist?.snapshots?.queries.indexOf(v.snapshot) ?? -1;
    if (v.snapshot !== undefined && snap < 0) {
      throw new Error(
        `DB3 ablations: variant "${v.name}" needs the MBD snapshot at ${v.snapshot} queries, ` +
          `which the labeling did not keep; add it to the table's mbd.snapshotAt`,
      );
    }
    return {
      set: base.samples as LabeledData,
      d: dist && (snap >= 0 ? dist.snapshots!.distances[snap] : dist.distances),
      teacher: dist?.teacherLabels,
    };
  };

  for (const v of variants) {
    const name = v.stress ? `${v.source!.toUpperCase()}${tag}, ${v.name}` : v.name;
    const st = { ...settings.table.student, epochs: settings.epochs, ...v.student };
    const budget = v.part !== "budget" ? null : v.snapshot ?? bdQueriesPerPair(base);
    const { set, d, teacher } = inputs(v);
    const sl = d
      ? softLabelsFromDistances(d, set.y, k, { ...v.soft, ...(teacher ? { teacherLabels: teacher } : {}) })
      : null;
    const handle = startRun({
      experiment,
      method: `db3-ablation-${v.part}`,
      dataset: "mnist",
      scale,
      seed,
      config: { variant: name, source: v.source, student: st, softLabels: v.soft ?? {}, budget },
    });
    const t = await trainDb3Student(
      set,
      sl?.z ?? null,
      sl?.keep ?? null,
      { ...settings.table, student: st },
      test,
      seed,
      `ablation ${name}`,
      settings.epochTestLimit ?? undefined,
    );
    t.model.dispose();
    const row: Db3AblationRow = {
      part: v.part,
      variant: name,
      source: v.source,
      budget,
      temperature: v.source ? st.temperature : null,
      student: st.model,
      testAcc: t.testAcc,
      bestTestAcc: t.bestTestAcc,
      trainedOn: t.n,
      maxLogit: sl?.maxLogit ?? null,
      flagged: sl?.flagged.length ?? 0,
      epochs: st.epochs,
    };
    rows.push(row);
    const rec = handle.finish({
      testAcc: t.testAcc,
      // Absent values are left out of the record (never NaN in the JSON or the CSV).
      ...(t.bestTestAcc != null ? { bestTestAcc: t.bestTestAcc } : {}),
      trainedOn: t.n,
      ...(sl?.maxLogit != null ? { maxLogit: sl.maxLogit } : {}),
      flagged: row.flagged,
      floor: sl?.floor ?? 0,
      trainSeconds: t.seconds,
    }, { notes: [settings.note] });
    records.push(rec);
    if (opts.save !== false) await saveRun(rec);
  }
  return { settings, base, rows, records, testN: test.y.length, ...(stress ? { stress } : {}) };
}
