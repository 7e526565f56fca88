/**
 * What the units of a CAKE run leave in the run store, and reading it back: a teacher unit's model
 * (spec + flat weights) and accuracy, a synthesis shard's samples (inputs, teacher logits, target
 * classes, η per sample) and ledger, and a synthetic set assembled from its shards in batch order.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { ModelSpec } from "../models/registry.ts";
import { modelFingerprint } from "../models/fingerprint.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { agreement, argmaxRows, type SyntheticSet } from "../cake/types.ts";
import { mergeLedgers } from "../runner/ledgers.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import { openSpecTeacher, type SpecTeacher, type SpecTeacherOptions } from "./open_teacher.ts";
import type { DatasetName } from "../data/types.ts";
import type { InputAdapterOptions } from "../teachers/adapters.ts";
import { allShards, type CakeSpec } from "./cake_spec.ts";
import { unpackModel } from "./student_cell.ts";
import { f32Of, i32Of } from "./packed.ts";

/** A teacher unit's `teacher.json`. */
export interface TeacherInfo {
  name: string;
  fingerprint: string;
  /** Test accuracy (two-moons: on its real points), in [0, 1]. */
  accuracy: number;
  /** Kit spec when the weights are in the store (`weights.bin`); null for a TF.js folder. */
  spec: ModelSpec | null;
  /** Loaded from a teacher cache instead of trained in this unit. */
  cached: boolean;
  /** Training seconds (0 when cached). */
  seconds: number;
}

/** A synthesis shard's `shard.json`. */
export interface ShardInfo {
  n: number;
  dim: number;
  numClasses: number;
  inputShape: number[];
  /** Per batch: index, η, samples, last objective value, seconds, teacher passes. */
  batches: {
    m: number;
    eta: number;
    n: number;
    lastLoss: number;
    seconds: number;
    passes: { forward: number; backward: number };
  }[];
  /** The teacher's forward/backward images of this unit (the attempt that finished). */
  ledger: LedgerSnapshot;
  /** Images earlier attempts of this unit paid before they died (from their journals). */
  lost: LedgerSnapshot;
  seconds: number;
}

/** A synthetic set assembled from its shards, with what the notebooks show about it. */
export interface StoredSet extends SyntheticSet {
  /** η of each sample's batch (NaN for the generator). */
  eta: Float32Array;
  passes: { forward: number; backward: number };
  /** Everything the teacher answered for this set, killed attempts included. */
  paid: LedgerSnapshot;
  stats: { seconds: number; sampleStepsPerSec: number; hitRate: number; shards: number };
}

/** How CAKE opens a teacher folder: `logits+grad` on the model in this process. */
export const CAKE_TEACHER: SpecTeacherOptions = { need: "logits+grad", method: "CAKE", workers: 0 };

/** A model folder for `dataset`'s images, as {@link openSpecTeacher} opens it. */
export function cakeFolderTeacher(
  src: { path: string; adapter?: InputAdapterOptions; dataset: DatasetName },
): SpecTeacher {
  const teacher = {
    kind: "folder" as const,
    path: src.path,
    ...(src.adapter ? { adapter: src.adapter } : {}),
  };
  return { teacher, dataset: src.dataset };
}

/** The info of teacher unit `t`. */
export async function teacherInfo(store: RunStore, t: number): Promise<TeacherInfo> {
  return JSON.parse(await store.readText(levelOf(store.plan, "teacher").keys[t], "teacher.json"));
}

/**
 * The model of teacher `t` as its unit left it (weights from the store, or the TF.js folder opened
 * again), checked against the fingerprint the unit recorded.
 */
export async function loadStoredTeacher(store: RunStore, t: number): Promise<tfl.LayersModel> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const key = levelOf(store.plan, "teacher").keys[t];
  const info = await teacherInfo(store, t);
  let model: tfl.LayersModel;
  if (info.spec) model = unpackModel(info.spec, await store.readBytes(key, "weights.bin"));
  else {
    const src = spec.teachers[t].source;
    if (src.kind !== "folder") {
      throw new Error(
        `teacher ${info.name}: its unit saved no weights; delete ${store.unitDir(key)} and run again`,
      );
    }
    model = (await openSpecTeacher(cakeFolderTeacher(src), CAKE_TEACHER)).model!;
  }
  const fp = modelFingerprint(model);
  if (fp !== info.fingerprint) {
    model.dispose();
    throw new Error(
      `teacher ${info.name}: fingerprint ${fp.slice(0, 12)} differs from ${info.fingerprint.slice(0, 12)} ` +
        `recorded by its unit: the teacher changed since; restore it or start a new run store`,
    );
  }
  return model;
}

/** Read the shards of synthesis `j` in batch order and assemble its set (ledgers merged exactly). */
export async function readStoredSet(store: RunStore, j: number): Promise<StoredSet> {
  const spec = store.plan.spec as unknown as CakeSpec;
  const level = levelOf(store.plan, "synth");
  const shards = allShards(spec);
  const idx = shards.map((s, i) => (s.synth === j ? i : -1)).filter((i) => i >= 0);
  const infos: ShardInfo[] = [];
  const xs: Float32Array[] = [], zs: Float32Array[] = [], ts: Int32Array[] = [];
  for (const i of idx) {
    const key = level.keys[i];
    infos.push(JSON.parse(await store.readText(key, "shard.json")));
    xs.push(f32Of(await store.readBytes(key, "x.f32")));
    zs.push(f32Of(await store.readBytes(key, "logits.f32")));
    ts.push(i32Of(await store.readBytes(key, "target.i32")));
  }
  const n = infos.reduce((a, s) => a + s.n, 0);
  const { dim, numClasses: k, inputShape } = infos[0];
  const x = new Float32Array(n * dim), targets = new Float32Array(n * k);
  const targetClass = new Int32Array(n), eta = new Float32Array(n).fill(NaN);
  const passes = { forward: 0, backward: 0 };
  let off = 0, seconds = 0, computeSec = 0, sampleSteps = 0;
  infos.forEach((s, i) => {
    x.set(xs[i], off * dim);
    targets.set(zs[i], off * k);
    targetClass.set(ts[i], off);
    let b0 = off;
    for (const b of s.batches) {
      eta.fill(b.eta, b0, b0 + b.n);
      b0 += b.n;
      computeSec += b.seconds;
      sampleSteps += b.passes.backward;
    }
    seconds += s.seconds;
    off += s.n;
  });
  const ledger = mergeLedgers(infos.map((s) => s.ledger), {
    names: idx.map((i) => `synth[${i}] (${level.describe[i]})`),
  });
  for (const kind of ["forward", "backward"] as const) passes[kind] = ledger.totals.images[kind];
  const paid = mergeLedgers([ledger, ...infos.map((s) => s.lost)]);
  const teacherClass = argmaxRows(targets, k);
  return {
    method: spec.syntheses[j].method,
    x,
    shape: [n, ...inputShape],
    targets,
    numClasses: k,
    targetClass,
    teacherClass,
    ledger,
    eta,
    passes,
    paid,
    stats: {
      seconds,
      sampleStepsPerSec: computeSec > 0 ? sampleSteps / computeSec : NaN,
      hitRate: agreement(teacherClass, targetClass),
      shards: idx.length,
    },
  };
}
