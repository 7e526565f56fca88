/**
 * A DB3 student: trained on the transfer set with CE (label-only baseline) or the reference loss
 * CE + Σ_batch KL(softmax(z/τ) ‖ softmax(S/τ)) on soft labels z; and the `db3-student` unit, which
 * trains one (method, seed) cell and writes its weights, metrics and run record.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import type { LabeledData } from "../data/types.ts";
import { loadDataset } from "../data/datasets.ts";
import { subset } from "../data/subsets.ts";
import type { ModelSpec } from "../models/registry.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { startRun } from "../results/record.ts";
import type { UnitContext, UnitOutput } from "../runner/family.ts";
import { evaluate, train, type TrainConfig } from "../train/trainer.ts";
import { labelSamples } from "./db3_label_units.ts";
import { bdLabelSpec } from "./db3_plan.ts";
import type { Db3Settings, Db3Spec, Db3TableMethod } from "./db3_spec.ts";
import type { Db3Reduced, Db3TeacherInfo } from "./db3_units.ts";
import { recordableSource, type TeacherSource } from "./teacher_source.ts";
import { studentCellFiles } from "./student_cell.ts";

/** What a trained student scored. */
export interface Db3StudentScore {
  model: tfl.LayersModel;
  testAcc: number;
  bestTestAcc: number | null;
  bestTestOn: number;
  seconds: number;
  n: number;
}

/**
 * Train one student on `samples` (rows `keep`, default all); `targets` null = CE only.
 * `epochTestLimit` (default `settings.student.epochTestLimit`, else all) test images are scored after
 * every epoch for the best-epoch number (`bestTestOn` says how many; 0: none); the final accuracy is
 * always scored on the whole test set.
 */
export async function trainDb3Student(
  samples: LabeledData,
  targets: Float32Array | null,
  keep: Int32Array | null,
  settings: Pick<Db3Settings, "student">,
  test: LabeledData,
  seed: number,
  label: string,
  epochTestLimit?: number,
): Promise<Db3StudentScore> {
  const st = settings.student;
  const dim = samples.shape.slice(1).reduce((a, b) => a * b, 1);
  const k = samples.numClasses;
  let x = samples.x, y = samples.y, z = targets;
  if (keep && keep.length !== samples.y.length) {
    x = new Float32Array(keep.length * dim);
    y = new Int32Array(keep.length);
    z = targets ? new Float32Array(keep.length * k) : null;
    keep.forEach((i, j) => {
      x.set(samples.x.subarray(i * dim, (i + 1) * dim), j * dim);
      y[j] = samples.y[i];
      if (z && targets) z.set(targets.subarray(i * k, (i + 1) * k), j * k);
    });
  }
  const spec: ModelSpec = { name: st.model, inputShape: samples.shape.slice(1), numClasses: k };
  const cfg: TrainConfig = {
    epochs: st.epochs,
    batchSize: Math.min(st.batchSize, y.length),
    seed,
    loss: z ? { kind: "kd-db3", temperature: st.temperature } : { kind: "ce" },
    optimizer: { kind: "adam", lr: st.lr },
    schedule: { kind: "constant" },
    workers: "auto",
    label,
  };
  const nTest = test.y.length;
  const perEpoch = Math.min(nTest, epochTestLimit ?? st.epochTestLimit ?? nTest);
  const epochTest = perEpoch === 0
    ? undefined
    : perEpoch === nTest
    ? test
    : subset(test, Int32Array.from({ length: perEpoch }, (_, i) => i));
  const r = await train(
    spec,
    { x, shape: [y.length, ...spec.inputShape], y, ...(z ? { targets: z } : {}) },
    { ...cfg, testOf: nTest },
    epochTest,
  );
  return {
    model: r.model,
    testAcc: epochTest === test ? r.finalTestAcc ?? NaN : await evaluate(r.model, test),
    bestTestAcc: epochTest ? r.bestTestAcc ?? null : null,
    bestTestOn: perEpoch,
    seconds: r.wallTimeSec,
    n: y.length,
  };
}

/** What a student cell saves as `metrics.json` (a table row without the paper number). */
export interface Db3CellMetrics {
  method: Db3TableMethod;
  seed: number;
  /** Final-epoch test accuracy (the reported number). */
  testAcc: number;
  /** Best test accuracy over epochs (test-set selection, reference's habit; labelled). */
  bestTestAcc: number | null;
  /** Test images the best-epoch number is scored on (the first ones; 0: none). */
  bestTestOn: number;
  /** Teacher queries per transfer-set image. */
  queriesPerSample: number;
  /** Transfer-set images the teacher misclassifies (flagged), and how many were trained on. */
  flagged: number;
  /** Transfer-set images whose distances a query budget cut short (best-so-far, not searched out). */
  budgetCut: number;
  trainedOn: number;
  /** Labeling seconds summed over the run's units (BD's shards for BD; BD + MBD shards for MBD). */
  labelSeconds: number;
  trainSeconds: number;
}

/** Ledger images over phases whose name starts with `prefix`. */
function phaseImages(l: LedgerSnapshot | null, prefix: string): number {
  let s = 0;
  for (const [name, e] of Object.entries(l?.byPhase ?? {})) {
    if (name.startsWith(prefix)) s += e.images.label + e.images.probs;
  }
  return s;
}

/** The `db3-student` unit: one (method, seed) cell of the plan's `student` level. */
export async function studentUnit(
  ctx: UnitContext,
  red: Db3Reduced,
  teacher: Db3TeacherInfo,
): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as Db3Spec;
  const cells = spec.methods.flatMap((method) => spec.seeds.map((seed) => ({ method, seed })));
  const { method: m, seed } = cells[ctx.index];
  const s = spec.settings;
  await initBackend();
  const { set: samples } = await labelSamples(bdLabelSpec(spec));
  const test = await loadDataset(spec.dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
  const n = samples.y.length;
  let targets: Float32Array | null = null,
    keep: Int32Array | null = null,
    ledger: LedgerSnapshot | null = null;
  let queries = 0, flagged = 0, labelSeconds = 0, budgetCut: Int32Array = new Int32Array(0);
  if (m === "kd") {
    if (!red.kd) {
      throw new Error("db3: the kd row needs the kd level, which this plan lacks (rebuild the plan)");
    }
    targets = red.kd.targets;
    ledger = red.kd.ledger;
    queries = ledger.totals.images.probs / n;
    labelSeconds = red.kd.seconds;
  } else if (m !== "ce") {
    const d = red.distances[m]!, sl = red.softLabels[m]!;
    targets = sl.z;
    keep = sl.keep;
    flagged = sl.flagged.length;
    budgetCut = sl.budgetCut;
    ledger = d.ledger;
    labelSeconds = d.seconds;
    queries = m === "sd"
      ? 0
      : m === "bd"
      ? phaseImages(d.ledger, "bd.") / n
      : (d.ledger?.totals.images.label ?? 0) / n;
  }
  const handle = startRun({
    experiment: spec.experiment,
    method: `db3-${m}`,
    dataset: spec.dataset,
    scale: spec.scale,
    seed,
    config: {
      teacher: teacher.name,
      teacherSource: recordableSource(spec.teacher as TeacherSource),
      teacherTestAcc: teacher.testAcc,
      samples: n,
      labelSeed: spec.labelSeed,
      settings: s,
      softLabels: spec.softLabels,
      oracleEngine: teacher.engine,
      method: m,
      ...(m === "sd" || m === "bd" || m === "mbd" ? { budgetCutIds: Array.from(budgetCut) } : {}),
    },
  });
  const st = await trainDb3Student(samples, targets, keep, s, test, seed, `student ${m} s${seed}`);
  const metrics: Db3CellMetrics = {
    method: m,
    seed,
    testAcc: st.testAcc,
    bestTestAcc: st.bestTestAcc,
    bestTestOn: st.bestTestOn,
    queriesPerSample: queries,
    flagged,
    budgetCut: budgetCut.length,
    trainedOn: st.n,
    labelSeconds,
    trainSeconds: st.seconds,
  };
  const { method: _m, seed: _s, bestTestAcc, bestTestOn: _b, ...rest } = metrics;
  const record = handle.finish({
    ...rest,
    // No best epoch when no test images were scored per epoch: left out, never NaN.
    ...(bestTestAcc != null ? { bestTestAcc } : {}),
    teacherTestAcc: teacher.testAcc,
  }, {
    ledger: ledger ?? undefined,
    notes: budgetCut.length > 0
      ? [
        s.note,
        `${budgetCut.length} transfer image(s) have budget-cut distances (best-so-far): indices ${
          Array.from(budgetCut).join(", ")
        }`,
      ]
      : [s.note],
  });
  const studentSpec = {
    name: s.student.model,
    inputShape: samples.shape.slice(1),
    numClasses: samples.numClasses,
  };
  const files = studentCellFiles({ model: st.model, spec: studentSpec, metrics, record });
  st.model.dispose();
  return { files, done: { method: m, seed, testAcc: st.testAcc } };
}
