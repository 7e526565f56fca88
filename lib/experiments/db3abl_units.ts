/**
 * The DB3 ablations as a runner experiment ("db3-ablations"): a spec (plain JSON: scale, seed, teacher
 * source, the resolved settings, the parts), its plan and its units.
 *
 * Levels: `base` (the DB3 table run the ablation starts from: transfer set, SD/BD/MBD distances, CE,
 * SD, BD and MBD students), `stress` (the remedies' transfer set, labelled through a journaled label
 * oracle, so its queries are in its own ledger even when an attempt dies), `student` (one unit per
 * variant on the base set) and `remedy` (one unit per variant on the stress set). A student unit writes
 * its row, its run record and the student's weights; {@link collectDb3Ablations} builds the result the
 * notebook shows. Units are keyed by the settings they read, so a rerun of the same spec (or a spec
 * that only adds variants) finds its finished units.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { loadDataset } from "../data/mod.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { getWeightsFlat } from "../models/io.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { startRun } from "../results/record.ts";
import type { RunRecord } from "../results/record.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { hashOf } from "../runner/hash.ts";
import { levelOf, type RunPlan } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
// db3.ts is imported when a unit runs, not when this module loads: it runs experiments through the
// registry of families, which imports this module.
import type { Db3TableResult } from "./db3.ts";
import {
  type Db3AblationConfig,
  type Db3AblationPart,
  type Db3AblationResult,
  type Db3AblationRow,
  type Db3AblationVariant,
  db3AblationVariants,
  type StressSet,
} from "./db3abl_spec.ts";
import { buildStressSet } from "./db3abl_stress.ts";
import { packFiles, readPacked } from "./packed.ts";
import { openPlannedTeacher, type SpecTeacher } from "./open_teacher.ts";
import { unitOracle } from "./unit_oracle.ts";
import type { TeacherSource } from "./teacher_source.ts";
import { recordsOfThisExecution } from "./records.ts";

/** Family name (`RunPlan.family`) and experiment name of the run records. */
export const DB3_ABLATIONS = "db3-ablations";

/** The resolved spec of one ablation run (plain JSON; an endpoint's token is never part of it). */
export interface Db3AblationSpec {
  family: typeof DB3_ABLATIONS;
  scale: Scale;
  seed: number;
  teacher: TeacherSource;
  settings: Db3AblationConfig;
  parts: Db3AblationPart[];
  /** Labeling cache root of the table run (null: its default; false: none). */
  cache: string | false | null;
}

/** A student unit's outputs beside the weights. */
interface CellResult {
  row: Db3AblationRow;
  record: RunRecord;
}

/** The variants on the base set and on the stress set. */
function variantsOf(spec: Db3AblationSpec): { student: Db3AblationVariant[]; remedy: Db3AblationVariant[] } {
  const all = db3AblationVariants(spec.settings, spec.parts);
  return { student: all.filter((v) => !v.stress), remedy: all.filter((v) => v.stress) };
}

/** The plan: base, then (when a part needs it) the stress set, then one unit per student. */
export function db3AblationPlan(spec: Db3AblationSpec, teacherFingerprint: string): RunPlan {
  const s = spec.settings;
  const baseKey = hashOf({
    kind: "db3abl-base",
    scale: spec.scale,
    teacher: spec.teacher,
    fingerprint: teacherFingerprint,
    seed: spec.seed,
    table: { ...s.table, note: undefined },
  });
  const stressKey = hashOf({ kind: "db3abl-stress", base: baseKey, stress: s.stress });
  const student = { epochs: s.epochs, epochTestLimit: s.epochTestLimit };
  const v = variantsOf(spec);
  const cell = (on: string) => (x: Db3AblationVariant) =>
    hashOf({ kind: "db3abl-cell", on, student, variant: x });
  const res = (cores: number, timeMinutes: number) => ({ cores, memoryMB: 3000, timeMinutes });
  const levels: RunPlan["levels"] = [{
    name: "base",
    kind: "db3abl-base",
    keys: [baseKey],
    resources: res(2, 240),
    deps: [],
    describe: ["DB3 table run: transfer set, SD/BD/MBD labels, CE/SD/BD/MBD students"],
  }];
  if (v.student.length > 0) {
    levels.push({
      name: "student",
      kind: "db3abl-cell",
      keys: v.student.map(cell(baseKey)),
      resources: res(2, 120),
      deps: ["base"],
      describe: v.student.map((x) => `${x.part}: ${x.name}`),
    });
  }
  if (v.remedy.length > 0) {
    levels.push({
      name: "stress",
      kind: "db3abl-stress",
      keys: [stressKey],
      resources: res(2, 120),
      deps: ["base"],
      describe: [`scan ${s.stress.scan} training images, label ${s.stress.add} misclassified ones`],
    }, {
      name: "remedy",
      kind: "db3abl-cell",
      keys: v.remedy.map(cell(stressKey)),
      resources: res(2, 120),
      deps: ["base", "stress"],
      describe: v.remedy.map((x) => `${x.part}: ${x.source?.toUpperCase()}, ${x.name}`),
    });
  }
  return {
    family: DB3_ABLATIONS,
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels,
  };
}

/** The run's teacher as the units and the planner open it (MNIST images, labels only). */
export function ablationTeacher(spec: Db3AblationSpec): SpecTeacher {
  return { teacher: spec.teacher, dataset: "mnist" };
}

const baseOf = (store: RunStore) =>
  readPacked<Db3TableResult>(store, levelOf(store.plan, "base").keys[0], "base");
const stressOf = (store: RunStore) =>
  readPacked<StressSet & { ledger: LedgerSnapshot }>(
    store,
    levelOf(store.plan, "stress").keys[0],
    "stress",
  );

async function baseUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as Db3AblationSpec;
  const { runDb3Table } = await import("./db3.ts");
  const base = await runDb3Table({
    dataset: "mnist",
    scale: spec.scale,
    seed: spec.seed,
    methods: ["ce", "sd", "bd", "mbd"],
    settings: spec.settings.table,
    cacheDir: spec.cache ?? undefined,
    save: false,
    experiment: DB3_ABLATIONS,
    teacher: spec.teacher,
  });
  return { files: packFiles(base, "base"), done: { rows: base.rows.length } };
}

async function stressUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as Db3AblationSpec;
  const base = await baseOf(ctx.store);
  const teacher = await openPlannedTeacher(ablationTeacher(spec), ctx.plan.teacher, {
    method: "DB3 ablations (stress set)",
  });
  const { oracle } = await unitOracle(ctx, teacher);
  try {
    const st = await buildStressSet(base, spec.settings, spec.seed, oracle);
    const ledger = oracle.ledger.snapshot();
    return { files: packFiles({ ...st, ledger }, "stress"), done: { added: st.added.length } };
  } finally {
    oracle.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

/** BD's mean label queries per (sample, other class). */
export function bdQueriesPerPair(base: Db3TableResult): number {
  const row = base.rows.find((r) => r.method === "bd");
  return row ? row.queriesPerSample / (base.samples.numClasses - 1) : NaN;
}

/** The transfer set, distances and teacher labels a variant learns from. */
function inputsOf(v: Db3AblationVariant, base: Db3TableResult, stress?: StressSet) {
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
      `DB3 ablations: variant "${v.name}" needs the MBD snapshot at ${v.snapshot} queries, which the ` +
        `labeling did not keep; add it to the table's mbd.snapshotAt`,
    );
  }
  return {
    set: base.samples,
    d: dist && (snap >= 0 ? dist.snapshots!.distances[snap] : dist.distances),
    teacher: dist?.teacherLabels,
  };
}

async function cellUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as Db3AblationSpec;
  const s = spec.settings;
  const onStress = ctx.level.name === "remedy";
  const v = variantsOf(spec)[onStress ? "remedy" : "student"][ctx.index];
  const base = await baseOf(ctx.store);
  const stress = onStress ? await stressOf(ctx.store) : undefined;
  await initBackend();
  const test = await loadDataset("mnist", "test", s.table.testLimit ? { limit: s.table.testLimit } : {});
  const tag = stress?.added.length ? ` (+${stress.added.length} misclassified)` : "";
  const name = v.stress ? `${v.source!.toUpperCase()}${tag}, ${v.name}` : v.name;
  const st = { ...s.table.student, epochs: s.epochs, ...v.student };
  const budget = v.part !== "budget" ? null : v.snapshot ?? bdQueriesPerPair(base);
  const { set, d, teacher } = inputsOf(v, base, stress);
  const k = set.numClasses;
  const sl = d
    ? softLabelsFromDistances(d, set.y, k, { ...v.soft, ...(teacher ? { teacherLabels: teacher } : {}) })
    : null;
  const handle = startRun({
    experiment: DB3_ABLATIONS,
    method: `db3-ablation-${v.part}`,
    dataset: "mnist",
    scale: spec.scale,
    seed: spec.seed,
    config: { variant: name, source: v.source, student: st, softLabels: v.soft ?? {}, budget },
  });
  const { trainDb3Student } = await import("./db3.ts");
  const t = await trainDb3Student(
    set,
    sl?.z ?? null,
    sl?.keep ?? null,
    { ...s.table, student: st },
    test,
    spec.seed,
    `ablation ${name}`,
    s.epochTestLimit ?? undefined,
  );
  const weights = getWeightsFlat(t.model);
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
  const record = handle.finish({
    testAcc: t.testAcc,
    // Absent values are left out of the record (never NaN in the JSON or the CSV).
    ...(t.bestTestAcc != null ? { bestTestAcc: t.bestTestAcc } : {}),
    trainedOn: t.n,
    ...(sl?.maxLogit != null ? { maxLogit: sl.maxLogit } : {}),
    flagged: row.flagged,
    floor: sl?.floor ?? 0,
    trainSeconds: t.seconds,
  }, { notes: [s.note] });
  const model = {
    name: st.model,
    inputShape: set.shape.slice(1),
    numClasses: k,
    shapes: weights.map((w) => w.length),
  };
  return {
    files: {
      ...packFiles({ row, record } satisfies CellResult, "cell"),
      ...packFiles({ model, weights }, "student"),
    },
    done: { testAcc: t.testAcc },
  };
}

/** The table's student rows (CE, SD, BD, MBD) as the ablation's `methods` part. */
function methodRows(base: Db3TableResult, s: Db3AblationConfig): Db3AblationRow[] {
  const out: Db3AblationRow[] = [];
  for (const r of base.rows) {
    if (r.method === "teacher" || r.method === "kd") continue;
    const src = r.method === "ce" ? null : r.method;
    out.push({
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
    });
  }
  return out;
}

/**
 * Build the result the notebook shows from a finished run store (rows in notebook order; records as
 * this execution's).
 */
export async function collectDb3Ablations(store: RunStore): Promise<Db3AblationResult> {
  const spec = store.plan.spec as unknown as Db3AblationSpec;
  const base = await baseOf(store);
  const hasStress = store.plan.levels.some((l) => l.name === "stress");
  const stress = hasStress ? await stressOf(store) : undefined;
  const rows = methodRows(base, spec.settings);
  const records = [...base.records];
  const cells: CellResult[] = [];
  for (const level of store.plan.levels.filter((l) => l.kind === "db3abl-cell")) {
    for (const key of level.keys) cells.push(await readPacked<CellResult>(store, key, "cell"));
  }
  for (const c of cells) {
    rows.push(c.row);
    records.push(c.record);
  }
  const out = { settings: spec.settings, base, rows, records: recordsOfThisExecution(records, store) };
  if (!stress) return { ...out, testN: base.testN };
  const { ledger: _ledger, ...st } = stress;
  return { ...out, testN: base.testN, stress: st };
}

/** The family as the runner sees it. */
export const DB3_ABLATIONS_FAMILY: Family = {
  name: DB3_ABLATIONS,
  runUnit(kind, ctx) {
    if (kind === "db3abl-base") return baseUnit(ctx);
    if (kind === "db3abl-stress") return stressUnit(ctx);
    if (kind === "db3abl-cell") return cellUnit(ctx);
    throw new Error(
      `${DB3_ABLATIONS} has no unit kind "${kind}" (kinds: db3abl-base, db3abl-stress, db3abl-cell)`,
    );
  },
};
