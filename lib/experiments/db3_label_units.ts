/**
 * The units of a "db3-label" run: a labeling shard (BD over a contiguous sample range through a
 * journaled label oracle) and the reduce (distances in sample order, one exact ledger, soft labels).
 *
 * @module
 */
import { boundaryDistances } from "../db3/bd.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { type ClassStreams, type Db3Samples, makeClassStreams } from "../db3/streams.ts";
import { loadDataset } from "../data/datasets.ts";
import { stratifiedSubset } from "../data/subsets.ts";
import type { LabeledData } from "../data/types.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { openPlannedTeacher } from "./open_teacher.ts";
import { unitOracle } from "./unit_oracle.ts";
import { type Db3LabelSpec, shardRanges } from "./db3_label_spec.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { mergeLedgers } from "../runner/ledgers.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import { bytesOf, f32Of } from "./packed.ts";

/** What a labeling shard saves beside `distances.f32`. */
export interface ShardResult {
  start: number;
  end: number;
  y: number[];
  teacherLabels: number[];
  misclassified: number[];
  exhausted: number[];
  /** Queries per (sample, class), excluding the init query. */
  queries: number[];
  /** Stream index of the best candidate per (sample, class), −1 if none (MBD starts from it). */
  bestCandidate?: number[];
  /** Ledger of the attempt that finished. */
  ledger: LedgerSnapshot;
  /** Queries paid by earlier attempts that died (replayed from their journals). */
  lost: LedgerSnapshot;
  engine: unknown;
  seconds: number;
}

/** The reduced run: what `collect` returns. */
export interface Db3LabelResult {
  spec: Db3LabelSpec;
  n: number;
  numClasses: number;
  /** d (n×K) in sample order, Infinity at the true class. */
  distances: Float32Array;
  /** Soft labels z (n×K). */
  z: Float32Array;
  y: Int32Array;
  teacherLabels: Int32Array;
  misclassified: number;
  flagged: number;
  /** Ledger of the finished attempts (independent of the split). */
  ledger: LedgerSnapshot;
  /** Everything the teacher answered, killed attempts included. */
  paid: LedgerSnapshot;
  /** Seconds of labeling summed over units. */
  unitSeconds: number;
  engine: unknown;
}

/**
 * The images a labeling spec covers (the first `n` training images, or its class-balanced transfer
 * set) and the class streams its candidates come from.
 */
export async function labelSamples(spec: Db3LabelSpec): Promise<{ set: LabeledData; streams: ClassStreams }> {
  const train = await loadDataset(spec.dataset, "train");
  const set = spec.samplesPerClass ? stratifiedSubset(train, spec.samplesPerClass, spec.seed) : train;
  if (spec.n > set.y.length) {
    throw new RangeError(
      `db3-label: n = ${spec.n} but the ${spec.dataset} set to label has ${set.y.length} images`,
    );
  }
  return { set, streams: makeClassStreams(train, spec.seed) };
}

/** Contiguous samples [start, end) of `set`, with their indices as sample ids. */
export function sampleRange(set: LabeledData, start: number, end: number): Db3Samples {
  const dim = set.shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    x: set.x.slice(start * dim, end * dim),
    y: set.y.slice(start, end),
    shape: [end - start, ...set.shape.slice(1)],
    numClasses: set.numClasses,
    ids: Int32Array.from({ length: end - start }, (_, i) => start + i),
  };
}

/**
 * A labeling shard: BD over samples `shardRanges(spec)[ctx.index]` through a journaled oracle. The one
 * code path of db3-label's shards and of the `db3` family's BD shards (`spec` is then derived from the
 * db3 spec), so a finished shard of either serves both.
 */
export async function labelShard(ctx: UnitContext, spec: Db3LabelSpec): Promise<UnitOutput> {
  const t0 = performance.now();
  const [start, end] = shardRanges(spec)[ctx.index];
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, { method: "db3-label" });
  const { set, streams } = await labelSamples(spec);
  const samples = sampleRange(set, start, end);
  // Queries a dead attempt paid count against the sample's budget.
  const { oracle, lost } = await unitOracle(ctx, teacher, spec.budgetPerSample);
  try {
    const r = await boundaryDistances(oracle, samples, streams, { ...spec.bd });
    const result: ShardResult = {
      start,
      end,
      y: [...samples.y],
      teacherLabels: [...r.teacherLabels],
      misclassified: [...r.misclassified],
      exhausted: [...r.exhausted],
      queries: [...r.queries],
      bestCandidate: [...r.bestCandidate],
      ledger: r.ledger,
      lost,
      engine: teacher.engine,
      seconds: (performance.now() - t0) / 1000,
    };
    const d = r.distances;
    return {
      files: {
        "distances.f32": bytesOf(d),
        "result.json": JSON.stringify(result) + "\n",
      },
      done: { samples: end - start, queries: r.ledger.totals.spent, lostQueries: lost.totals.spent },
    };
  } finally {
    oracle.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

/**
 * Read every finished shard of level `levelName` (default "label") in sample order and merge them (the
 * reduce, without saving); `spec` defaults to the plan's (a db3-label run).
 */
export async function reduceShards(
  store: RunStore,
  spec = store.plan.spec as unknown as Db3LabelSpec,
  levelName = "label",
): Promise<Db3LabelResult & { exhausted: Uint8Array; queries: Int32Array }> {
  const level = levelOf(store.plan, levelName);
  const shards: ShardResult[] = [];
  const parts: Float32Array[] = [];
  for (const key of level.keys) {
    shards.push(JSON.parse(await store.readText(key, "result.json")) as ShardResult);
    parts.push(f32Of(await store.readBytes(key, "distances.f32")));
  }
  const k = parts.length > 0 ? parts[0].length / (shards[0].end - shards[0].start) : 0;
  const distances = new Float32Array(spec.n * k);
  const y = new Int32Array(spec.n), teacherLabels = new Int32Array(spec.n);
  const exhausted = new Uint8Array(spec.n), queries = new Int32Array(spec.n * k);
  let misclassified = 0, unitSeconds = 0;
  shards.forEach((s, i) => {
    distances.set(parts[i], s.start * k);
    y.set(s.y, s.start);
    teacherLabels.set(s.teacherLabels, s.start);
    exhausted.set(s.exhausted, s.start);
    queries.set(s.queries, s.start * k);
    misclassified += s.misclassified.reduce((a, b) => a + b, 0);
    unitSeconds += s.seconds;
  });
  const names = level.describe.map((d, i) => `label[${i}] (${d})`);
  const ledger = mergeLedgers(shards.map((s) => s.ledger), { disjoint: true, names });
  const paid = mergeLedgers([ledger, ...shards.map((s) => s.lost)], {
    perSample: spec.budgetPerSample ?? undefined,
  });
  const soft = softLabelsFromDistances(distances, y, k, { teacherLabels });
  return {
    spec,
    n: spec.n,
    numClasses: k,
    distances,
    z: soft.z,
    y,
    teacherLabels,
    misclassified,
    flagged: soft.flagged.length,
    ledger,
    paid,
    unitSeconds,
    engine: shards[0]?.engine ?? null,
    exhausted,
    queries,
  };
}

async function reduceUnit(ctx: UnitContext): Promise<UnitOutput> {
  const r = await reduceShards(ctx.store);
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const { distances, z, y, teacherLabels, exhausted: _e, queries: _q, ...rest } = r;
  const summary = { ...rest, y: [...y], teacherLabels: [...teacherLabels] };
  return {
    files: {
      "distances.f32": bytes(distances),
      "z.f32": bytes(z),
      "summary.json": JSON.stringify(summary) + "\n",
    },
    done: { samples: r.n, totalQueries: r.paid.totals.spent },
  };
}

/** Read the reduce unit's outputs (the run must be complete). */
export async function readDb3LabelResult(store: RunStore): Promise<Db3LabelResult> {
  const key = levelOf(store.plan, "reduce").keys[0];
  if (!(await store.isDone(key))) {
    throw new Error(`run ${store.root} is not finished: its reduce unit has no done marker; run it first`);
  }
  const s = JSON.parse(await store.readText(key, "summary.json"));
  return {
    ...s,
    y: Int32Array.from(s.y),
    teacherLabels: Int32Array.from(s.teacherLabels),
    distances: f32Of(await store.readBytes(key, "distances.f32")),
    z: f32Of(await store.readBytes(key, "z.f32")),
  };
}

/** The family as the runner sees it. */
export const DB3_LABEL_FAMILY: Family = {
  name: "db3-label",
  runUnit(kind, ctx) {
    if (kind === "db3-label-shard") return labelShard(ctx, ctx.plan.spec as unknown as Db3LabelSpec);
    if (kind === "db3-label-reduce") return reduceUnit(ctx);
    throw new Error(`db3-label has no unit kind "${kind}" (kinds: db3-label-shard, db3-label-reduce)`);
  },
};
