/**
 * Bring your own teacher (notebook 40) on the runner ("byot"): the spec names two teacher sources for
 * the same model — a folder read in this process (with its input adapter) and a label-only HTTP
 * endpoint serving it — and the plan labels the transfer set with DB3-BD through each (`label`, one
 * unit per source, journaled), then through the endpoint again on the same on-disk label cache
 * (`relabel`: what resuming an interrupted run costs), and trains the DB3 student on the endpoint's
 * labels (`student`). {@link collectByot} reads what the notebook compares.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { loadDataset, stratifiedSubset } from "../data/mod.ts";
import { labelDistances } from "../db3/label_run.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { makeClassStreams } from "../db3/streams.ts";
import { getWeightsFlat } from "../models/io.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { RemoteLabelOracle, type RemoteUsage } from "../remote/oracle.ts";
import { type RunRecord, startRun } from "../results/record.ts";
import type { Family, UnitContext, UnitOutput } from "../runner/family.ts";
import { hashOf } from "../runner/hash.ts";
import { JOURNAL_PREFIX, journaledOracle } from "../runner/journal.ts";
import { levelOf, type RunPlan } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import type { Scale } from "../scale.ts";
import { type ByotConfig, byotStudentSettings } from "./byot_spec.ts";
import { packFiles, readPacked } from "./packed.ts";
import { openTeacher } from "./open_teacher.ts";
import { recordsOfThisExecution } from "./records.ts";
import type { FolderTeacherSource, HttpTeacherSource } from "./teacher_source.ts";

/** The resolved spec of a run (plain JSON). */
export interface ByotSpec {
  family: "byot";
  scale: Scale;
  seed: number;
  settings: ByotConfig;
  /** The same teacher twice: its folder (in this process) and the endpoint serving it. */
  teachers: { folder: FolderTeacherSource; http: Omit<HttpTeacherSource, "token"> };
  /** The endpoint's on-disk label cache (starts empty; the relabel unit finds it full). */
  cacheDir: string;
  /**
   * The folder teacher checked against the kit teacher it was exported from, before the run: the kit
   * teacher's test accuracy and the share of test images both label alike.
   */
  check: { kitTestAcc: number; agreement: number; testImages: number };
}

/** One labeling unit's result. */
export interface ByotLabeling {
  oracle: "in-process" | "http" | "http-rerun";
  distances: Float32Array;
  teacherLabels: Int32Array;
  /** Label queries the BD searches asked, and the oracle's ledger (paid queries only). */
  queries: number;
  ledger: LedgerSnapshot;
  /** Transport and cache counters of an endpoint (null in process). */
  usage: RemoteUsage | null;
  seconds: number;
}

/** The student unit's result. */
export interface ByotStudent {
  testAcc: number;
  trainedOn: number;
  epochs: number;
  seconds: number;
  record: RunRecord;
}

/** The plan: label through each source, relabel through the endpoint, train the student. */
export function byotPlan(spec: ByotSpec, teacherFingerprint: string): RunPlan {
  const labelKeys = (["in-process", "http"] as const).map((oracle) =>
    hashOf({ kind: "byot-label", oracle, spec, fingerprint: teacherFingerprint })
  );
  const res = { cores: 2, memoryMB: 3000, timeMinutes: 120 };
  return {
    family: "byot",
    spec: spec as unknown as Record<string, unknown>,
    teacher: teacherFingerprint,
    levels: [
      {
        name: "label",
        kind: "byot-label",
        keys: labelKeys,
        resources: res,
        deps: [],
        describe: ["BD through the folder teacher, in process", "BD through the HTTP endpoint"],
      },
      {
        name: "relabel",
        kind: "byot-label",
        keys: [hashOf({ kind: "byot-relabel", after: labelKeys[1] })],
        resources: res,
        deps: ["label"],
        describe: ["BD through the endpoint again, on the same label cache"],
      },
      {
        name: "student",
        kind: "byot-student",
        keys: [hashOf({ kind: "byot-student", labels: labelKeys })],
        resources: res,
        deps: ["label", "relabel"],
        describe: ["DB3 student on the endpoint's BD labels"],
      },
    ],
  };
}

/** The transfer set, its class streams and the test set of a spec. */
async function dataOf(spec: ByotSpec) {
  const train = await loadDataset("mnist", "train");
  const samples = spec.settings.samplesPerClass > 0
    ? stratifiedSubset(train, spec.settings.samplesPerClass, spec.seed)
    : train;
  return { train, samples, streams: makeClassStreams(train, spec.seed) };
}

async function labelUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as ByotSpec;
  const which: ByotLabeling["oracle"] = ctx.level.name === "relabel"
    ? "http-rerun"
    : ctx.index === 0
    ? "in-process"
    : "http";
  await initBackend();
  const { samples, streams } = await dataOf(spec);
  const expect = { inputShape: samples.shape.slice(1), numClasses: samples.numClasses };
  const h = spec.settings.http;
  const teacher = which === "in-process"
    ? await openTeacher(spec.teachers.folder, { expect, workers: 0 })
    : await openTeacher(spec.teachers.http, {
      expect,
      binary: h.binary,
      batchSize: h.batchSize,
      concurrency: h.concurrency,
      cacheDir: spec.cacheDir,
    });
  const inner: LabelOracle = await teacher.labelOracle();
  if (which !== "in-process" && !(inner instanceof RemoteLabelOracle)) {
    throw new Error("byot: an HTTP teacher source gave a non-remote oracle");
  }
  const oracle = journaledOracle(inner, `${ctx.workDir}/${JOURNAL_PREFIX}${ctx.attempt}.jsonl`);
  try {
    const t0 = performance.now();
    const d = await labelDistances(oracle, samples, streams, {
      method: "bd",
      bd: spec.settings.bd,
      chunkSize: samples.y.length,
      progress: {
        "in-process": "BD in-process",
        http: "BD over HTTP",
        "http-rerun": "BD over HTTP, rerun on the cache",
      }[which],
    });
    const seconds = (performance.now() - t0) / 1000;
    const usage = inner instanceof RemoteLabelOracle ? inner.usage() : null;
    const r: ByotLabeling = {
      oracle: which,
      distances: d.distances,
      teacherLabels: d.teacherLabels,
      queries: usage ? usage.paid + usage.cacheHits : inner.ledger.spent,
      ledger: inner.ledger.snapshot(),
      usage,
      seconds,
    };
    return { files: packFiles(r, "labels"), done: { queries: r.queries } };
  } finally {
    oracle.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

async function studentUnit(ctx: UnitContext): Promise<UnitOutput> {
  const spec = ctx.plan.spec as unknown as ByotSpec;
  const s = spec.settings;
  const [local, http, rerun] = await labelingsOf(ctx.store);
  await initBackend();
  const { samples } = await dataOf(spec);
  const test = await loadDataset("mnist", "test", s.testLimit ? { limit: s.testLimit } : {});
  const soft = softLabelsFromDistances(http.distances, samples.y, samples.numClasses, {
    teacherLabels: http.teacherLabels,
  });
  const handle = startRun({
    experiment: "byot",
    method: `db3-bd-http-${s.http.protocol}`,
    dataset: "mnist",
    scale: spec.scale,
    seed: spec.seed,
    config: {
      settings: s,
      protocol: s.http.protocol,
      binary: s.http.binary,
      teacherFolder: spec.teachers.folder.path,
      batchSize: s.http.batchSize,
    },
  });
  // Imported when the unit runs: db3.ts runs experiments through the registry, which imports this module.
  const { trainDb3Student } = await import("./db3.ts");
  const st = await trainDb3Student(
    samples,
    soft.z,
    soft.keep,
    byotStudentSettings(s),
    test,
    spec.seed,
    "student (HTTP BD labels)",
  );
  const weights = getWeightsFlat(st.model);
  st.model.dispose();
  const first = http.usage!;
  const record = handle.finish({
    testAcc: st.testAcc,
    teacherTestAcc: spec.check.kitTestAcc,
    agreement: spec.check.agreement,
    queriesPerSample: first.paid / samples.y.length,
    paid: first.paid,
    cacheHits: first.cacheHits,
    failedAttempts: first.failedAttempts,
    rerunPaid: rerun.usage!.paid,
    labelSecondsHttp: http.seconds,
    labelSecondsInProcess: local.seconds,
  }, { ledger: http.ledger, notes: [s.note] });
  const student: ByotStudent = {
    testAcc: st.testAcc,
    trainedOn: st.n,
    epochs: s.student.epochs,
    seconds: st.seconds,
    record,
  };
  return { files: packFiles({ student, weights }, "student"), done: { testAcc: st.testAcc } };
}

/** The three labelings of a run: in-process, HTTP, HTTP rerun on the cache. */
async function labelingsOf(store: RunStore): Promise<ByotLabeling[]> {
  const keys = [...levelOf(store.plan, "label").keys, ...levelOf(store.plan, "relabel").keys];
  const out: ByotLabeling[] = [];
  for (const k of keys) out.push(await readPacked<ByotLabeling>(store, k, "labels"));
  return out;
}

/** What {@link collectByot} reads from a finished run. */
export interface ByotCollected {
  spec: ByotSpec;
  labelings: ByotLabeling[];
  student: ByotStudent;
}

/**
 * Read a finished run: the three labelings (in-process, HTTP, HTTP rerun) and the student (its record
 * as this execution's).
 */
export async function collectByot(store: RunStore): Promise<ByotCollected> {
  const key = levelOf(store.plan, "student").keys[0];
  const { student } = await readPacked<{ student: ByotStudent }>(store, key, "student");
  const [record] = recordsOfThisExecution([student.record], store);
  const spec = store.plan.spec as unknown as ByotSpec;
  return { spec, labelings: await labelingsOf(store), student: { ...student, record } };
}

/** The family as the runner sees it. */
export const BYOT_FAMILY: Family = {
  name: "byot",
  runUnit(kind, ctx) {
    if (kind === "byot-label") return labelUnit(ctx);
    if (kind === "byot-student") return studentUnit(ctx);
    throw new Error(`byot has no unit kind "${kind}" (kinds: byot-label, byot-student)`);
  },
};
