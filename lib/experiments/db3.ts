/**
 * DB3 with training data (Wang 2021): teacher → label-only soft labels (SD, BD, MBD) → students,
 * beside the label-only CE student and the standard-KD student (probs access), on the same images.
 *
 * `runDb3Table({dataset, scale, seed, methods})` gets the teacher (`getTeacher`), draws a stratified
 * transfer set of training images, labels it with each method through a label oracle backed by the
 * native engine or, where it is unavailable, a wasm worker pool (`teacherPredictor`; the choice is
 * recorded as `oracleEngine` in every run record's config; resumable: chunks cached under
 * `data/db3/`), trains one student per method with the reference loss (CE + Σ_batch
 * KL(softmax(z/τ) ‖ softmax(S/τ)), τ = 20), and returns table rows plus one run record per method
 * (saved with `saveRun`, ledger included).
 *
 * Scales (per dataset family; MNIST/Fashion-MNIST first, CIFAR-10 in brackets):
 * - `paper`: the reference — every training image labelled, BD 201 candidates, tol 1e-5, MBD K=200,
 *   α 0.2, β 1e-3, 20k queries per (sample, class); students 200 epochs, batch 512, Adam 1e-3 (5e-3).
 * - `laptop` (≤ ~30 min per notebook on 2 unloaded cores, teacher cached or trained in minutes):
 *   MNIST/Fashion-MNIST: 40 images per class; BD at reference settings (~2,200 queries, ~0.2 s per
 *   sample); MBD at the reference settings but a 2,000 query limit per (sample, class), snapshots at
 *   0.5k, 1k, 1.5k and 2k — the 20k limit costs ~15 s per MNIST sample, the `paper` scale and the
 *   benchmark measure it; students 200 epochs, batch 64 (a 400-image set still gets ~1,300 Adam
 *   steps), reference lr, the first 1,000 test images scored per epoch for the best-epoch number (the
 *   final accuracy always on all). CIFAR-10: AlexNet answers ~1/16 as many label queries per second as LeNet-5
 *   (measured ratio on the 2-core machine), so 10 images per class, BD with 51 candidates, MBD with
 *   K = 50 directions and a 400-query limit (~0.3 M queries in all), students 200 epochs at batch 32
 *   scored on the test set after the last epoch only (AlexNet-half trains at ~200 images/s per core).
 * - `smoke`: 1 image per class, BD 11 candidates, MBD K=10 with a 200-query limit, 2 epochs; 500 (200)
 *   test images.
 * Teacher accuracy and every setting are recorded in the rows and run records.
 *
 * Standard KD uses the same reference loss with the teacher's probabilities as targets:
 * z = log p (softmax(log p / τ) = softmax(logits / τ) exactly; probabilities below 1e-38 are floored).
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import {
  type DatasetName,
  type LabeledData,
  loadDataset,
  repoRoot,
  stratifiedSubset,
  subset,
} from "../data/mod.ts";
import type { ModelName, ModelSpec } from "../models/registry.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import { tableBRows } from "../results/paper.ts";
import { type RunRecord, saveRun, startRun } from "../results/record.ts";
import { atScale, type Scale } from "../scale.ts";
import { evaluate, train, type TrainConfig } from "../train/trainer.ts";
import type { BdOptions } from "../db3/bd.ts";
import { type Db3Distances, type Db3Method, labelDistances } from "../db3/label_run.ts";
import type { MbdOptions } from "../db3/mbd.ts";
import type { SdOptions } from "../db3/sd.ts";
import { type SoftLabelOptions, type SoftLabels, softLabelsFromDistances } from "../db3/soft_labels.ts";
import { makeClassStreams } from "../db3/streams.ts";
import { type OpenTeacher, openTeacher } from "./open_teacher.ts";
import {
  describeTeacherSource,
  parseTeacherSource,
  recordableSource,
  type TeacherSource,
} from "./teacher_source.ts";

/** Rows of the DB3 table. */
export type Db3TableMethod = "ce" | "kd" | "sd" | "bd" | "mbd";

/** All student rows, in table order. */
export const DB3_TABLE_METHODS: readonly Db3TableMethod[] = ["ce", "kd", "sd", "bd", "mbd"];

/** Concrete settings of one scale. */
export interface Db3Settings {
  /** Transfer-set images per class (0: the whole training set). */
  samplesPerClass: number;
  /** Test images used for accuracy (0: all). */
  testLimit: number;
  sd: SdOptions;
  bd: Omit<BdOptions, "lockstep">;
  mbd: Omit<MbdOptions, "bd" | "lockstep">;
  student: {
    model: ModelName;
    epochs: number;
    batchSize: number;
    lr: number;
    /** τ of the kd-db3 loss. */
    temperature: number;
    /**
     * Test images scored after every epoch, for the best-epoch number (the first ones of the test set;
     * default all, 0 = none). The reported final accuracy is always scored on the whole test set.
     */
    epochTestLimit?: number;
  };
  /** Samples per labeling chunk (BD, MBD). */
  chunk: { bd: number; mbd: number };
  /** What differs from the paper and why. */
  note: string;
}

type Family = "lenet" | "alexnet";

function familyOf(d: DatasetName): Family {
  return d === "cifar10" ? "alexnet" : "lenet";
}

const STUDENT: Record<Family, { model: ModelName; lr: number }> = {
  lenet: { model: "db3-lenet5-half", lr: 1e-3 },
  alexnet: { model: "db3-alexnet-half", lr: 5e-3 },
};

/** Settings by scale and dataset family (see the module doc). */
export function db3Settings(scale: Scale, dataset: DatasetName): Db3Settings {
  const f = familyOf(dataset);
  const s = STUDENT[f];
  return atScale<Db3Settings>(scale, {
    smoke: {
      samplesPerClass: 1,
      testLimit: f === "lenet" ? 500 : 200,
      sd: {},
      bd: { candidates: 11 },
      mbd: { kGrad: 10, queryLimit: 200, snapshotAt: [100, 200] },
      student: { model: s.model, epochs: 2, batchSize: 16, lr: s.lr, temperature: 20 },
      chunk: { bd: 20, mbd: 20 },
      note:
        "pipeline check: 10 images, BD 11 candidates, MBD K=10 and 200 queries per (sample, class), 2 epochs",
    },
    laptop: f === "lenet"
      ? {
        samplesPerClass: 40,
        testLimit: 0,
        sd: {},
        bd: {},
        mbd: { queryLimit: 2000, snapshotAt: [500, 1000, 1500, 2000] },
        student: {
          model: s.model,
          epochs: 200,
          batchSize: 64,
          lr: s.lr,
          temperature: 20,
          epochTestLimit: 1000,
        },
        chunk: { bd: 100, mbd: 20 },
        note: "400 images (40/class); MBD query limit 2,000 per (sample, class) instead of 20,000; student " +
          "batch 64 instead of 512; best-epoch accuracy on the first 1,000 test images (final: all 10,000)",
      }
      : {
        samplesPerClass: 10,
        testLimit: 0,
        sd: {},
        bd: { candidates: 51 },
        mbd: { kGrad: 50, queryLimit: 400, snapshotAt: [200, 400] },
        student: {
          model: s.model,
          epochs: 200,
          batchSize: 32,
          lr: s.lr,
          temperature: 20,
          epochTestLimit: 0,
        },
        chunk: { bd: 50, mbd: 10 },
        note:
          "100 images (10/class); BD 51 candidates instead of 201; MBD K=50 directions and 400 queries per " +
          "(sample, class) instead of 200 and 20,000; student batch 32 instead of 512, test set scored after the " +
          "last epoch only (AlexNet answers ~1/16 as many label queries per second as LeNet-5)",
      },
    paper: {
      samplesPerClass: 0,
      testLimit: 0,
      sd: {},
      bd: {},
      mbd: {},
      student: { model: s.model, epochs: 200, batchSize: 512, lr: s.lr, temperature: 20 },
      chunk: { bd: 200, mbd: 20 },
      note: "reference settings",
    },
  });
}

/** Options of {@link runDb3Table}. */
export interface Db3TableOptions {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
  /** Student rows to produce (default all: ce, kd, sd, bd, mbd). */
  methods?: Db3TableMethod[];
  /** Override parts of the scale's settings. */
  settings?: Partial<Db3Settings>;
  /** Soft-label remedy for the 1/d blow-up (default: none, as the reference). */
  softLabels?: Omit<SoftLabelOptions, "teacherLabels">;
  /** Labeling cache root (default `<repo>/data/db3`); `false` disables caching. */
  cacheDir?: string | false;
  /** Save one run record per method (default true). */
  save?: boolean;
  /** Experiment name for the records (default `db3-<dataset>`). */
  experiment?: string;
  /** Oracle workers / native threads (default: all cores). */
  workers?: number;
  /** Teacher inference engine for the oracles (default "auto": native if it builds, else the wasm pool). */
  engine?: TeacherEngine;
  /**
   * Where the teacher comes from (default: the kit recipe for `dataset`, `scale`, `seed`): a
   * {@link TeacherSource} or its string form (folder path, endpoint URL, dataset:model:scale[:seed]).
   * An HTTP endpoint answers labels only: the KD row (probs) is then left out unless asked for, and
   * asking for it is a `TeacherAccessError`.
   */
  teacher?: TeacherSource | string;
}

/** One table row. */
export interface Db3Row {
  method: Db3TableMethod | "teacher";
  /** What the method asks the teacher for. */
  access: "label" | "probs" | "none" | "train";
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
  /** Labeling seconds computed in this call (cached chunks excluded; BD inside an MBD run: pro rata). */
  labelSeconds: number;
  trainSeconds: number;
  /** Paper number (percent) when table B has one (unverified secondary source), else null. */
  paperAcc: number | null;
}

/** Everything {@link runDb3Table} produced. */
export interface Db3TableResult {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
  /** Test images the accuracies are measured on. */
  testN: number;
  rows: Db3Row[];
  settings: Db3Settings;
  /**
   * The teacher: kit spec (null for a TF.js folder or an endpoint), name, test accuracy (from the
   * recipe's metadata, else measured here through labels on the test images) and source.
   */
  teacher: { spec: ModelSpec | null; name: string; testAcc: number; source: string };
  /** The transfer set. */
  samples: LabeledData;
  /** Distances by method (SD, BD, MBD). */
  distances: Partial<Record<"sd" | "bd" | "mbd", Db3Distances>>;
  /** Soft labels by method. */
  softLabels: Partial<Record<"sd" | "bd" | "mbd", SoftLabels>>;
  /** Run records (saved unless `save: false`). */
  records: RunRecord[];
}

/** Table-B number (unverified secondary source) for a student row, else null. */
function paperAccOf(dataset: DatasetName, m: Db3TableMethod): number | null {
  const key = m === "kd" ? "kd" : m === "mbd" ? "db3-mbd" : null;
  return tableBRows(dataset).find((r) => r.key === key)?.studentAcc.mean ?? null;
}

/** 8 hex digits of FNV-1a over a string (names cache folders by their settings). */
function shortHash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** Ledger images over phases whose name starts with `prefix`. */
function phaseImages(l: LedgerSnapshot | null, prefix: string): number {
  if (!l) return 0;
  let s = 0;
  for (const [name, e] of Object.entries(l.byPhase)) {
    if (name.startsWith(prefix)) s += e.images.label + e.images.probs;
  }
  return s;
}

/**
 * Train one student on the transfer set; `targets` null = CE only. `epochTestLimit` (default
 * `settings.student.epochTestLimit`, else all) test images are scored after every epoch for the
 * best-epoch number (`bestTestOn` says how many; 0: none, no best-epoch number); the final accuracy is
 * always scored on the whole test set. Every-epoch scoring of 10,000 MNIST test images costs more
 * than training on a few hundred images.
 */
export async function trainDb3Student(
  samples: LabeledData,
  targets: Float32Array | null,
  keep: Int32Array | null,
  settings: Db3Settings,
  test: LabeledData,
  seed: number,
  label: string,
  epochTestLimit?: number,
): Promise<
  {
    model: tfl.LayersModel;
    testAcc: number;
    bestTestAcc: number | null;
    bestTestOn: number;
    seconds: number;
    n: number;
  }
> {
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

/**
 * Test accuracy of a teacher the kit did not train, measured through labels (phase "teacher.test", a
 * ledger of its own: these queries are not part of any student's transfer set).
 */
async function labelAccuracy(teacher: OpenTeacher, test: LabeledData): Promise<number> {
  const n = test.y.length;
  const { labels } = await (await teacher.labelOracle()).labels(test.x, n, { phase: "teacher.test" });
  return labels.reduce((s, v, i) => s + (v === test.y[i] ? 1 : 0), 0) / n;
}

/** Run the DB3 table (see the module doc). */
export async function runDb3Table(opts: Db3TableOptions): Promise<Db3TableResult> {
  const { dataset, scale, seed } = opts;
  const source = parseTeacherSource(opts.teacher, { dataset, scale, seed });
  const labelOnly = source.kind === "http";
  // A label-only endpoint cannot answer KD's probabilities: its row is left out unless asked for.
  const methods = opts.methods ?? DB3_TABLE_METHODS.filter((m) => !(labelOnly && m === "kd"));
  const settings = { ...db3Settings(scale, dataset), ...opts.settings };
  const experiment = opts.experiment ?? `db3-${dataset}`;
  await initBackend();
  const trainSet = await loadDataset(dataset, "train");
  const test = await loadDataset(dataset, "test", settings.testLimit ? { limit: settings.testLimit } : {});
  const samples = settings.samplesPerClass > 0
    ? stratifiedSubset(trainSet, settings.samplesPerClass, seed)
    : trainSet;
  const streams = makeClassStreams(trainSet, seed);
  const n = samples.y.length;
  const cacheRoot = opts.cacheDir === false ? undefined : opts.cacheDir ?? `${repoRoot()}/data/db3`;
  const teacher = await openTeacher(source, {
    need: methods.includes("kd") ? "probs" : "label",
    method: methods.includes("kd") ? "DB3 table row kd (standard KD)" : "DB3",
    expect: { inputShape: samples.shape.slice(1), numClasses: samples.numClasses },
    workers: opts.workers,
    engine: opts.engine,
  });
  const oracleEngine = teacher.engine;
  // The teacher's fingerprint (weights + topology) and the engine are part of the key: a retrained or
  // swapped teacher never resumes another's labels, and native and wasm answers may differ within
  // ~1e-5 of a boundary, so cached labels are never mixed across engines under one record.
  const teacherId = `${teacher.fingerprint}/${oracleEngine.engine}`;
  const runKey = `${dataset}-${scale}-s${seed}-n${n}-${
    shortHash(
      JSON.stringify([teacher.spec ?? teacher.name, settings.sd, settings.bd, settings.mbd, teacherId]),
    )
  }`;
  const meta = teacher.meta;
  const teacherTestAcc = meta ? meta.testAcc : await labelAccuracy(teacher, test);
  const rows: Db3Row[] = [{
    method: "teacher",
    access: meta ? "train" : "label",
    testAcc: teacherTestAcc,
    bestTestAcc: meta?.bestTestAcc ?? null,
    bestTestOn: meta?.bestTestAcc === undefined ? 0 : meta.testImages,
    queriesPerSample: 0,
    flagged: 0,
    budgetCut: 0,
    trainedOn: meta?.trainImages ?? 0,
    labelSeconds: 0,
    trainSeconds: meta?.wallTimeSec ?? 0,
    paperAcc: null,
  }];
  const distances: Db3TableResult["distances"] = {};
  const softLabels: Db3TableResult["softLabels"] = {};
  const records: RunRecord[] = [];
  const baseConfig = {
    teacher: teacher.name,
    teacherSource: recordableSource(source),
    teacherTestAcc,
    samples: n,
    settings,
    softLabels: opts.softLabels ?? {},
    oracleEngine,
  };
  try {
    // Labeling. MBD starts from BD, so one MBD run also yields the BD distances (and BD's queries
    // are its "bd.*" phases).
    const needMbd = methods.includes("mbd");
    if (needMbd || methods.includes("bd")) {
      const method = needMbd ? "mbd" : "bd";
      const d = await labelDistances(await teacher.labelOracle(), samples, streams, {
        method,
        bd: settings.bd,
        mbd: { ...settings.mbd, seed },
        chunkSize: method === "mbd" ? settings.chunk.mbd : settings.chunk.bd,
        cacheDir: cacheRoot ? `${cacheRoot}/${runKey}/${method}` : undefined,
        teacher: teacherId,
        progress: `db3 ${method} labels`,
      });
      distances[method] = d;
      if (needMbd) {
        const bdCut = d.bdExhausted ?? d.exhausted;
        distances.bd = {
          ...d,
          method: "bd",
          distances: d.bdDistances!,
          snapshots: undefined,
          exhausted: bdCut,
          budgetCut: Int32Array.from(bdCut.keys()).filter((i) => bdCut[i] === 1),
        };
      }
    }
    if (methods.includes("sd")) {
      distances.sd = await labelDistances(null, samples, streams, {
        method: "sd",
        sd: settings.sd,
        progress: false,
      });
    }
    for (const m of methods) {
      const handle = startRun({
        experiment,
        method: `db3-${m}`,
        dataset,
        scale,
        seed,
        config: {
          ...baseConfig,
          method: m,
          // Transfer-set indices whose distances a query budget cut short (BD/MBD).
          ...(distances[m as Db3Method]
            ? { budgetCutIds: Array.from(distances[m as Db3Method]!.budgetCut) }
            : {}),
        },
      });
      let targets: Float32Array | null = null, keep: Int32Array | null = null;
      let queries = 0, flagged = 0, labelSeconds = 0;
      let budgetCut: Int32Array = new Int32Array(0);
      let ledger: unknown = undefined;
      if (m === "kd") {
        const t0 = performance.now();
        const po = teacher.probsOracle();
        const p = await po.probs(samples.x, n, {
          phase: "kd.probs",
          sampleIds: Int32Array.from({ length: n }, (_, i) => i),
        });
        targets = Float32Array.from(p, (v) => Math.log(Math.max(v, 1e-38)));
        labelSeconds = (performance.now() - t0) / 1000;
        queries = 1;
        ledger = po.ledger.snapshot();
      } else if (m !== "ce") {
        const d = distances[m]!;
        const s = softLabelsFromDistances(d.distances, samples.y, samples.numClasses, {
          ...opts.softLabels,
          teacherLabels: d.teacherLabels,
          exhausted: d.exhausted,
        });
        softLabels[m] = s;
        budgetCut = s.budgetCut;
        targets = s.z;
        keep = s.keep;
        flagged = s.flagged.length;
        labelSeconds = d.seconds;
        if (m === "sd") queries = 0;
        else if (m === "bd") {
          queries = phaseImages(d.ledger, "bd.") / n;
          // From an MBD run: BD's share of the time, pro rata to its queries.
          if (d.ledger && d.ledger.totals.images.label > 0) {
            labelSeconds = d.seconds * (queries * n) / d.ledger.totals.images.label;
          }
        } else queries = (d.ledger?.totals.images.label ?? 0) / n;
        ledger = d.ledger ?? undefined;
      }
      const st = await trainDb3Student(
        samples,
        targets,
        keep,
        settings,
        test,
        seed,
        `student ${m}`,
      );
      st.model.dispose();
      const paperAcc = paperAccOf(dataset, m);
      rows.push({
        method: m,
        access: m === "kd" ? "probs" : m === "ce" || m === "sd" ? "none" : "label",
        testAcc: st.testAcc,
        bestTestAcc: st.bestTestAcc,
        bestTestOn: st.bestTestOn,
        queriesPerSample: queries,
        flagged,
        budgetCut: budgetCut.length,
        trainedOn: st.n,
        labelSeconds,
        trainSeconds: st.seconds,
        paperAcc,
      });
      const rec = handle.finish({
        testAcc: st.testAcc,
        // No best epoch when no test images were scored per epoch: left out, never NaN.
        ...(st.bestTestAcc != null ? { bestTestAcc: st.bestTestAcc } : {}),
        teacherTestAcc,
        queriesPerSample: queries,
        flagged,
        budgetCut: budgetCut.length,
        trainedOn: st.n,
        labelSeconds,
        trainSeconds: st.seconds,
      }, {
        ledger,
        notes: budgetCut.length > 0
          ? [
            settings.note,
            `${budgetCut.length} transfer image(s) have budget-cut distances (best-so-far): indices ${
              Array.from(budgetCut).join(", ")
            }`,
          ]
          : [settings.note],
      });
      records.push(rec);
      if (opts.save !== false) await saveRun(rec);
    }
  } finally {
    teacher.close();
  }
  return {
    dataset,
    scale,
    seed,
    testN: test.y.length,
    rows,
    settings,
    teacher: {
      spec: teacher.spec,
      name: teacher.name,
      testAcc: teacherTestAcc,
      source: describeTeacherSource(source),
    },
    samples,
    distances,
    softLabels,
    records,
  };
}
