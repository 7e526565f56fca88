/**
 * Collect a finished db3 run store into the result notebooks 10/11/12 show: table rows (one per
 * method, mean and spread over the student seeds), distances and soft labels per method, the
 * teacher, the transfer set and one run record per student cell.
 *
 * @module
 */
import type { DatasetName, LabeledData } from "../data/types.ts";
import { loadDataset } from "../data/datasets.ts";
import type { Db3Distances } from "../db3/label_run.ts";
import type { SoftLabels } from "../db3/soft_labels.ts";
import type { ModelSpec } from "../models/registry.ts";
import { tableBRows } from "../results/paper.ts";
import type { RunRecord } from "../results/record.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
import { labelSamples } from "./db3_label_units.ts";
import { bdLabelSpec } from "./db3_plan.ts";
import type { Db3Settings, Db3Spec, Db3TableMethod } from "./db3_spec.ts";
import type { Db3CellMetrics } from "./db3_student.ts";
import { readDb3Reduced, readDb3Teacher } from "./db3_units.ts";
import { describeTeacherSource, type TeacherSource } from "./teacher_source.ts";
import { readStudentCell } from "./student_cell.ts";

/** One table row (students: means over the seeds; the teacher's own numbers). */
export interface Db3Row extends Omit<Db3CellMetrics, "method" | "seed"> {
  method: Db3TableMethod | "teacher";
  /** What the method asks the teacher for. */
  access: "label" | "probs" | "none" | "train";
  /** Final-epoch test accuracy (the reported number; mean over seeds). */
  testAcc: number;
  /** Sample standard deviation of `testAcc` over the seeds (absent with one seed). */
  testAccSpread?: number;
  /** Student seeds the row averages (absent for the teacher). */
  seeds?: number[];
  /** Final-epoch test accuracy per seed, in the order of `seeds`. */
  testAccBySeed?: number[];
  /** Paper number (percent) when table B has one (unverified secondary source), else null. */
  paperAcc: number | null;
}

/** Everything a db3 run produced. */
export interface Db3TableResult {
  dataset: DatasetName;
  scale: Scale;
  /** The first student seed (the labeling seed is `labelSeed`). */
  seed: number;
  seeds: number[];
  labelSeed: number;
  /** Test images the accuracies are measured on. */
  testN: number;
  rows: Db3Row[];
  settings: Db3Settings;
  /** The teacher: kit spec (null for a folder or endpoint), name, test accuracy and source. */
  teacher: { spec: ModelSpec | null; name: string; testAcc: number; source: string };
  /** The transfer set. */
  samples: LabeledData;
  distances: Partial<Record<"sd" | "bd" | "mbd", Db3Distances>>;
  softLabels: Partial<Record<"sd" | "bd" | "mbd", SoftLabels>>;
  /** One run record per student cell (method × seed), in plan order. */
  records: RunRecord[];
  /** The run store the result was collected from. */
  store: string;
}

/** Table-B number (unverified secondary source) for a student row, else null. */
function paperAccOf(dataset: DatasetName, m: Db3TableMethod): number | null {
  const key = m === "kd" ? "kd" : m === "mbd" ? "db3-mbd" : null;
  return tableBRows(dataset).find((r) => r.key === key)?.studentAcc.mean ?? null;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) =>
  v.length < 2 ? undefined : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1));

/** Read a finished db3 run (every unit done) into its result; throws naming what is missing. */
export async function collectDb3(store: RunStore): Promise<Db3TableResult> {
  const spec = store.plan.spec as unknown as Db3Spec;
  const level = levelOf(store.plan, "student");
  const missing = [];
  for (const [i, k] of level.keys.entries()) if (!(await store.isDone(k))) missing.push(level.describe[i]);
  if (missing.length > 0) {
    throw new Error(`db3 run ${store.root} is not finished: ${missing.join("; ")} not done; run it first`);
  }
  const teacher = await readDb3Teacher(store);
  const red = await readDb3Reduced(store);
  const cells: Db3CellMetrics[] = [], records: RunRecord[] = [];
  for (const k of level.keys) {
    const c = await readStudentCell<Db3CellMetrics>(store, k);
    cells.push(c.metrics);
    records.push(c.record);
  }
  const meta = teacher.meta as {
    bestTestAcc?: number;
    testImages?: number;
    trainImages?: number;
    wallTimeSec?: number;
  } | null;
  const rows: Db3Row[] = [{
    method: "teacher",
    access: meta ? "train" : "label",
    testAcc: teacher.testAcc,
    bestTestAcc: meta?.bestTestAcc ?? null,
    bestTestOn: meta?.bestTestAcc === undefined ? 0 : meta.testImages ?? 0,
    queriesPerSample: 0,
    flagged: 0,
    budgetCut: 0,
    trainedOn: meta?.trainImages ?? 0,
    labelSeconds: 0,
    trainSeconds: meta?.wallTimeSec ?? 0,
    paperAcc: null,
  }];
  for (const m of spec.methods) {
    const c = cells.filter((x) => x.method === m);
    const best = c.map((x) => x.bestTestAcc).filter((v): v is number => v !== null);
    const spread = sd(c.map((x) => x.testAcc));
    rows.push({
      method: m,
      access: m === "kd" ? "probs" : m === "ce" || m === "sd" ? "none" : "label",
      testAcc: mean(c.map((x) => x.testAcc)),
      ...(spread !== undefined ? { testAccSpread: spread } : {}),
      seeds: c.map((x) => x.seed),
      testAccBySeed: c.map((x) => x.testAcc),
      bestTestAcc: best.length === c.length ? mean(best) : null,
      bestTestOn: c[0].bestTestOn,
      queriesPerSample: c[0].queriesPerSample,
      flagged: c[0].flagged,
      budgetCut: c[0].budgetCut,
      trainedOn: c[0].trainedOn,
      labelSeconds: c[0].labelSeconds,
      trainSeconds: mean(c.map((x) => x.trainSeconds)),
      paperAcc: paperAccOf(spec.dataset, m),
    });
  }
  const s = spec.settings;
  const test = await loadDataset(spec.dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
  return {
    dataset: spec.dataset,
    scale: spec.scale,
    seed: spec.seeds[0],
    seeds: spec.seeds,
    labelSeed: spec.labelSeed,
    testN: test.y.length,
    rows,
    settings: s,
    teacher: {
      spec: teacher.spec as ModelSpec | null,
      name: teacher.name,
      testAcc: teacher.testAcc,
      source: describeTeacherSource(spec.teacher as TeacherSource),
    },
    samples: (await labelSamples(bdLabelSpec(spec))).set,
    distances: red.distances,
    softLabels: red.softLabels,
    records,
    store: store.root,
  };
}
