/**
 * The units of a "db3" run before the students (see `db3_plan.ts` for the levels): the teacher's test
 * accuracy, BD shards (db3-label's own unit), MBD shards started from the BD shards' searches, SD,
 * the teacher's probabilities for standard KD, and the reduce that merges them into distances, soft
 * labels and exact ledgers per method. Every unit that queries the teacher does so through a
 * journaled oracle, so queries a killed attempt paid stay counted.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import type { BdResult } from "../db3/bd.ts";
import type { Db3Distances } from "../db3/label_run.ts";
import { labelDistances } from "../db3/label_run.ts";
import { minimalBoundaryDistances } from "../db3/mbd.ts";
import { type SoftLabels, softLabelsFromDistances } from "../db3/soft_labels.ts";
import { loadDataset } from "../data/datasets.ts";
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { mergeLedgers } from "../runner/ledgers.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Db3LabelSpec } from "./db3_label_spec.ts";
import { labelSamples, labelShard, reduceShards, sampleRange, type ShardResult } from "./db3_label_units.ts";
import { f32Of, packFiles, readPacked } from "./packed.ts";
import { openPlannedTeacher } from "./open_teacher.ts";
import { unitOracle } from "./unit_oracle.ts";
import { bdLabelSpec, ranges } from "./db3_plan.ts";
import type { Db3Spec } from "./db3_spec.ts";
import { studentUnit } from "./db3_student.ts";

/** What the teacher unit saves. */
export interface Db3TeacherInfo {
  name: string;
  spec: unknown;
  /** The recipe's metadata (training history left out), null for a teacher the kit did not train. */
  meta: Record<string, unknown> | null;
  /** Test accuracy: the recipe's, else measured through labels on the run's test images. */
  testAcc: number;
  engine: unknown;
  /** Queries of the accuracy measurement (phase "teacher.test"; not part of any student's set). */
  ledger: LedgerSnapshot | null;
}

/** The reduce's output: distances and soft labels per labeled method, and the KD targets. */
export interface Db3Reduced {
  distances: Partial<Record<"sd" | "bd" | "mbd", Db3Distances>>;
  softLabels: Partial<Record<"sd" | "bd" | "mbd", SoftLabels>>;
  kd: { targets: Float32Array; ledger: LedgerSnapshot; seconds: number } | null;
}

const specOf = (ctx: { plan: { spec: unknown } }) => ctx.plan.spec as Db3Spec;

async function teacherUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = specOf(ctx);
  await initBackend();
  const t = await openPlannedTeacher(spec, ctx.plan.teacher, { method: "DB3" });
  try {
    const s = spec.settings;
    const test = await loadDataset(spec.dataset, "test", s.testLimit ? { limit: s.testLimit } : {});
    let testAcc: number, ledger: LedgerSnapshot | null = null, lost: LedgerSnapshot | null = null;
    if (t.meta) testAcc = t.meta.testAcc;
    else {
      const j = await unitOracle(ctx, t);
      try {
        const n = test.y.length;
        const { labels } = await j.oracle.labels(test.x, n, { phase: "teacher.test" });
        testAcc = labels.reduce((a, v, i) => a + (v === test.y[i] ? 1 : 0), 0) / n;
        ledger = j.oracle.ledger.snapshot();
        lost = j.lost;
      } finally {
        j.oracle.close();
      }
    }
    const { history: _h, ...meta } = (t.meta ?? {}) as unknown as Record<string, unknown>;
    const info: Db3TeacherInfo = {
      name: t.name,
      spec: t.spec,
      meta: t.meta ? meta : null,
      testAcc,
      engine: t.engine,
      ledger,
    };
    return {
      files: { "teacher.json": JSON.stringify(info) + "\n" },
      done: { testAcc, queries: ledger?.totals.spent ?? 0, lostQueries: lost?.totals.spent ?? 0 },
    };
  } finally {
    t.close();
    t.model?.dispose();
  }
}

/**
 * The BD shards' results covering samples [a, b), as MBD's starting point; null when a shard was
 * written before shards kept their best candidates (e.g. imported from an older db3-label run): MBD
 * then runs BD again for its samples and its ledger books those queries.
 */
async function bdInit(
  store: RunStore,
  label: Db3LabelSpec,
  a: number,
  b: number,
  k: number,
): Promise<BdResult | null> {
  const level = levelOf(store.plan, "label");
  const n = b - a;
  const init = {
    method: "bd" as const,
    ids: Int32Array.from({ length: n }, (_, i) => a + i),
    y: new Int32Array(n),
    numClasses: k,
    distances: new Float32Array(n * k),
    bestCandidate: new Int32Array(n * k).fill(-1),
    lambda0: new Float32Array(n * k),
    queries: new Int32Array(n * k),
    teacherLabels: new Int32Array(n),
    misclassified: new Uint8Array(n),
    exhausted: new Uint8Array(n),
    ledger: new Ledger().snapshot(),
    options: { ...label.bd },
  };
  for (const [i, [s, e]] of ranges(label.n, label.shardSize).entries()) {
    if (e <= a || s >= b) continue;
    const key = level.keys[i];
    const r = JSON.parse(await store.readText(key, "result.json")) as ShardResult;
    if (!r.bestCandidate) return null;
    const d = f32Of(await store.readBytes(key, "distances.f32"));
    for (let g = Math.max(s, a); g < Math.min(e, b); g++) {
      const i0 = g - s, j = g - a;
      init.y[j] = r.y[i0];
      init.teacherLabels[j] = r.teacherLabels[i0];
      init.misclassified[j] = r.misclassified[i0];
      init.exhausted[j] = r.exhausted[i0];
      init.distances.set(d.subarray(i0 * k, (i0 + 1) * k), j * k);
      init.bestCandidate.set(r.bestCandidate.slice(i0 * k, (i0 + 1) * k), j * k);
      init.queries.set(r.queries.slice(i0 * k, (i0 + 1) * k), j * k);
    }
  }
  return init;
}

async function mbdShard(ctx: UnitContext): Promise<UnitOutput> {
  const t0 = performance.now();
  const spec = specOf(ctx);
  const label = bdLabelSpec(spec);
  const [a, b] = ranges(label.n, spec.settings.chunk.mbd)[ctx.index];
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, { method: "DB3-MBD" });
  const { set, streams } = await labelSamples(label);
  const samples = sampleRange(set, a, b);
  const init = await bdInit(ctx.store, label, a, b, set.numClasses);
  const j = await unitOracle(ctx, teacher);
  try {
    const r = await minimalBoundaryDistances(j.oracle, samples, streams, {
      ...spec.settings.mbd,
      seed: spec.labelSeed,
      bd: label.bd,
      ...(init ? { init } : {}),
    });
    const out = {
      start: a,
      end: b,
      distances: r.distances,
      queries: r.queries,
      snapshots: r.snapshots,
      exhausted: r.exhausted,
      ledger: r.ledger,
      lost: j.lost,
      // BD run again here (its shards lacked best candidates): its "bd.*" queries are in `ledger`.
      bdRecomputed: init === null,
      seconds: (performance.now() - t0) / 1000,
    };
    return {
      files: packFiles(out, "result"),
      done: { samples: b - a, queries: r.ledger.totals.spent, lostQueries: j.lost.totals.spent },
    };
  } finally {
    j.oracle.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

async function sdUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = specOf(ctx);
  const { set, streams } = await labelSamples(bdLabelSpec(spec));
  const d = await labelDistances(null, set, streams, { method: "sd", sd: spec.settings.sd, progress: false });
  return { files: packFiles(d, "result"), done: { samples: set.y.length, queries: 0 } };
}

async function kdUnit(ctx: UnitContext): Promise<UnitOutput> {
  const t0 = performance.now();
  const spec = specOf(ctx);
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, {
    need: "probs",
    method: "DB3 table row kd (standard KD)",
  });
  try {
    const { set } = await labelSamples(bdLabelSpec(spec));
    const n = set.y.length;
    const po = teacher.probsOracle();
    const p = await po.probs(set.x, n, {
      phase: "kd.probs",
      sampleIds: Int32Array.from({ length: n }, (_, i) => i),
    });
    // z = log p: softmax(log p / τ) = softmax(logits / τ) exactly (probabilities below 1e-38 floored).
    const targets = Float32Array.from(p, (v) => Math.log(Math.max(v, 1e-38)));
    const out = { targets, ledger: po.ledger.snapshot(), seconds: (performance.now() - t0) / 1000 };
    return {
      files: packFiles(out, "result"),
      done: { samples: n, queries: out.ledger.totals.spent },
    };
  } finally {
    teacher.close();
    teacher.model?.dispose();
  }
}

/** Merge the labeling units into distances per method (exact ledgers) and their soft labels. */
async function reduce(store: RunStore): Promise<Db3Reduced> {
  const spec = store.plan.spec as unknown as Db3Spec;
  const label = bdLabelSpec(spec);
  const has = (l: string) => store.plan.levels.some((v) => v.name === l);
  const out: Db3Reduced = { distances: {}, softLabels: {}, kd: null };
  const chunks = (n: number, size: number) => ({ computed: n, resumed: 0, size });
  if (has("label")) {
    const r = await reduceShards(store, label, "label");
    const budgetCut = Int32Array.from(r.exhausted.keys()).filter((i) => r.exhausted[i] === 1);
    out.distances.bd = {
      method: "bd",
      ids: Int32Array.from({ length: r.n }, (_, i) => i),
      y: r.y,
      numClasses: r.numClasses,
      distances: r.distances,
      queries: r.queries,
      teacherLabels: r.teacherLabels,
      misclassified: Uint8Array.from(r.teacherLabels, (t, i) => (t >= 0 && t !== r.y[i] ? 1 : 0)),
      exhausted: r.exhausted,
      budgetCut,
      ledger: r.ledger,
      options: { ...label.bd },
      chunks: chunks(levelOf(store.plan, "label").keys.length, label.shardSize),
      seconds: r.unitSeconds,
    };
  }
  if (has("mbd")) {
    const bd = out.distances.bd!;
    const level = levelOf(store.plan, "mbd");
    const n = label.n, k = bd.numClasses;
    const parts = [];
    for (const key of level.keys) parts.push(await readPacked<MbdPart>(store, key, "result"));
    const distances = new Float32Array(n * k), queries = new Int32Array(n * k), exhausted = new Uint8Array(n);
    const snapQ = parts[0]?.snapshots.queries ?? [];
    const snaps = snapQ.map(() => new Float32Array(n * k));
    for (const p of parts) {
      distances.set(p.distances, p.start * k);
      queries.set(p.queries, p.start * k);
      exhausted.set(p.exhausted, p.start);
      p.snapshots.distances.forEach((s, i) => snaps[i].set(s, p.start * k));
    }
    const names = level.describe;
    const mbdLedger = mergeLedgers(parts.map((p) => p.ledger), { disjoint: true, names });
    out.distances.mbd = {
      ...bd,
      method: "mbd",
      distances,
      bdDistances: bd.distances,
      bdExhausted: bd.exhausted,
      queries,
      snapshots: { queries: snapQ, distances: snaps },
      exhausted,
      budgetCut: Int32Array.from(exhausted.keys()).filter((i) => exhausted[i] === 1),
      // BD's queries are its "bd.*" phases, as when one MBD run did both.
      ledger: mergeLedgers([bd.ledger!, mbdLedger]),
      options: { ...spec.settings.mbd, seed: spec.labelSeed, bd: label.bd },
      chunks: chunks(level.keys.length, spec.settings.chunk.mbd),
      seconds: bd.seconds + parts.reduce((a, p) => a + p.seconds, 0),
    };
  }
  if (has("sd")) {
    out.distances.sd = await readPacked<Db3Distances>(store, levelOf(store.plan, "sd").keys[0], "result");
  }
  if (has("kd")) out.kd = await readPacked(store, levelOf(store.plan, "kd").keys[0], "result");
  for (const m of ["sd", "bd", "mbd"] as const) {
    const d = out.distances[m];
    if (!d) continue;
    out.softLabels[m] = softLabelsFromDistances(d.distances, d.y, d.numClasses, {
      ...spec.softLabels,
      teacherLabels: d.teacherLabels,
      exhausted: d.exhausted,
    });
  }
  return out;
}

interface MbdPart {
  start: number;
  end: number;
  distances: Float32Array;
  queries: Int32Array;
  snapshots: { queries: number[]; distances: Float32Array[] };
  exhausted: Uint8Array;
  ledger: LedgerSnapshot;
  lost: LedgerSnapshot;
  seconds: number;
}

async function reduceUnit(ctx: UnitContext): Promise<UnitOutput> {
  const r = await reduce(ctx.store);
  return { files: packFiles(r, "reduce"), done: { methods: Object.keys(r.distances) } };
}

/** The reduce unit's output (the run must have reached it). */
export async function readDb3Reduced(store: RunStore): Promise<Db3Reduced> {
  return await readPacked<Db3Reduced>(store, levelOf(store.plan, "reduce").keys[0], "reduce");
}

/** The teacher unit's output. */
export async function readDb3Teacher(store: RunStore): Promise<Db3TeacherInfo> {
  return JSON.parse(await store.readText(levelOf(store.plan, "teacher").keys[0], "teacher.json"));
}

const KINDS: Record<string, (ctx: UnitContext) => Promise<UnitOutput>> = {
  "db3-teacher": teacherUnit,
  "db3-label-shard": (ctx) => labelShard(ctx, bdLabelSpec(specOf(ctx))),
  "db3-mbd-shard": mbdShard,
  "db3-sd": sdUnit,
  "db3-kd-targets": kdUnit,
  "db3-reduce": reduceUnit,
  "db3-student": async (ctx) =>
    studentUnit(ctx, await readDb3Reduced(ctx.store), await readDb3Teacher(ctx.store)),
};

/** The family as the runner sees it. */
export const DB3_FAMILY: Family = {
  name: "db3",
  runUnit(kind, ctx) {
    const run = KINDS[kind];
    if (!run) throw new Error(`db3 has no unit kind "${kind}" (kinds: ${Object.keys(KINDS).join(", ")})`);
    return run(ctx);
  },
};
