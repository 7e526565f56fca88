/**
 * Bring your own teacher, end to end: a teacher loaded from TF.js model files, served over HTTP as a
 * label-only endpoint in its own process, distilled through the remote oracle with DB3-BD, beside the
 * same teacher behind the in-process label oracle.
 *
 * `runByotDistillation({scale, seed})`:
 * 1. exports the kit's cached MNIST teacher for the scale as a TF.js LayersModel folder, then rewrites
 *    it as a PyTorch-style export (`exportChannelsFirst`: NCHW input on a [0,255] scale normalised
 *    with MNIST's mean/std, channels-first layers; `data/byot/<key>/foreign/`) and loads that with
 *    `loadTeacher` and the matching input adapter — the path a model trained elsewhere takes —
 *    checking it labels the test images as the kit teacher does;
 * 2. starts `tools/serve.ts` on the foreign folder as it is, in a child process (both protocols,
 *    loopback): the endpoint expects NCHW normalised tensors, and the remote oracle's client-side
 *    adapter produces them;
 * 3. labels the DB3 transfer set with BD (the scale's DB3 settings) three times, each oracle opened
 *    from a teacher source (`openTeacher`, the path every experiment's `teacher` parameter takes):
 *    in-process (the folder with its adapter), over HTTP with an empty label cache (every query paid), and over HTTP again on
 *    the same cache (a resumed or repeated run: nothing paid); the HTTP distances must equal the
 *    in-process ones exactly;
 * 4. trains the DB3 student on the HTTP soft labels and records the run (ledger included).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { loadDataset, stratifiedSubset } from "../data/mod.ts";
import { repoRoot } from "../util/paths.ts";
import { labelDistances } from "../db3/label_run.ts";
import { softLabelsFromDistances } from "../db3/soft_labels.ts";
import { makeClassStreams } from "../db3/streams.ts";
import { type Db3Settings, db3Settings, trainDb3Student } from "./db3.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { type LabelOracle, labelOracle } from "../oracle/oracle.ts";
import { type RunRecord, saveRun, startRun } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import type { InputAdapterOptions } from "../teachers/adapters.ts";
import { exportChannelsFirst } from "../teachers/foreign.ts";
import { loadTeacher, saveTeacherFolder } from "../teachers/load.ts";
import { getTeacher } from "../train/teachers.ts";
import { RemoteLabelOracle, type RemoteUsage } from "../remote/oracle.ts";
import { openTeacher, type OpenTeacherOptions } from "./open_teacher.ts";
import type { TeacherSource } from "./teacher_source.ts";
import type { Protocol } from "../remote/protocols.ts";
import { spawnServer } from "../remote/spawn.ts";

/** How the PyTorch-style export expects its input: NCHW, [0,255], MNIST mean/std (0.1307, 0.3081 · 255). */
export const FOREIGN_INPUT: InputAdapterOptions = {
  layout: "NCHW",
  range: [0, 255],
  mean: [33.33],
  std: [78.57],
};

/** Options of {@link runByotDistillation}. */
export interface ByotOptions {
  scale: Scale;
  seed: number;
  /** Wire protocol for the distillation (default "kserve-v2"). */
  protocol?: Protocol;
  /** KServe v2 binary tensor extension (default true; the kit's server accepts it). */
  binary?: boolean;
  /** Images per HTTP request (default 512) and requests in flight (default 4). */
  batchSize?: number;
  concurrency?: number;
  /** Override parts of the scale's DB3 settings (samples per class, BD options, student). */
  settings?: Partial<Db3Settings>;
  /** Working folder (default `<repo>/data/byot/<key>`); the label cache under it starts empty. */
  dir?: string;
  /** Save a run record (default true). */
  save?: boolean;
}

/** One labeling run of the comparison. */
export interface ByotRunRow {
  oracle: string;
  /** Label queries the BD searches asked. */
  queries: number;
  /** Queries answered by the teacher (and booked in the ledger). */
  paid: number;
  cacheHits: number;
  failedAttempts: number;
  httpRequests: number;
  seconds: number;
  queriesPerSec: number;
}

/** Everything the notebook shows. */
export interface ByotResult {
  settings: Db3Settings;
  protocol: Protocol;
  /** Protocol as sent, e.g. "kserve-v2 binary". */
  wire: string;
  teacher: {
    folder: string;
    files: string[];
    modelInputShape: (number | null)[];
    generatedBy: string | null;
    input: InputAdapterOptions;
    kitTestAcc: number;
    /** Fraction of test images the file teacher labels as the kit teacher does. */
    agreement: number;
    testImages: number;
  };
  samples: number;
  rows: ByotRunRow[];
  /** True when the HTTP distances (both runs) equal the in-process ones exactly. */
  sameDistances: boolean;
  /**
   * Largest |d_http − d_in-process| (the client adapts inputs on the CPU, the in-process teacher in tf
   * ops; a float32 rounding difference can move a boundary by about the bisection tolerance).
   */
  maxDistanceDiff: number;
  /** Ledger of the first HTTP run (paid queries only). */
  ledger: LedgerSnapshot;
  usage: { first: RemoteUsage; rerun: RemoteUsage };
  server: { url: string; requests: number; answeredImages: number; byOutcome: Record<string, number> };
  student: { testAcc: number; trainedOn: number; epochs: number; seconds: number };
  record: RunRecord;
}

async function labelTest(model: tfl.LayersModel, x: Float32Array, n: number): Promise<Int32Array> {
  return (await labelOracle(model).labels(x, n, { phase: "check" })).labels;
}

/**
 * The settings note of this experiment, derived from what it runs: BD labels only (no SD, no MBD),
 * the transfer-set size, BD's candidate count and the student's recipe against the reference.
 */
export function byotNote(settings: Db3Settings, numClasses = 10): string {
  const per = settings.samplesPerClass;
  const images = per > 0
    ? `${(per * numClasses).toLocaleString("en-US")} images (${per}/class)`
    : "the whole training set";
  const cand = settings.bd.candidates ?? 201;
  const st = settings.student;
  const perEpoch = st.epochTestLimit ?? 0;
  const test = settings.testLimit > 0 ? `the first ${settings.testLimit.toLocaleString("en-US")}` : "all";
  return `BD labels only (SD and MBD are not run here): ${images}, BD ${cand} candidates` +
    `${
      cand === 201 ? " (as the reference)" : " instead of 201"
    }; student ${st.model}, ${st.epochs} epochs, batch ` +
    `${st.batchSize}${
      st.batchSize === 512 ? "" : " instead of 512"
    }; accuracy after the last epoch on ${test} ` +
    `test images${perEpoch > 0 ? `, best epoch on the first ${perEpoch.toLocaleString("en-US")}` : ""}`;
}

/** Run the comparison (see the module doc). */
export async function runByotDistillation(opts: ByotOptions): Promise<ByotResult> {
  const { scale, seed } = opts;
  const protocol = opts.protocol ?? "kserve-v2";
  const binary = protocol === "kserve-v2" && opts.binary !== false;
  const wire = `${protocol}${protocol === "kserve-v2" ? (binary ? " binary" : " JSON") : ""}`;
  const merged = { ...db3Settings(scale, "mnist"), ...opts.settings };
  // The note describes what this run does (BD only), not the DB3 table's SD/BD/MBD settings.
  const settings: Db3Settings = { ...merged, note: opts.settings?.note ?? byotNote(merged) };
  await initBackend();
  const kit = await getTeacher({ dataset: "mnist", scale, seed });
  const key = `mnist-${kit.spec.name}-${scale}-s${seed}`;
  const dir = opts.dir ?? `${repoRoot()}/data/byot/${key}`;
  await saveTeacherFolder(kit.model, `${dir}/tfjs`);
  const folder = `${dir}/foreign`;
  await exportChannelsFirst(`${dir}/tfjs`, folder, FOREIGN_INPUT);

  const test = await loadDataset("mnist", "test", settings.testLimit ? { limit: settings.testLimit } : {});
  const fileTeacher = await loadTeacher(folder, { input: FOREIGN_INPUT, expect: test });
  const nTest = Math.min(test.y.length, 2000);
  const xt = test.x.subarray(0, nTest * fileTeacher.inputShape.reduce((a, b) => a * b, 1));
  const [a, b] = [await labelTest(kit.model, xt, nTest), await labelTest(fileTeacher.model, xt, nTest)];
  const agreement = a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / nTest;

  const train = await loadDataset("mnist", "train");
  const samples = settings.samplesPerClass > 0
    ? stratifiedSubset(train, settings.samplesPerClass, seed)
    : train;
  const streams = makeClassStreams(train, seed);
  const n = samples.y.length;
  const bd = (oracle: LabelOracle, label: string) =>
    labelDistances(oracle, samples, streams, {
      method: "bd",
      bd: settings.bd,
      chunkSize: n,
      progress: label,
    });

  const handle = startRun({
    experiment: "byot",
    method: `db3-bd-http-${protocol}`,
    dataset: "mnist",
    scale,
    seed,
    config: { settings, protocol, binary, teacherFolder: folder, batchSize: opts.batchSize ?? 512 },
  });
  const rows: ByotRunRow[] = [];
  const row = (oracle: string, queries: number, u: Partial<RemoteUsage>, seconds: number): ByotRunRow => ({
    oracle,
    queries,
    paid: u.paid ?? queries,
    cacheHits: u.cacheHits ?? 0,
    failedAttempts: u.failedAttempts ?? 0,
    httpRequests: u.requests ?? 0,
    seconds,
    queriesPerSec: queries / Math.max(seconds, 1e-9),
  });

  // Both oracles come from teacher sources, as a researcher's own teacher would: the folder (with
  // its input adapter) in this process, then the same folder behind an HTTP endpoint.
  const expect = { inputShape: fileTeacher.inputShape, numClasses: fileTeacher.numClasses };
  const folderTeacher = await openTeacher({ kind: "folder", path: folder, adapter: FOREIGN_INPUT }, {
    expect,
    workers: 0,
  });
  const local = await folderTeacher.labelOracle();
  const t0 = performance.now();
  const dLocal = await bd(local, "BD in-process");
  rows.push(row("in-process", local.ledger.spent, {}, (performance.now() - t0) / 1000));

  // The same teacher over HTTP, in its own process.
  const cacheDir = `${dir}/label-cache`;
  await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
  const server = await spawnServer({ teacher: folder, args: ["--protocol", "both", "--port", "0"] });
  let first: RemoteUsage, rerun: RemoteUsage, ledger: LedgerSnapshot, same: boolean;
  let dRemote;
  let maxDiff = 0;
  try {
    const endpoint: TeacherSource = {
      kind: "http",
      url: server.url,
      protocol,
      model: "teacher",
      adapter: FOREIGN_INPUT,
    };
    const httpOptions: OpenTeacherOptions = {
      expect,
      binary,
      batchSize: opts.batchSize ?? 512,
      concurrency: opts.concurrency ?? 4,
      cacheDir,
    };
    const remoteOracle = async () => {
      const o = await (await openTeacher(endpoint, httpOptions)).labelOracle();
      if (!(o instanceof RemoteLabelOracle)) {
        throw new Error("an HTTP teacher source gave a non-remote oracle");
      }
      return o;
    };
    const remote = await remoteOracle();
    const t1 = performance.now();
    dRemote = await bd(remote, `BD over HTTP (${wire})`);
    first = remote.usage();
    ledger = remote.ledger.snapshot();
    rows.push(row(`HTTP ${wire}`, first.paid + first.cacheHits, first, (performance.now() - t1) / 1000));

    // A second run on the same cache (what an interrupted run's resume costs: nothing).
    const again = await remoteOracle();
    const t2 = performance.now();
    const dAgain = await bd(again, "BD over HTTP, rerun on the cache");
    rerun = again.usage();
    rows.push(
      row(
        `HTTP ${wire}, rerun (cache)`,
        rerun.paid + rerun.cacheHits,
        rerun,
        (performance.now() - t2) / 1000,
      ),
    );
    same = dLocal.distances.every((v, i) =>
      Object.is(v, dRemote!.distances[i]) && Object.is(v, dAgain.distances[i])
    );
    for (let i = 0; i < dLocal.distances.length; i++) {
      const [p, q] = [dLocal.distances[i], dRemote.distances[i]];
      if (Number.isFinite(p) && Number.isFinite(q)) maxDiff = Math.max(maxDiff, Math.abs(p - q));
      else if (!Object.is(p, q)) maxDiff = Infinity;
    }
  } finally {
    await server.close();
  }
  const log = await server.readLog();
  const byOutcome: Record<string, number> = {};
  for (const e of log) byOutcome[e.outcome] = (byOutcome[e.outcome] ?? 0) + 1;
  const answeredImages = log.reduce((s, e) => s + (e.outcome === "answered" ? e.images : 0), 0);

  // Student on the HTTP soft labels.
  const soft = softLabelsFromDistances(dRemote.distances, samples.y, samples.numClasses, {
    teacherLabels: dRemote.teacherLabels,
  });
  const st = await trainDb3Student(
    samples,
    soft.z,
    soft.keep,
    settings,
    test,
    seed,
    "student (HTTP BD labels)",
  );
  st.model.dispose();
  const record = handle.finish({
    testAcc: st.testAcc,
    teacherTestAcc: kit.meta.testAcc,
    agreement,
    queriesPerSample: first.paid / n,
    paid: first.paid,
    cacheHits: first.cacheHits,
    failedAttempts: first.failedAttempts,
    rerunPaid: rerun.paid,
    labelSecondsHttp: rows[1].seconds,
    labelSecondsInProcess: rows[0].seconds,
  }, { ledger, notes: [settings.note] });
  if (opts.save !== false) await saveRun(record);
  fileTeacher.model.dispose();
  folderTeacher.model?.dispose();
  return {
    settings,
    protocol,
    wire,
    teacher: {
      folder,
      files: [...Deno.readDirSync(folder)].map((e) => e.name).sort(),
      modelInputShape: fileTeacher.source.modelInputShape,
      generatedBy: fileTeacher.source.generatedBy,
      input: FOREIGN_INPUT,
      kitTestAcc: kit.meta.testAcc,
      agreement,
      testImages: nTest,
    },
    samples: n,
    rows,
    sameDistances: same,
    maxDistanceDiff: maxDiff,
    ledger,
    usage: { first, rerun },
    server: { url: server.url, requests: log.length, answeredImages, byOutcome },
    student: { testAcc: st.testAcc, trainedOn: st.n, epochs: settings.student.epochs, seconds: st.seconds },
    record,
  };
}
