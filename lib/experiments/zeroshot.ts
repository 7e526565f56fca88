/**
 * ZSDB3KD experiments for the notebooks 30 (MNIST), 31 (Fashion-MNIST), 32 (CIFAR-10 subset) and 33
 * (ablations): teacher → label oracle (native engine or worker pool, ledger with per-sample budgets)
 * → pseudo samples (`generatePseudoSamples`, checkpointed under `data/cache/zeroshot/`) → BD soft
 * labels with the pseudo pool as direction stream → KD student with no ground-truth term →
 * final-epoch accuracy on the real test split. The training split is never read (the teacher comes
 * from the cache or is injected; only `getTeacher` trains one when none is cached, before the
 * zero-shot pipeline starts).
 *
 * Every student is compared with the **iteration-0 baseline**: the raw accepted noise of the same
 * run (same samples, same soft-label method and per-sample labeling budget), so the difference is
 * what the optimisation iterations bought. Its cost is the initialisation and labeling queries only.
 *
 * Scales (MNIST / Fashion-MNIST; CIFAR-10 in brackets):
 * - `paper`: the reference — 15 rounds × 200 per class, 40 iterations (snapshots 5…40), untargeted
 *   Sign-OPT K = 200, α 0.2, β 1e-3, 5,000 queries per search, 20 initial directions; BD soft labels
 *   with 201 candidates; students 200 epochs, batch 512, Adam 1e-3 (5e-3).
 * - `laptop` (≤ ~30 min per notebook on 2 cores): 1 round × 50 (5) per class, 10 (4) iterations
 *   with snapshots every 2, one initial direction round, untargeted Sign-OPT K = 100 (20) with a
 *   1,000 (100) query limit per search; students 200 epochs, batch 64. ≈ 9,700 (≈ 500) generation
 *   queries per pseudo sample against the paper's ≈ 2×10^5.
 * - `smoke`: 2 per class, 2 iterations, K = 10, 60 queries per search, 2 student epochs.
 */
import { modelFingerprint } from "../models/fingerprint.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { type DatasetName, type LabeledData, loadDataset, repoRoot } from "../data/mod.ts";
import type { ModelSpec } from "../models/registry.ts";
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import { type LabelOracle, labelOracle } from "../oracle/oracle.ts";
import { engineInfo, type TeacherEngine, teacherPredictor } from "../native/teacher_predictor.ts";
import { tableARow } from "../results/paper.ts";
import { type RunRecord, saveRun, startRun } from "../results/record.ts";
import { atScale, type Scale } from "../scale.ts";
import { evaluate } from "../learn/evaluate.ts";
import { type OpenTeacher, openTeacher, type TeacherEngineInfo } from "./open_teacher.ts";
import { describeTeacherSource, parseTeacherSource, type TeacherSource } from "./teacher_source.ts";
import {
  GENERATE_DEFAULTS,
  type GenerateOptions,
  generatePseudoSamples,
  type PseudoSet,
  snapshotX,
} from "../zeroshot/generate.ts";
import { NOISE_INIT_DEFAULTS } from "../zeroshot/noise_init.ts";
import { formatSeeds } from "../results/seeds.ts";
import { curveVerdict } from "../results/verdict.ts";
import { UNTARGETED_DEFAULTS } from "../zeroshot/untargeted.ts";
import {
  labelPseudoSamples,
  type PseudoBatch,
  type PseudoLabelOptions,
  type PseudoLabels,
  type StudentOptions,
  trainZeroShotStudent,
} from "../zeroshot/pipeline.ts";

/** Concrete settings of one scale. */
export interface ZeroShotSettings {
  generate: Omit<GenerateOptions, "seed" | "checkpointDir" | "progress" | "idOffset">;
  label: Omit<PseudoLabelOptions, "seed" | "cacheDir" | "progress">;
  student: StudentOptions;
  /** Test images for accuracy (0: all). */
  testLimit: number;
  /** Ledger budget per pseudo sample: generation and its own labeling together (never crossed). */
  perSampleBudget: number;
  /** What differs from the paper and why. */
  note: string;
}

type Family = "lenet" | "alexnet";

const familyOf = (d: DatasetName): Family => (d === "cifar10" ? "alexnet" : "lenet");

/** Settings by scale and dataset (see the module doc). */
export function zeroShotSettings(scale: Scale, dataset: DatasetName): ZeroShotSettings {
  const f = familyOf(dataset);
  const student = f === "lenet"
    ? { model: "db3-lenet5-half" as const, lr: 1e-3 }
    : { model: "db3-alexnet-half" as const, lr: 5e-3 };
  return atScale<ZeroShotSettings>(scale, {
    smoke: {
      generate: {
        perClass: 2,
        rounds: 1,
        iterations: 2,
        snapshotAt: [1, 2],
        untargeted: { initDirections: 1, maxInitTries: 20, kGrad: 10, queryLimit: 60 },
        // AlexNet answers ~70 label queries/s on 2 busy cores: fewer draws keep the smoke run short.
        noise: f === "lenet"
          ? { batch: 500, referenceDraws: 500, maxDraws: 3000, walkQueries: 300 }
          : { batch: 200, referenceDraws: 200, maxDraws: 600, walkQueries: 100 },
      },
      label: { method: "bd", bd: { candidates: 11 } },
      student: { ...student, epochs: 2, batchSize: 16, temperature: 20 },
      testLimit: 300,
      perSampleBudget: 1000,
      note: "pipeline check: 2 per class, 2 iterations, K=10 and 60 queries per search, 2 epochs",
    },
    laptop: f === "lenet"
      ? {
        // Direction quality decides: with K=40 and 200 queries per search the steps were near random
        // (students on 1,000-2,000 samples no better than on iteration 0, 3 seeds); with K=100 and
        // 1,000 queries the student beats iteration 0 by ≈ 22 points (notebook 30).
        generate: {
          perClass: 50,
          rounds: 1,
          iterations: 10,
          snapshotAt: [2, 4, 6, 8, 10],
          untargeted: { initDirections: 1, maxInitTries: 200, kGrad: 100, queryLimit: 1000 },
          noise: { batch: 2000, referenceDraws: 4000, maxDraws: 20000 },
        },
        label: { method: "bd", bd: {} },
        student: { ...student, epochs: 200, batchSize: 64, temperature: 20 },
        testLimit: 0,
        perSampleBudget: 14000,
        note: "500 pseudo samples (1 round × 50/class, paper 15 × 200); 10 iterations (paper 40); " +
          "untargeted Sign-OPT K=100 with 1,000 queries per search (paper K=200, 5,000), 1 initial " +
          "direction round (paper 20); BD labels over the 50-image class pools; student batch 64 (paper 512)",
      }
      : {
        generate: {
          perClass: 5,
          rounds: 1,
          iterations: 4,
          snapshotAt: [2, 4],
          untargeted: { initDirections: 1, maxInitTries: 100, kGrad: 20, queryLimit: 100 },
          noise: { batch: 1000, referenceDraws: 2000, maxDraws: 8000 },
        },
        label: { method: "bd", bd: {} },
        student: { ...student, epochs: 100, batchSize: 32, temperature: 20 },
        testLimit: 0,
        perSampleBudget: 2000,
        note: "50 pseudo samples (5/class); 4 iterations; K=20 with 100 queries per search; " +
          "AlexNet queries are ~20× dearer than LeNet's on 2 cores",
      },
    paper: {
      generate: {},
      label: { method: "bd", bd: {} },
      student: { ...student, epochs: 200, batchSize: 512, temperature: 20 },
      testLimit: 0,
      perSampleBudget: 400000,
      note: "reference settings",
    },
  });
}

/** A teacher given directly (tests) instead of `getTeacher`. */
export interface InjectedTeacher {
  model: tfl.LayersModel;
  spec: ModelSpec;
  testAcc?: number;
}

/** Options of {@link runZeroShot}. */
export interface ZeroShotOptions {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
  /** Snapshot iterations to train students on (default: 0 and the last). */
  iterations?: number[];
  /** Override parts of the scale's settings. */
  settings?: Partial<ZeroShotSettings>;
  /**
   * The teacher: a {@link TeacherSource} or its string form (folder, endpoint URL,
   * dataset:model:scale[:seed]; default the kit recipe with `teacherSeed`), or a model given directly.
   */
  teacher?: InjectedTeacher | TeacherSource | string;
  /** Seed of the cached teacher (default 1: one teacher, many pipeline seeds). */
  teacherSeed?: number;
  /** Cache root for generation checkpoints and labels; null disables caching. */
  cacheDir?: string | null;
  /** Save run records (default true). */
  save?: boolean;
  /** Experiment name (default `zsdb3kd-<dataset>`). */
  experiment?: string;
  /** Oracle workers / native threads (default all cores; 0 = the in-process model). */
  workers?: number;
  /** Teacher inference engine (default "auto": native if it builds, else the wasm worker pool). */
  engine?: TeacherEngine;
  /** Show progress bars (default true). */
  progress?: boolean;
}

/** One student of a run. */
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

/** Everything {@link runZeroShot} produced. */
export interface ZeroShotResult {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
  settings: ZeroShotSettings;
  /** Kit spec (null for a TF.js folder or an endpoint), name, test accuracy and source. */
  teacher: { spec: ModelSpec | null; name: string; testAcc: number; source: string };
  set: PseudoSet;
  students: ZeroShotStudentRow[];
  labels: Map<number, PseudoLabels>;
  /** Cumulative generation queries after each iteration (index 0 = initialisation only). */
  generationQueriesAt: number[];
  /** Total teacher label queries of the run (generation + every labeling). */
  totalQueries: number;
  /** Largest spend of one pseudo sample (its generation + one labeling), and the budget. */
  maxSampleSpend: number;
  perSampleBudget: number;
  /** Paper's student accuracy (percent), table A. */
  paperAcc: number | null;
  paperTeacherAcc: number | null;
  /** Generation seconds computed in this call (0 when all of it came from the cache). */
  generationSeconds: number;
  /** What the generation originally cost, resumed work included (`null`: cache predates the field). */
  generationTotalSeconds: number | null;
  /** Iterations taken from the generation cache instead of computed. */
  generationResumedIterations: number;
  records: RunRecord[];
}

function shortHash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** Cache root (env `BKD_ZEROSHOT_CACHE` or `data/cache/zeroshot`). */
export function zeroShotCacheRoot(): string {
  return Deno.env.get("BKD_ZEROSHOT_CACHE") ?? `${repoRoot()}/data/cache/zeroshot`;
}

/** The pseudo set at one iteration, as a labelable batch. */
export function batchAt(set: PseudoSet, iteration: number): PseudoBatch {
  return {
    x: snapshotX(set, iteration),
    y: set.y,
    ids: set.ids,
    imageShape: set.imageShape,
    numClasses: set.numClasses,
  };
}

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

/** Generation queries spent up to iteration k (0 = the initialisation alone). */
function generationQueriesAt(set: PseudoSet): number[] {
  const init = set.init.reduce((a, r) => a + r.queries, 0);
  const out = [init];
  for (const s of set.stats) out.push(out.at(-1)! + s.queries);
  return out;
}

function maxSpend(l: LedgerSnapshot): number {
  let m = 0;
  for (const [id, e] of Object.entries(l.bySample)) if (id !== "-1") m = Math.max(m, e.spent);
  return m;
}

/** The context shared by the runs of one dataset: teacher, inference engine, test split. */
export interface ZeroShotContext {
  /** The teacher: local model (null for an endpoint), kit spec, name, test accuracy, cache identity. */
  teacher: {
    model: tfl.LayersModel | null;
    spec: ModelSpec | null;
    name: string;
    testAcc: number;
    fingerprint: string;
    source: string;
  };
  test: LabeledData;
  /** Which engine answers the oracles (recorded as `oracleEngine` in run configs). */
  engine: TeacherEngineInfo;
  /** A fresh label oracle on the shared teacher, with its own ledger and per-sample budget. */
  oracle(perSampleBudget: number): Promise<LabelOracle>;
  close(): void;
}

function isInjected(t: InjectedTeacher | TeacherSource | string | undefined): t is InjectedTeacher {
  return typeof t === "object" && t !== null && "model" in t;
}

/** Test accuracy of an opened teacher: its recipe metadata, its model, else its labels (an endpoint). */
async function openedTestAcc(t: OpenTeacher, test: LabeledData): Promise<number> {
  if (t.meta) return t.meta.testAcc;
  if (t.model) return await evaluate(t.model, test);
  const n = test.y.length;
  const { labels } = await (await t.labelOracle()).labels(test.x, n, { phase: "teacher.test" });
  return labels.reduce((s, v, i) => s + (v === test.y[i] ? 1 : 0), 0) / n;
}

/**
 * Teacher (cached or injected), inference engine (native, else a wasm worker pool; `workers: 0` = the
 * in-process model) and test split; the training split is never read here.
 */
export async function zeroShotContext(
  dataset: DatasetName,
  scale: Scale,
  opts: {
    teacher?: InjectedTeacher | TeacherSource | string;
    teacherSeed?: number;
    workers?: number;
    engine?: TeacherEngine;
    testLimit?: number;
  },
): Promise<ZeroShotContext> {
  await initBackend();
  const test = await loadDataset(dataset, "test", opts.testLimit ? { limit: opts.testLimit } : {});
  if (!isInjected(opts.teacher)) {
    const source = parseTeacherSource(opts.teacher, { dataset, scale, seed: opts.teacherSeed ?? 1 });
    const o = await openTeacher(source, {
      need: "label",
      method: "ZSDB3KD",
      expect: { inputShape: test.shape.slice(1), numClasses: test.numClasses },
      workers: opts.workers,
      engine: opts.engine,
    });
    return {
      teacher: {
        model: o.model,
        spec: o.spec,
        name: o.name,
        testAcc: await openedTestAcc(o, test),
        fingerprint: o.fingerprint,
        source: describeTeacherSource(source),
      },
      test,
      engine: o.engine,
      oracle: (perSampleBudget) => o.labelOracle(new Ledger({ perSample: perSampleBudget })),
      close: () => o.close(),
    };
  }
  const t = opts.teacher;
  const pool = opts.workers === 0
    ? undefined
    : await teacherPredictor(t.model, t.spec, { workers: opts.workers, engine: opts.engine });
  const testAcc = t.testAcc ?? await evaluate(t.model, test);
  return {
    teacher: {
      model: t.model,
      spec: t.spec,
      name: t.spec.name,
      testAcc,
      fingerprint: modelFingerprint(t.model),
      source: "a model given directly",
    },
    test,
    engine: pool
      ? engineInfo(pool) as unknown as TeacherEngineInfo
      : { engine: "in-process", label: "in-process tfjs model" },
    oracle: (perSampleBudget) =>
      Promise.resolve(labelOracle(pool ?? t.model, { ledger: new Ledger({ perSample: perSampleBudget }) })),
    close: () => pool?.close(),
  };
}

/**
 * One ZSDB3KD run: generate pseudo samples, label the chosen snapshots, train one student on each
 * (see the module doc). Pass `context` to share a teacher and pool across runs.
 */
export async function runZeroShot(
  opts: ZeroShotOptions & { context?: ZeroShotContext },
): Promise<ZeroShotResult> {
  const { dataset, scale, seed } = opts;
  const base = zeroShotSettings(scale, dataset);
  const settings: ZeroShotSettings = { ...base, ...opts.settings };
  const ctx = opts.context ??
    await zeroShotContext(dataset, scale, {
      teacher: opts.teacher,
      teacherSeed: opts.teacherSeed,
      workers: opts.workers,
      engine: opts.engine,
      testLimit: settings.testLimit,
    });
  const experiment = opts.experiment ?? `zsdb3kd-${dataset}`;
  const progress = opts.progress !== false;
  try {
    // The teacher's fingerprint (weights + topology) and the engine bind every cache to the teacher.
    const teacherId = `${ctx.teacher.fingerprint}/${ctx.engine.engine}`;
    const key = `${dataset}-${scale}-s${seed}-${
      shortHash(
        JSON.stringify([
          ctx.teacher.spec ?? ctx.teacher.name,
          teacherId,
          settings.generate,
          settings.perSampleBudget,
          ctx.engine.engine, // native and wasm labels may differ within ~1e-5 of a boundary
          // Defaults too: a changed default must not meet an old checkpoint.
          GENERATE_DEFAULTS,
          UNTARGETED_DEFAULTS,
          NOISE_INIT_DEFAULTS,
        ]),
      )
    }`;
    const root = opts.cacheDir === null ? undefined : opts.cacheDir ?? zeroShotCacheRoot();
    const genOracle = await ctx.oracle(settings.perSampleBudget);
    const set = await generatePseudoSamples(genOracle, {
      ...settings.generate,
      seed,
      checkpointDir: root ? `${root}/${key}/generation` : undefined,
      teacher: teacherId,
      progress: progress ? `zsdb3kd ${dataset} pseudo samples (seed ${seed})` : false,
    });
    const genAt = generationQueriesAt(set);
    const last = set.snapshots.at(-1)!.iteration;
    const iterations = opts.iterations ?? [0, last];
    const students: ZeroShotStudentRow[] = [];
    const labels = new Map<number, PseudoLabels>();
    const records: RunRecord[] = [];
    let totalQueries = set.ledger.totals.spent;
    let maxSampleSpend = maxSpend(set.ledger);
    const paper = tableARow("zsdb3kd", dataset);
    for (const it of iterations) {
      // Each labeling gets its own ledger; a sample's budget there is what its generation left of
      // the per-sample budget, so generation + labeling of one sample never cross it.
      const o = await ctx.oracle(settings.perSampleBudget);
      const genSpend = set.ledger.bySample;
      if (it > 0) {
        for (const id of set.ids) {
          o.ledger.setSampleBudget(id, settings.perSampleBudget - (genSpend[String(id)]?.spent ?? 0));
        }
      }
      const lab = await labelPseudoSamples(o, batchAt(set, it), {
        ...settings.label,
        seed,
        cacheDir: root ? `${root}/${key}/labels-it${it}` : undefined,
        teacher: teacherId,
        progress: progress ? `zsdb3kd soft labels, iteration ${it}` : false,
      });
      labels.set(it, lab);
      const labelSnap = o.ledger.snapshot();
      const labelQueries = labelSnap.totals.spent;
      totalQueries += labelQueries;
      for (const id of set.ids) {
        const g = it > 0 ? genSpend[String(id)]?.spent ?? 0 : 0;
        maxSampleSpend = Math.max(maxSampleSpend, g + (labelSnap.bySample[String(id)]?.spent ?? 0));
      }
      const handle = startRun({
        experiment,
        method: it === 0 ? "zsdb3kd-noise" : "zsdb3kd",
        dataset,
        scale,
        seed,
        config: {
          teacher: ctx.teacher.name,
          teacherSource: ctx.teacher.source,
          teacherTestAcc: ctx.teacher.testAcc,
          iteration: it,
          settings,
          oracleEngine: ctx.engine,
          // Pseudo-sample indices whose distances the per-sample budget cut short.
          budgetCutIds: Array.from(lab.soft.budgetCut),
        },
      });
      const st = await trainZeroShotStudent(batchAt(set, it), lab.soft.z, settings.student, ctx.test, seed, {
        keep: lab.soft.keep,
        label: `student on iteration ${it}`,
      });
      st.model.dispose();
      const generationQueries = it === 0 ? genAt[0] : genAt[it];
      const row: ZeroShotStudentRow = {
        variant: it === 0 ? "noise" : "zsdb3kd",
        iteration: it,
        testAcc: st.testAcc,
        trainedOn: st.trainedOn,
        queries: generationQueries + labelQueries,
        generationQueries,
        labelQueries,
        flagged: lab.soft.flagged.length,
        budgetCut: lab.soft.budgetCut.length,
        trainSeconds: st.seconds,
      };
      students.push(row);
      const rec = handle.finish({
        testAcc: st.testAcc,
        teacherTestAcc: ctx.teacher.testAcc,
        queries: row.queries,
        generationQueries,
        labelQueries,
        pseudoSamples: set.y.length,
        trainedOn: st.trainedOn,
        generationSeconds: set.seconds,
        ...(set.totalSeconds !== null ? { generationTotalSeconds: set.totalSeconds } : {}),
        generationResumedIterations: set.resumedIterations,
        trainSeconds: st.seconds,
        budgetCut: row.budgetCut,
        ...(paper ? { paperStudentAcc: paper.studentAcc[0].mean } : {}),
      }, { ledger: { generation: set.ledger, labeling: labelSnap }, notes: [settings.note] });
      records.push(rec);
      if (opts.save !== false) await saveRun(rec);
    }
    return {
      dataset,
      scale,
      seed,
      settings,
      teacher: {
        spec: ctx.teacher.spec,
        name: ctx.teacher.name,
        testAcc: ctx.teacher.testAcc,
        source: ctx.teacher.source,
      },
      set,
      students,
      labels,
      generationQueriesAt: genAt,
      totalQueries,
      maxSampleSpend,
      perSampleBudget: settings.perSampleBudget,
      paperAcc: paper?.studentAcc[0].mean ?? null,
      paperTeacherAcc: paper?.teacherAcc[0].mean ?? null,
      generationSeconds: set.seconds,
      generationTotalSeconds: set.totalSeconds,
      generationResumedIterations: set.resumedIterations,
      records,
    };
  } finally {
    if (!opts.context) ctx.close();
  }
}

/** Mean and sample standard deviation. */
export function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

/** Several seeds of {@link runZeroShot} on one teacher, and the zsdb3kd-vs-noise summary. */
export async function runZeroShotSeeds(
  opts: Omit<ZeroShotOptions, "seed"> & { seeds: number[] },
): Promise<{
  runs: ZeroShotResult[];
  summary: { variant: string; mean: number; std: number; values: number[]; meanQueries: number }[];
  /**
   * zsdb3kd − noise per seed, and whether the mean gap exceeds both seed-to-seed spreads (false with
   * one seed: there is no spread to beat). `verdict` says it in words for the notebooks.
   */
  gap: { perSeed: number[]; mean: number; spread: number; beatsSpread: boolean; verdict: string };
}> {
  const settings = { ...zeroShotSettings(opts.scale, opts.dataset), ...opts.settings };
  const ctx = await zeroShotContext(opts.dataset, opts.scale, {
    teacher: opts.teacher,
    teacherSeed: opts.teacherSeed,
    workers: opts.workers,
    engine: opts.engine,
    testLimit: settings.testLimit,
  });
  const runs: ZeroShotResult[] = [];
  try {
    for (const seed of opts.seeds) runs.push(await runZeroShot({ ...opts, seed, context: ctx }));
  } finally {
    ctx.close();
  }
  const pick = (v: "zsdb3kd" | "noise") =>
    runs.map((r) => r.students.filter((s) => s.variant === v).sort((a, b) => b.iteration - a.iteration)[0]);
  const summary = (["zsdb3kd", "noise"] as const).map((variant) => {
    const rows = pick(variant);
    const values = rows.map((s) => s.testAcc);
    return { variant, ...meanStd(values), values, meanQueries: meanStd(rows.map((s) => s.queries)).mean };
  });
  const perSeed = runs.map((_, i) => pick("zsdb3kd")[i].testAcc - pick("noise")[i].testAcc);
  const mean = meanStd(perSeed).mean;
  const spread = Math.max(summary[0].std, summary[1].std);
  const beatsSpread = runs.length >= 2 && mean > spread;
  const verdict = runs.length < 2
    ? "not compared with a spread (one seed: run several to measure it)"
    : `${beatsSpread ? "larger" : "not larger"} than the seed-to-seed spread`;
  return { runs, summary, gap: { perSeed, mean, spread, beatsSpread, verdict } };
}

// ---------------------------------------------------------------------------------------------
// Views for the notebooks (plain rows; the notebooks only render them)

/** Result of {@link runZeroShotSeeds}. */
export type ZeroShotSeedsResult = Awaited<ReturnType<typeof runZeroShotSeeds>>;

const pct = (v: number) => 100 * v;

/** Paper vs measured, side by side (accuracies in percent; measured = mean ± std over seeds). */
export function paperVsMeasuredRows(r: ZeroShotSeedsResult): Record<string, string | number | null>[] {
  const run0 = r.runs[0];
  const fmt = (m: { values: number[] }) => formatSeeds(m.values.map(pct));
  const teacher = meanStd(r.runs.map((x) => x.teacher.testAcc));
  const z = r.summary.find((s) => s.variant === "zsdb3kd")!;
  const n = r.summary.find((s) => s.variant === "noise")!;
  const last = run0.students.filter((s) => s.variant === "zsdb3kd").at(-1)?.iteration ?? 0;
  return [
    {
      model: `teacher ${run0.teacher.name}`,
      "paper (%)": run0.paperTeacherAcc,
      "measured (%)": `${pct(teacher.mean).toFixed(2)} (one teacher)`,
      "teacher queries (mean per seed)": null,
    },
    {
      model: `ZSDB3KD student, iteration ${last}`,
      "paper (%)": run0.paperAcc,
      "measured (%)": fmt(z),
      "teacher queries (mean per seed)": Math.round(z.meanQueries),
    },
    {
      model: "student on iteration-0 noise (same samples, same labeling)",
      "paper (%)": null,
      "measured (%)": fmt(n),
      "teacher queries (mean per seed)": Math.round(n.meanQueries),
    },
  ];
}

/**
 * The generation time as stated in tables: the original cost, and whether this run computed it or
 * took it from the cache ("41.2 s (from cache; 0.0 s now)"), so a cached rerun never shows "0.00 s".
 */
export function generationTime(run: {
  generationSeconds: number;
  generationTotalSeconds: number | null;
  generationResumedIterations: number;
}): string {
  const total = run.generationTotalSeconds;
  if (run.generationResumedIterations === 0) return `${run.generationSeconds.toFixed(1)} s`;
  if (total === null) {
    return `from cache (original cost not stored; ${run.generationSeconds.toFixed(1)} s now)`;
  }
  return `${total.toFixed(1)} s (from cache; ${run.generationSeconds.toFixed(1)} s now)`;
}

/** One row per seed: both students and the total queries of the run. */
export function perSeedRows(r: ZeroShotSeedsResult): Record<string, number | string>[] {
  return r.runs.map((run) => {
    const z = run.students.filter((s) => s.variant === "zsdb3kd").at(-1)!;
    const n = run.students.find((s) => s.variant === "noise")!;
    return {
      seed: run.seed,
      "zsdb3kd (%)": pct(z.testAcc),
      "noise (%)": pct(n.testAcc),
      "gap (points)": pct(z.testAcc - n.testAcc),
      "pseudo samples": run.set.y.length,
      "total teacher queries": run.totalQueries,
      "max queries of one sample": run.maxSampleSpend,
      "per-sample budget": run.perSampleBudget,
      "generation time": generationTime(run),
    };
  });
}

/** What each class's initialisation cost (first round). */
export function initCostRows(set: PseudoSet): Record<string, number | string | boolean | null>[] {
  const r = set.init[0];
  return r.reached.map((reached, c) => ({
    class: c,
    reached,
    "reference noise": r.fromDraws[c].reference,
    "smooth noise": r.fromDraws[c].smooth,
    strokes: r.fromDraws[c].strokes,
    walked: r.walked[c],
    "shared draws until first": r.drawsToFirst[c],
    "shared draws until full": r.drawsWhenFilled[c],
    "walk queries (own)": r.walkQueries[c],
    "share of reference draws (%)": pct(r.drawLabels.reference[c] / Math.max(1, r.draws.reference)),
  }));
}

/** Label queries by ledger phase. */
export function phaseRows(l: LedgerSnapshot): { phase: string; queries: number }[] {
  return Object.entries(l.byPhase).map(([phase, e]) => ({ phase, queries: e.images.label }));
}

/** One pseudo sample per class across the kept iterations: rows = classes, columns = iterations. */
export function iterationGrid(
  set: PseudoSet,
  pick = 0,
): { x: Float32Array; shape: number[]; labels: string[]; cols: number } {
  const dim = set.imageShape.reduce((a, b) => a * b, 1);
  const cols = set.snapshots.length;
  const x: number[] = [];
  const labels: string[] = [];
  let rows = 0;
  for (let c = 0; c < set.numClasses; c++) {
    const members = [...set.y.keys()].filter((i) => set.y[i] === c);
    if (members.length === 0) continue;
    const i = members[Math.min(pick, members.length - 1)];
    for (const s of set.snapshots) {
      x.push(...s.x.subarray(i * dim, (i + 1) * dim));
      labels.push(`${c} · it ${s.iteration}`);
    }
    rows++;
  }
  return { x: Float32Array.from(x), shape: [rows * cols, ...set.imageShape], labels, cols };
}

/** Pseudo samples of one iteration, `perClass` per class, class-major. */
export function classGrid(
  set: PseudoSet,
  iteration: number,
  perClass: number,
): { x: Float32Array; shape: number[]; labels: number[] } {
  const sub = perClassSubset(batchAt(set, iteration), perClass);
  return { x: sub.x, shape: [sub.y.length, ...set.imageShape], labels: Array.from(sub.y) };
}

/**
 * Distance to the nearest boundary found for the samples of iteration 0 (the raw noise) and of the
 * last measured iteration (histogram rows). `distances[k]` is measured on the iteration-k samples,
 * before step k + 1, so the labels use the same iteration numbers as the text and the accuracy curve.
 */
export function distanceRows(set: PseudoSet): { distance: number; when: string }[] {
  const rows: { distance: number; when: string }[] = [];
  const n = set.distances.length;
  if (n === 0) return rows;
  const first = set.distances[0], last = set.distances[n - 1];
  for (const d of first) if (Number.isFinite(d)) rows.push({ distance: d, when: "iteration 0 (raw noise)" });
  if (n === 1) return rows;
  for (const d of last) if (Number.isFinite(d)) rows.push({ distance: d, when: `iteration ${n - 1}` });
  return rows;
}

/** Accuracy against iteration and against queries per pseudo sample, every run and student. */
export function accuracyRows(runs: ZeroShotResult[]): Record<string, number | string>[] {
  return runs.flatMap((run) =>
    run.students.map((s) => ({
      seed: run.seed,
      series: `seed ${run.seed}`,
      iteration: s.iteration,
      "accuracy (%)": pct(s.testAcc),
      "queries per pseudo sample": s.queries / Math.max(1, run.set.y.length),
    }))
  );
}

/**
 * A computed comment on the accuracy-vs-iteration curve of the ZSDB3KD students (mean over the
 * runs per iteration): flat, rising or falling, and every step against that direction named (e.g.
 * a dip at iteration 2). A step counts when it exceeds 1 point and, with `testN` test images, twice
 * the standard error of a difference of two test accuracies. Compared with the paper's figure,
 * which shows accuracy rising with the iterations.
 */
export function iterationVerdict(runs: ZeroShotResult[], testN?: number): string {
  const by = new Map<number, number[]>();
  for (const run of runs) {
    for (const s of run.students) {
      if (s.variant !== "zsdb3kd" && !(s.variant === "noise" && s.iteration === 0)) continue;
      by.set(s.iteration, [...(by.get(s.iteration) ?? []), pct(s.testAcc)]);
    }
  }
  const points = [...by.entries()].map(([x, v]) => ({ x, y: v.reduce((a, b) => a + b, 0) / v.length }));
  if (points.length < 2) return "Fewer than two iterations with a student: no curve to judge.";
  const p = points.reduce((a, b) => a + b.y, 0) / points.length / 100;
  const noise = testN ? 100 * 2 * Math.sqrt((2 * p * (1 - p)) / testN) : 0;
  const v = curveVerdict(points, {
    what: `student accuracy (${runs.length === 1 ? "one seed" : `mean of ${runs.length} seeds`})`,
    xName: "iteration",
    minEffect: Math.max(1, noise),
  });
  const paper = v.trend === "rising"
    ? v.reversals.length === 0
      ? " Like the paper's figure, accuracy rises with the iterations."
      : " The paper's figure rises with the iterations; this run rises overall but not at every step."
    : " The paper's figure shows accuracy rising with the iterations; this run does not reproduce that.";
  return v.sentence + paper;
}

/** Options of {@link runPerClassSweep}. */
export interface PerClassSweepOptions {
  run: ZeroShotResult;
  /** Pseudo samples per class to try (each ≤ the run's per-class count). */
  counts: number[];
  /** Iterations to train on (default: 0 and the last). */
  iterations?: number[];
  context: ZeroShotContext;
  progress?: boolean;
}

/**
 * Accuracy vs pseudo samples per class: the first m samples of every class of a run, relabelled with
 * their own pool (fresh ledger, budgets as in the run), one student each.
 */
export async function runPerClassSweep(o: PerClassSweepOptions): Promise<Record<string, number | string>[]> {
  const { run, context } = o;
  const last = run.set.snapshots.at(-1)!.iteration;
  const rows: Record<string, number | string>[] = [];
  for (const it of o.iterations ?? [0, last]) {
    for (const m of o.counts) {
      const b = perClassSubset(batchAt(run.set, it), m);
      const oracle = await context.oracle(run.perSampleBudget);
      if (it > 0) {
        for (const id of b.ids) {
          oracle.ledger.setSampleBudget(
            id,
            run.perSampleBudget - (run.set.ledger.bySample[String(id)]?.spent ?? 0),
          );
        }
      }
      const lab = await labelPseudoSamples(oracle, b, {
        ...run.settings.label,
        seed: run.seed,
        progress: o.progress === false ? false : `soft labels, ${m}/class, iteration ${it}`,
      });
      const st = await trainZeroShotStudent(b, lab.soft.z, run.settings.student, context.test, run.seed, {
        keep: lab.soft.keep,
        label: `student ${m}/class, iteration ${it}`,
      });
      st.model.dispose();
      rows.push({
        series: it === 0 ? "iteration 0 (noise)" : `iteration ${it}`,
        "pseudo samples per class": m,
        "accuracy (%)": pct(st.testAcc),
        "label queries": oracle.ledger.spent,
      });
    }
  }
  return rows;
}
