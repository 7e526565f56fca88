/**
 * The labeling and reduce units of a zsdb3kd run. A `zs-label` unit gives BD distances to the pseudo
 * samples of one id range at one iteration, with that iteration's whole pseudo pool as the direction
 * streams (as `labelPseudoSamples` over the whole set does) and each sample's budget what its
 * generation left. The `zs-reduce` unit of a seed merges the ledgers exactly (checking that no sample
 * crossed its budget, generation and labeling together), turns distances into soft labels and measures
 * the teacher on the test split.
 *
 * @module
 */
import { loadDataset } from "../data/datasets.ts";
import type { LabeledData } from "../data/types.ts";
import { evaluate } from "../learn/evaluate.ts";
import { labelDistances } from "../db3/label_run.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { makeClassStreams } from "../db3/streams.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { UnitContext, UnitOutput } from "../runner/family.ts";
import { mergeLedgers } from "../runner/ledgers.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { PseudoBatch } from "../zeroshot/pipeline.ts";
import { describeTeacherSource, type TeacherSource } from "./teacher_source.ts";
import { type Generation, readGeneration } from "./zs_generate_units.ts";
import { bytesOf, f32Of } from "./packed.ts";
import { ZS_TEACHER, type ZsSpec, zsUnits } from "./zs_spec.ts";
import { unitOracle } from "./unit_oracle.ts";
import { openPlannedTeacher, type OpenTeacher } from "./open_teacher.ts";

/** The pseudo set of a generation at one kept iteration, as a labelable batch. */
export function batchAt(gen: Generation, iteration: number): PseudoBatch {
  const s = gen.snapshots.find((q) => q.iteration === iteration);
  if (!s) {
    throw new Error(`no snapshot at iteration ${iteration} (kept: ${gen.snapshots.map((q) => q.iteration)})`);
  }
  return { x: s.x, y: gen.y, ids: gen.ids, imageShape: gen.imageShape, numClasses: gen.numClasses };
}

/** Generation spend per sample, killed attempts included (what a later labeling may no longer use). */
export function generationPaid(gen: Generation): LedgerSnapshot {
  return mergeLedgers([...gen.ledgers, ...gen.lost]);
}

/** Budgets left to the samples of `ids` after their generation (iteration 0: the whole budget). */
export function budgetsAfter(gen: Generation, ids: Int32Array, iteration: number, perSample: number) {
  const paid = iteration > 0 ? generationPaid(gen).bySample : {};
  return new Map(Array.from(ids, (id) => [id, perSample - (paid[String(id)]?.spent ?? 0)]));
}

interface LabelResult {
  ids: number[];
  teacherLabels: number[];
  misclassified: number[];
  exhausted: number[];
  ledger: LedgerSnapshot | null;
  lost: LedgerSnapshot | null;
  seconds: number;
}

export async function labelUnit(ctx: UnitContext): Promise<UnitOutput> {
  const t0 = performance.now();
  const spec = ctx.plan.spec as unknown as ZsSpec;
  const { seed, iteration, range: [a, b] } = zsUnits(spec).label[ctx.index];
  const gen = await readGeneration(ctx.store, seed, [iteration]);
  const all = batchAt(gen, iteration);
  const n = all.y.length, dim = all.imageShape.reduce((p, q) => p * q, 1);
  const streams = makeClassStreams({ ...all, shape: [n, ...all.imageShape] }, seed);
  // A stream shorter than the candidate count would repeat candidates: cap it at the pool size.
  const smallest = Math.min(...streams.byClass.filter((c) => c.length > 0).map((c) => c.length));
  const bd = { ...spec.settings.label.bd, candidates: Math.min(spec.settings.label.bd.candidates, smallest) };
  const pick = [...all.ids.keys()].filter((i) => all.ids[i] >= a && all.ids[i] < b);
  const m = pick.length;
  const sub = {
    x: new Float32Array(m * dim),
    y: Int32Array.from(pick, (i) => all.y[i]),
    ids: Int32Array.from(pick, (i) => all.ids[i]),
    shape: [m, ...all.imageShape],
    numClasses: all.numClasses,
  };
  pick.forEach((i, j) => sub.x.set(all.x.subarray(i * dim, (i + 1) * dim), j * dim));
  const out: LabelResult = {
    ids: [...sub.ids],
    teacherLabels: [],
    misclassified: [],
    exhausted: [],
    ledger: null,
    lost: null,
    seconds: 0,
  };
  let distances: Float32Array = new Float32Array(0);
  if (m > 0) {
    const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, ZS_TEACHER);
    const budget = spec.settings.perSampleBudget;
    const u = await unitOracle(ctx, teacher, budget, budgetsAfter(gen, sub.ids, iteration, budget));
    try {
      const d = await labelDistances(u.oracle, sub, streams, {
        method: "bd",
        bd,
        mbd: { seed },
        chunkSize: m,
        progress: false,
      });
      distances = d.distances;
      out.teacherLabels = [...d.teacherLabels];
      out.misclassified = [...d.misclassified];
      out.exhausted = [...d.exhausted];
      out.ledger = u.oracle.ledger.snapshot();
      out.lost = u.lost;
    } finally {
      u.close();
      teacher.close();
      teacher.model?.dispose();
    }
  }
  out.seconds = (performance.now() - t0) / 1000;
  return {
    files: { "distances.f32": bytesOf(distances), "label.json": JSON.stringify(out) + "\n" },
    done: { samples: m, queries: out.ledger?.totals.spent ?? 0 },
  };
}

/** What the reduce of one seed saves (`summary.json`; soft labels z in `z-it<k>.f32`). */
export interface ZsReduced {
  seed: number;
  /** Generation ledger (finished attempts, exact merge) and everything paid (dead attempts too). */
  generation: { ledger: LedgerSnapshot; paid: LedgerSnapshot; seconds: number };
  labels: {
    iteration: number;
    ledger: LedgerSnapshot;
    paid: LedgerSnapshot;
    keep: number[];
    flagged: number;
    budgetCut: number[];
    seconds: number;
  }[];
  /** Largest spend of one pseudo sample: its generation and one labeling (≤ the per-sample budget). */
  maxSampleSpend: number;
  teacher: { name: string; spec: unknown; testAcc: number; source: string; engine: unknown };
  /** Test images the accuracies are measured on. */
  testImages: number;
}

export async function reduceUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as ZsSpec;
  const seed = zsUnits(spec).reduce[ctx.index];
  const budget = spec.settings.perSampleBudget;
  const gen = await readGeneration(ctx.store, seed, []);
  const ledger = mergeLedgers(gen.ledgers, { disjoint: true, names: gen.names, perSample: budget });
  const paid = mergeLedgers([ledger, ...gen.lost], { perSample: budget });
  const level = levelOf(ctx.store.plan, "label");
  const units = zsUnits(spec).label;
  const files: Record<string, Uint8Array | string> = {};
  const labels: ZsReduced["labels"] = [];
  let maxSampleSpend = 0;
  for (const [id, e] of Object.entries(paid.bySample)) {
    if (id !== "-1") maxSampleSpend = Math.max(maxSampleSpend, e.spent);
  }
  const k = spec.numClasses, n = gen.y.length;
  for (const iteration of spec.studentIterations) {
    const d = new Float32Array(n * k);
    const teacherLabels = new Int32Array(n), exhausted = new Uint8Array(n);
    const ledgers: LedgerSnapshot[] = [], lost: LedgerSnapshot[] = [], names: string[] = [];
    let off = 0, seconds = 0;
    for (let i = 0; i < units.length; i++) {
      if (units[i].seed !== seed || units[i].iteration !== iteration) continue;
      const key = level.keys[i];
      const r = JSON.parse(await ctx.store.readText(key, "label.json")) as LabelResult;
      d.set(f32Of(await ctx.store.readBytes(key, "distances.f32")), off * k);
      teacherLabels.set(r.teacherLabels, off);
      exhausted.set(r.exhausted, off);
      off += r.ids.length;
      seconds += r.seconds;
      if (r.ledger) {
        [ledgers.push(r.ledger), lost.push(r.lost!), names.push(`label[${i}] (${level.describe[i]})`)];
      }
    }
    if (off !== n) {
      throw new Error(`zsdb3kd reduce: labels of iteration ${iteration} cover ${off} of ${n} samples`);
    }
    const lab = mergeLedgers(ledgers, { disjoint: true, names });
    const labPaid = mergeLedgers([lab, ...lost]);
    // Generation and this labeling of one sample together never cross its budget.
    const both = mergeLedgers(iteration > 0 ? [paid, labPaid] : [labPaid], { perSample: budget });
    for (const [id, e] of Object.entries(both.bySample)) {
      if (id !== "-1") maxSampleSpend = Math.max(maxSampleSpend, e.spent);
    }
    const soft = softLabelsFromDistances(d, gen.y, k, { teacherLabels, exhausted });
    files[`z-it${iteration}.f32`] = bytesOf(soft.z);
    labels.push({
      iteration,
      ledger: lab,
      paid: labPaid,
      keep: [...soft.keep],
      flagged: soft.flagged.length,
      budgetCut: [...soft.budgetCut],
      seconds,
    });
  }
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, ZS_TEACHER);
  try {
    const test = await loadDataset(
      spec.dataset,
      "test",
      spec.settings.testLimit ? { limit: spec.settings.testLimit } : {},
    );
    const reduced: ZsReduced = {
      seed,
      generation: { ledger, paid, seconds: gen.seconds },
      labels,
      maxSampleSpend,
      testImages: test.y.length,
      teacher: {
        name: teacher.name,
        spec: teacher.spec ?? null,
        testAcc: await teacherTestAcc(teacher, test),
        source: describeTeacherSource(spec.teacher as TeacherSource),
        engine: teacher.engine,
      },
    };
    files["summary.json"] = JSON.stringify(reduced) + "\n";
    return { files, done: { seed, generationQueries: paid.totals.spent } };
  } finally {
    teacher.close();
    teacher.model?.dispose();
  }
}

/** The reduce of one seed: its summary and the soft labels of each labelled iteration. */
export async function readReduced(
  store: RunStore,
  seed: number,
): Promise<ZsReduced & { z: Map<number, Float32Array> }> {
  const spec = store.plan.spec as unknown as ZsSpec;
  const key = levelOf(store.plan, "reduce").keys[zsUnits(spec).reduce.indexOf(seed)];
  if (!(await store.isDone(key))) {
    throw new Error(`run ${store.root}: the reduce of seed ${seed} is not done; run the experiment first`);
  }
  const r = JSON.parse(await store.readText(key, "summary.json")) as ZsReduced;
  const z = new Map<number, Float32Array>();
  for (const l of r.labels) z.set(l.iteration, f32Of(await store.readBytes(key, `z-it${l.iteration}.f32`)));
  return { ...r, z };
}

/** The teacher's test accuracy: its recipe metadata, its model, else its labels (an endpoint). */
async function teacherTestAcc(t: OpenTeacher, test: LabeledData): Promise<number> {
  if (t.meta) return t.meta.testAcc;
  if (t.model) return await evaluate(t.model, test);
  const n = test.y.length;
  const { labels } = await (await t.labelOracle()).labels(test.x, n, { phase: "teacher.test" });
  return labels.reduce((s, v, i) => s + (v === test.y[i] ? 1 : 0), 0) / n;
}
