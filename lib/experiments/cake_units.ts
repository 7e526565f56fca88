/**
 * The units of a "cake" run:
 * - teacher: obtain the teacher (kit recipe, folder, spec trained and cached, or the two-moons MLP
 *   trained on its real points), measure its accuracy, keep its weights in the store;
 * - synth: batches [a, b) of one synthesis through a fresh `logits+grad` oracle on that teacher (its
 *   own ledger, journaled ahead of every call, so queries a killed attempt paid are known to the next
 *   one as `lost`); the generator baseline is one unit;
 * - student: assemble the set from its shards, train the cell's student, evaluate it on real data and
 *   write its weights, metrics and run record.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { createProgress } from "../show/progress.ts";
import { type LabeledData, loadDataset, twoMoons } from "../data/mod.ts";
import type { ModelSpec } from "../models/registry.ts";
import { modelFingerprint } from "../models/fingerprint.ts";
import { logitsGradOracle } from "../oracle/oracle.ts";
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import { JOURNAL_PREFIX, otherJournals } from "../runner/journal.ts";
import { mergeLedgers } from "../runner/ledgers.ts";
import { startRun } from "../results/record.ts";
import { getTeacher } from "../train/teachers.ts";
import { evaluate } from "../train/trainer.ts";
import { resolveCakeOptions } from "../cake/options.ts";
import { naiveOptions } from "../cake/naive.ts";
import { synthesizeBatch } from "../cake/synthesize.ts";
import { synthesizeWithGenerator } from "../cake/generator.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { classField } from "./fields.ts";
import type { GeneratorKnobs, SynthKnobs } from "./cake_settings.ts";
import { allShards, type CakeSpec, type CakeTeacherJob } from "./cake_spec.ts";
import { getSpecTeacher } from "../train/spec_teachers.ts";
import { train } from "../train/trainer.ts";
import { type StudentOutcome, trainStudent } from "../cake/student.ts";
import type { TwoMoonsSettings } from "./cake_settings.ts";
import {
  CAKE_TEACHER,
  cakeFolderTeacher,
  loadStoredTeacher,
  readStoredSet,
  type ShardInfo,
  type TeacherInfo,
  teacherInfo,
} from "./cake_sets.ts";
import { packWeights, studentCellFiles, unpackModel } from "./student_cell.ts";
import { openPlannedTeacher } from "./open_teacher.ts";
import { bytesOf } from "./packed.ts";

const specOf = (ctx: UnitContext) => ctx.plan.spec as unknown as CakeSpec;
const json = (v: unknown) => JSON.stringify(v) + "\n";

/** The real data a teacher's students are scored on: its test split, or its two-moons points. */
export async function evalDataOf(t: CakeTeacherJob, testLimit: number | null): Promise<LabeledData> {
  const s = t.source;
  if (s.kind === "moons") return twoMoons({ n: s.realPoints, noise: s.noise, seed: s.seed });
  return await loadDataset(s.dataset, "test", testLimit ? { limit: testLimit } : {});
}

async function teacherUnit(ctx: UnitContext): Promise<UnitOutput> {
  await initBackend();
  const job = specOf(ctx).teachers[ctx.index];
  const s = job.source;
  const t0 = performance.now();
  const files: Record<string, string | Uint8Array> = {};
  let model: tfl.LayersModel, spec: ModelSpec | null, accuracy: number, cached = false;
  if (s.kind === "moons") {
    spec = { name: "mlp", inputShape: [2], numClasses: 2, options: { ...s.mlp } };
    const t = await trainMoonsTeacher(spec, await evalDataOf(job, null), s.train, s.seed);
    ({ model, accuracy } = t);
    files["field.f32"] = bytesOf(Float32Array.from(classField(model, job.grid).values));
  } else {
    if (s.kind === "recipe") {
      ({ model, spec } = await getTeacher({
        dataset: s.dataset,
        model: s.model,
        scale: s.scale,
        seed: s.seed,
      }));
      cached = true;
    } else if (s.kind === "trained") {
      const t = await getSpecTeacher({ ...s });
      ({ model, spec, cached } = t);
    } else {
      const o = await openPlannedTeacher(cakeFolderTeacher(s), s.fingerprint, CAKE_TEACHER);
      model = o.model!;
      spec = o.spec;
      cached = true;
    }
    accuracy = await evaluate(model, await evalDataOf(job, job.testLimit));
  }
  let fingerprint = modelFingerprint(model);
  if (spec) {
    files["weights.bin"] = packWeights(model);
    // The fingerprint of the model as later units rebuild it: ViT layers keep their build seed in
    // their config, so a network built with another seed fingerprints differently.
    const stored = unpackModel(spec, files["weights.bin"]);
    fingerprint = modelFingerprint(stored);
    stored.dispose();
  }
  const info: TeacherInfo = {
    name: job.name,
    fingerprint,
    accuracy,
    spec,
    cached,
    seconds: (performance.now() - t0) / 1000,
  };
  model.dispose();
  files["teacher.json"] = json(info);
  return { files, done: { accuracy, fingerprint } };
}

async function synthUnit(ctx: UnitContext): Promise<UnitOutput> {
  await initBackend();
  const t0 = performance.now();
  const spec = specOf(ctx);
  const { synth, range } = allShards(spec)[ctx.index];
  const job = spec.syntheses[synth];
  const model = await loadStoredTeacher(ctx.store, job.teacher);
  // Write-ahead journal of this attempt's teacher calls; attempts that died left theirs behind.
  const journal = `${ctx.workDir}/${JOURNAL_PREFIX}${ctx.attempt}.jsonl`;
  const lost = lostQueries(await otherJournals(ctx.workDir, journal));
  const ledger = new Ledger();
  ledger.attachJournal(journal);
  const oracle = logitsGradOracle(model, { ledger });
  const inputShape = oracle.inputShape.slice();
  const k = oracle.numClasses;
  const dim = inputShape.reduce((a, b) => a * b, 1);
  let x: Float32Array, logits: Float32Array, target: Int32Array;
  const batches: ShardInfo["batches"] = [];
  try {
    if (job.method === "generator") {
      const set = await synthesizeWithGenerator(oracle, {
        ...(job.knobs as GeneratorKnobs),
        seed: job.seed,
        progress: false,
      });
      set.generator.dispose();
      ({ x, targets: logits, targetClass: target } = set);
    } else {
      const input = { dataset: job.dataset, ...(job.knobs as SynthKnobs), seed: job.seed, progress: false };
      const o = resolveCakeOptions(job.method === "naive" ? naiveOptions(input) : input, job.dataset);
      const n = (range[1] - range[0]) * o.batchSize;
      x = new Float32Array(n * dim);
      logits = new Float32Array(n * k);
      target = new Int32Array(n);
      const label = `${job.method} s${job.seed}, batches ${range[0]}–${range[1] - 1}`;
      const bar = createProgress({ label, total: (range[1] - range[0]) * o.steps, unit: "step" });
      for (let m = range[0]; m < range[1]; m++) {
        const before = (m - range[0]) * o.steps;
        const r = await synthesizeBatch(oracle, o, m, inputShape, k, (step, loss) => {
          bar.update(before + step, `batch ${m}  L=${loss.toPrecision(4)}`);
        });
        const off = (m - range[0]) * o.batchSize;
        x.set(r.x, off * dim);
        logits.set(r.logits, off * k);
        target.set(r.targetClass, off);
        batches.push({ m, eta: r.eta, n: r.n, lastLoss: r.lastLoss, seconds: r.seconds, passes: r.passes });
      }
      bar.done();
    }
  } finally {
    ledger.detachJournal();
    model.dispose();
  }
  const info: ShardInfo = {
    n: target.length,
    dim,
    numClasses: k,
    inputShape,
    batches,
    ledger: ledger.snapshot(),
    lost,
    seconds: (performance.now() - t0) / 1000,
  };
  return {
    files: {
      "x.f32": bytesOf(x),
      "logits.f32": bytesOf(logits),
      "target.i32": bytesOf(target),
      "shard.json": json(info),
    },
    done: {
      samples: info.n,
      forward: info.ledger.totals.images.forward,
      backward: info.ledger.totals.images.backward,
    },
  };
}

/** What the teacher answered to attempts that died, replayed from their journals. */
function lostQueries(paths: string[]): LedgerSnapshot {
  const snaps = paths.map((p) => {
    const l = new Ledger();
    l.attachJournal(p);
    l.detachJournal();
    return l.snapshot();
  });
  return mergeLedgers(snaps);
}

/** Train the two-moons teacher (hard-label CE on the real points, SGD + one-cycle, one replica). */
export async function trainMoonsTeacher(
  spec: ModelSpec,
  real: LabeledData,
  t: TwoMoonsSettings["teacher"],
  seed: number,
): Promise<{ model: tfl.LayersModel; accuracy: number }> {
  const r = await train(spec, { x: real.x, shape: real.shape, y: real.y }, {
    epochs: t.epochs,
    batchSize: t.batchSize,
    seed,
    loss: { kind: "ce" },
    optimizer: { kind: "sgd", lr: t.lr, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { kind: "onecycle" },
    workers: 1,
    label: `two-moons teacher s${seed}`,
  }, real);
  return { model: r.model, accuracy: r.finalTestAcc! };
}

/** A student unit's `metrics.json`: the student's outcome without its model. */
export type CellMetrics = Omit<StudentOutcome, "model">;

async function studentUnit(ctx: UnitContext): Promise<UnitOutput> {
  await initBackend();
  const spec = specOf(ctx);
  const cell = spec.cells[ctx.index];
  const job = spec.syntheses[cell.synth];
  const teacher = await teacherInfo(ctx.store, job.teacher);
  const set = await readStoredSet(ctx.store, cell.synth);
  const evalData = await evalDataOf(spec.teachers[job.teacher], cell.testLimit);
  const mspec: ModelSpec = {
    ...cell.student.spec,
    inputShape: set.shape.slice(1),
    numClasses: set.numClasses,
  };
  const run = startRun({
    experiment: cell.record.experiment,
    method: cell.record.method,
    dataset: cell.record.dataset,
    scale: spec.scale,
    seed: cell.seed,
    config: {
      settings: spec.settings,
      variant: cell.variant,
      teacher: teacher.name,
      student: mspec,
      hardTargets: cell.hard,
    },
  });
  const st = await trainStudent(mspec, set, cell.recipe, evalData, {
    seed: cell.seed + 100,
    hard: cell.hard,
    label: `student ${cell.student.name} (${cell.variant}) s${cell.seed}`,
  });
  const files: Record<string, string | Uint8Array> = {};
  if (cell.grid) files["field.f32"] = bytesOf(Float32Array.from(classField(st.model, cell.grid).values));
  const radius: Record<string, number> = set.shape.length === 2 && set.shape[1] === 2
    ? { meanRadius: meanRadius(set.x) }
    : {};
  const record = run.finish({
    studentAcc: st.accuracy,
    studentBestAcc: st.bestAccuracy,
    teacherAcc: teacher.accuracy,
    valAgreement: st.valAgreement,
    syntheticSamples: set.shape[0],
    hitRate: set.stats.hitRate,
    synthSeconds: set.stats.seconds,
    sampleStepsPerSec: set.stats.sampleStepsPerSec,
    teacherForward: set.passes.forward,
    teacherBackward: set.passes.backward,
    teacherPaidForward: set.paid.totals.images.forward,
    teacherPaidBackward: set.paid.totals.images.backward,
    studentTrainSec: st.trainSeconds,
    ...radius,
  }, { ledger: set.ledger, notes: cell.record.notes });
  const metrics: CellMetrics = {
    accuracy: st.accuracy,
    bestAccuracy: st.bestAccuracy,
    valAgreement: st.valAgreement,
    trainSeconds: st.trainSeconds,
    imagesPerSec: st.imagesPerSec,
  };
  Object.assign(files, studentCellFiles({ model: st.model, spec: mspec, metrics, record }));
  st.model.dispose();
  return { files, done: { accuracy: st.accuracy } };
}

/** Mean distance of 2-D points from the origin (how far two-moons samples flew). */
export function meanRadius(x: Float32Array): number {
  const n = x.length / 2;
  let r = 0;
  for (let i = 0; i < n; i++) r += Math.hypot(x[2 * i], x[2 * i + 1]);
  return r / n;
}

/** The family as the runner sees it. */
export const CAKE_FAMILY: Family = {
  name: "cake",
  runUnit(kind, ctx) {
    if (kind === "cake-teacher") return teacherUnit(ctx);
    if (kind === "cake-synth") return synthUnit(ctx);
    if (kind === "cake-student") return studentUnit(ctx);
    throw new Error(`cake has no unit kind "${kind}" (kinds: cake-teacher, cake-synth, cake-student)`);
  },
};
