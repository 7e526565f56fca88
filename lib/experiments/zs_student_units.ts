/**
 * The student units of a zsdb3kd run and the family object. A main cell (seed, iteration) trains the
 * KD student on that iteration's pseudo samples and soft labels and builds its run record (saved by
 * `collectZeroShot` with `save`); a sweep cell (seed, iteration, m) takes the first m pseudo samples of
 * every class, relabels them with their own pools (a journaled oracle, budgets as in the run) and
 * trains on them. Both save the student's weights (`weights.bin`, `model.json`) and `cell.json`.
 *
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import type { LabeledData } from "../data/types.ts";
import type { ModelSpec } from "../models/registry.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { tableARow } from "../results/paper.ts";
import { type RunRecord, startRun } from "../results/record.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { labelPseudoSamples, type PseudoBatch, trainZeroShotStudent } from "../zeroshot/pipeline.ts";
import { generateUnit, initUnit, readGeneration } from "./zs_generate_units.ts";
import { batchAt, budgetsAfter, labelUnit, readReduced, reduceUnit } from "./zs_label_units.ts";
import { ZS_TEACHER, type ZsSpec, zsUnits } from "./zs_spec.ts";
import { zsSettingsNote } from "./zs_settings.ts";
import { unitOracle } from "./unit_oracle.ts";
import { openPlannedTeacher } from "./open_teacher.ts";
import { modelFiles } from "./student_cell.ts";

/** One main student, as the notebooks' tables show it. */
export interface ZeroShotStudentRow {
  /** "zsdb3kd" (optimised pseudo samples) or "noise" (iteration 0). */
  variant: "zsdb3kd" | "noise";
  iteration: number;
  /** Final-epoch test accuracy in [0, 1]. */
  testAcc: number;
  trainedOn: number;
  /** Teacher label queries: generation up to this iteration + labeling. */
  queries: number;
  generationQueries: number;
  labelQueries: number;
  /** Samples flagged by the soft labels (d ≤ 1e-4 or misclassified). */
  flagged: number;
  /** Pseudo samples whose distances the per-sample budget cut short (best-so-far). */
  budgetCut: number;
  trainSeconds: number;
}

/** One sweep student: the first `perClass` samples per class, relabelled. */
export interface ZeroShotSweepRow {
  seed: number;
  iteration: number;
  perClass: number;
  testAcc: number;
  labelQueries: number;
  ledger: LedgerSnapshot;
}

/** What a student unit saves in `cell.json`. */
export type ZsCell = { kind: "main"; seed: number; row: ZeroShotStudentRow; record: RunRecord } | {
  kind: "sweep";
  row: ZeroShotSweepRow;
};

/** The first `m` samples of every class of a batch. */
export function perClassSubset(b: PseudoBatch, m: number): PseudoBatch {
  const dim = b.imageShape.reduce((a, c) => a * c, 1);
  const count = new Array(b.numClasses).fill(0);
  const idx: number[] = [];
  for (let i = 0; i < b.y.length; i++) if (count[b.y[i]]++ < m) idx.push(i);
  const x = new Float32Array(idx.length * dim);
  idx.forEach((i, j) => x.set(b.x.subarray(i * dim, (i + 1) * dim), j * dim));
  return {
    x,
    y: Int32Array.from(idx, (i) => b.y[i]),
    ids: Int32Array.from(idx, (i) => b.ids[i]),
    imageShape: b.imageShape,
    numClasses: b.numClasses,
  };
}

/** Generation queries spent up to iteration k (index 0 = the initialisation alone). */
export function generationQueriesAt(initQueries: number, perIteration: number[]): number[] {
  const out = [initQueries];
  for (const q of perIteration) out.push(out.at(-1)! + q);
  return out;
}

async function testSplit(spec: ZsSpec): Promise<LabeledData> {
  const limit = spec.settings.testLimit;
  return await loadDataset(spec.dataset, "test", limit ? { limit } : {});
}

async function studentUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as ZsSpec;
  const cell = zsUnits(spec).student[ctx.index];
  const { seed, iteration: it } = cell;
  const s = spec.settings;
  const gen = await readGeneration(ctx.store, seed, [it]);
  const red = await readReduced(ctx.store, seed);
  const test = await testSplit(spec);
  const batch = batchAt(gen, it);
  const modelSpec: ModelSpec = {
    name: s.student.model,
    inputShape: gen.imageShape,
    numClasses: gen.numClasses,
  };
  if (cell.perClass !== null) {
    const b = perClassSubset(batch, cell.perClass);
    const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, ZS_TEACHER);
    const u = await unitOracle(
      ctx,
      teacher,
      s.perSampleBudget,
      budgetsAfter(gen, b.ids, it, s.perSampleBudget),
    );
    let lab;
    try {
      lab = await labelPseudoSamples(u.oracle, b, { ...s.label, seed, progress: false });
    } finally {
      u.close();
      teacher.close();
      teacher.model?.dispose();
    }
    const st = await trainZeroShotStudent(b, lab.soft.z, s.student, test, seed, {
      keep: lab.soft.keep,
      label: `student ${cell.perClass}/class, iteration ${it} (seed ${seed})`,
    });
    const files = modelFiles(st.model, modelSpec);
    st.model.dispose();
    const ledger = u.oracle.ledger.snapshot();
    const out: ZsCell = {
      kind: "sweep",
      row: {
        seed,
        iteration: it,
        perClass: cell.perClass,
        testAcc: st.testAcc,
        labelQueries: ledger.totals.spent,
        ledger,
      },
    };
    return { files: { ...files, "cell.json": JSON.stringify(out) + "\n" }, done: { testAcc: st.testAcc } };
  }
  const label = red.labels.find((l) => l.iteration === it)!;
  const genAt = generationQueriesAt(gen.init.reduce((a, r) => a + r.queries, 0), gen.queries);
  const generationQueries = genAt[it];
  const labelQueries = label.ledger.totals.spent;
  const paper = tableARow("zsdb3kd", spec.dataset);
  const handle = startRun({
    experiment: spec.experiment,
    method: it === 0 ? "zsdb3kd-noise" : "zsdb3kd",
    dataset: spec.dataset,
    scale: spec.scale,
    seed,
    config: {
      teacher: red.teacher.name,
      teacherSource: red.teacher.source,
      teacherTestAcc: red.teacher.testAcc,
      iteration: it,
      settings: s,
      oracleEngine: red.teacher.engine,
      // Pseudo-sample indices whose distances the per-sample budget cut short.
      budgetCutIds: label.budgetCut,
    },
  });
  const st = await trainZeroShotStudent(batch, red.z.get(it)!, s.student, test, seed, {
    keep: Int32Array.from(label.keep),
    label: `student on iteration ${it} (seed ${seed})`,
  });
  const files = modelFiles(st.model, modelSpec);
  st.model.dispose();
  const row: ZeroShotStudentRow = {
    variant: it === 0 ? "noise" : "zsdb3kd",
    iteration: it,
    testAcc: st.testAcc,
    trainedOn: st.trainedOn,
    queries: generationQueries + labelQueries,
    generationQueries,
    labelQueries,
    flagged: label.flagged,
    budgetCut: label.budgetCut.length,
    trainSeconds: st.seconds,
  };
  const record = handle.finish({
    testAcc: st.testAcc,
    teacherTestAcc: red.teacher.testAcc,
    queries: row.queries,
    generationQueries,
    labelQueries,
    pseudoSamples: gen.y.length,
    trainedOn: st.trainedOn,
    generationSeconds: gen.seconds,
    trainSeconds: st.seconds,
    budgetCut: row.budgetCut,
    ...(paper ? { paperStudentAcc: paper.studentAcc[0].mean } : {}),
  }, {
    ledger: { generation: red.generation.ledger, labeling: label.ledger },
    notes: [zsSettingsNote(spec.scale, spec.dataset)],
  });
  const out: ZsCell = { kind: "main", seed, row, record };
  return { files: { ...files, "cell.json": JSON.stringify(out) + "\n" }, done: { testAcc: st.testAcc } };
}

/** The family as the runner sees it. */
export const ZSDB3KD_FAMILY: Family = {
  name: "zsdb3kd",
  runUnit(kind, ctx) {
    if (kind === "zs-init") return initUnit(ctx);
    if (kind === "zs-generate") return generateUnit(ctx);
    if (kind === "zs-label") return labelUnit(ctx);
    if (kind === "zs-reduce") return reduceUnit(ctx);
    if (kind === "zs-student") return studentUnit(ctx);
    throw new Error(
      `zsdb3kd has no unit kind "${kind}" (kinds: zs-init, zs-generate, zs-label, zs-reduce, zs-student)`,
    );
  },
};
