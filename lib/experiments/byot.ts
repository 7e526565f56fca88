/**
 * Bring your own teacher, end to end: a teacher loaded from TF.js model files, served over HTTP as a
 * label-only endpoint in its own process, distilled through the remote oracle with DB3-BD, beside the
 * same teacher behind the in-process label oracle.
 *
 * `runByotDistillation({scale, seed})` (settings: `byot_spec.ts`; the labeling and the student run as units
 * of the "byot" family, `byot_units.ts`; the views are in `lib/views/byot.ts`):
 * 1. exports the kit's cached MNIST teacher for the scale as a TF.js LayersModel folder, then rewrites
 *    it as a PyTorch-style export (`exportChannelsFirst`: NCHW input on a [0,255] scale normalised
 *    with MNIST's mean/std, channels-first layers; `data/byot/<key>/foreign/`) and loads that with
 *    `loadTeacher` and the matching input adapter — the path a model trained elsewhere takes —
 *    checking it labels the test images as the kit teacher does;
 * 2. starts `tools/serve.ts` on the foreign folder as it is, in a child process (both protocols,
 *    loopback): the endpoint expects NCHW normalised tensors, and the remote oracle's client-side
 *    adapter produces them;
 * 3. labels the DB3 transfer set with BD (BD only: the settings table of `byot_spec.ts`) three times,
 *    each oracle opened from a teacher source in the run's spec (`openTeacher`, the path every
 *    experiment's `teacher` parameter takes): in-process (the folder with its adapter), over HTTP with
 *    an empty label cache (every query paid), and over HTTP again on the same cache (a resumed or
 *    repeated run: nothing paid); the HTTP distances must equal the in-process ones exactly;
 * 4. trains the DB3 student on the HTTP soft labels and records the run (ledger included).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { initBackend } from "../backend.ts";
import { loadDataset } from "../data/mod.ts";
import { labelOracle } from "../oracle/oracle.ts";
import { saveRun } from "../results/record.ts";
import type { Scale } from "../scale.ts";
import type { InputAdapterOptions } from "../teachers/adapters.ts";
import { exportChannelsFirst } from "../teachers/foreign.ts";
import { loadTeacher, saveTeacherFolder } from "../teachers/load.ts";
import { getTeacher } from "../train/teachers.ts";
import { spawnServer } from "../remote/spawn.ts";
import { repoRoot } from "../util/paths.ts";
import { type ByotConfig, type ByotSettings, byotSettings } from "./byot_spec.ts";
import { type ByotLabeling, byotPlan, type ByotSpec, type ByotStudent, collectByot } from "./byot_units.ts";
import { openTeacher } from "./open_teacher.ts";
import { type LocalExecutor, runExperiment } from "./run.ts";
import type { DeepPartial } from "./settings.ts";
import type { FolderTeacherSource } from "./teacher_source.ts";

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
  /** Laid over the scale's settings (transfer set, BD, student, the endpoint's protocol and batching). */
  settings?: DeepPartial<ByotSettings>;
  /** Working folder (default `<repo>/data/byot/<key>`); the label cache under it starts empty. */
  dir?: string;
  /** Save the run record (default true). */
  save?: boolean;
  /** Executor (default in-process) and run store (default one per plan under `data/runs/`). */
  executor?: LocalExecutor;
  store?: string;
}

/** Everything the notebook shows. */
export interface ByotResult {
  settings: ByotConfig;
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
  /** The labelings: in-process, over HTTP (every query paid), over HTTP again on the same cache. */
  labelings: ByotLabeling[];
  /** True when the HTTP distances (both runs) equal the in-process ones exactly. */
  sameDistances: boolean;
  /**
   * Largest |d_http − d_in-process| (the client adapts inputs on the CPU, the in-process teacher in tf
   * ops; a float32 rounding difference can move a boundary by about the bisection tolerance).
   */
  maxDistanceDiff: number;
  server: { url: string; requests: number; answeredImages: number; byOutcome: Record<string, number> };
  student: ByotStudent;
  /** The run store. */
  store: string;
}

async function labelTest(model: tfl.LayersModel, x: Float32Array, n: number): Promise<Int32Array> {
  return (await labelOracle(model).labels(x, n, { phase: "check" })).labels;
}

/** Largest |a − b| over entries finite in both (Infinity where only one is finite). */
function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i])) m = Math.max(m, Math.abs(a[i] - b[i]));
    else if (!Object.is(a[i], b[i])) m = Infinity;
  }
  return m;
}

/** Run the comparison (see the module doc). */
export async function runByotDistillation(opts: ByotOptions): Promise<ByotResult> {
  const { scale, seed } = opts;
  const settings = byotSettings(scale, opts.settings);
  const { protocol, binary } = settings.http;
  const wire = `${protocol}${protocol === "kserve-v2" ? (binary ? " binary" : " JSON") : ""}`;
  await initBackend();
  const kit = await getTeacher({ dataset: "mnist", scale, seed });
  const key = `mnist-${kit.spec.name}-${scale}-s${seed}`;
  const dir = opts.dir ?? `${repoRoot()}/data/byot/${key}`;
  await saveTeacherFolder(kit.model, `${dir}/tfjs`);
  const folder = `${dir}/foreign`;
  await exportChannelsFirst(`${dir}/tfjs`, folder, FOREIGN_INPUT);

  // The folder teacher must label the test images as the kit teacher it was exported from.
  const test = await loadDataset("mnist", "test", settings.testLimit ? { limit: settings.testLimit } : {});
  const fileTeacher = await loadTeacher(folder, { input: FOREIGN_INPUT, expect: test });
  const nTest = Math.min(test.y.length, 2000);
  const xt = test.x.subarray(0, nTest * fileTeacher.inputShape.reduce((a, b) => a * b, 1));
  const [a, b] = [await labelTest(kit.model, xt, nTest), await labelTest(fileTeacher.model, xt, nTest)];
  const agreement = a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / nTest;
  fileTeacher.model.dispose();

  // The same folder behind an HTTP endpoint, in its own process; the run's two teacher sources.
  const folderSource: FolderTeacherSource = { kind: "folder", path: folder, adapter: FOREIGN_INPUT };
  const opened = await openTeacher(folderSource, { workers: 0 });
  const fingerprint = opened.fingerprint;
  opened.close();
  opened.model?.dispose();
  const cacheDir = `${dir}/label-cache`;
  await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
  const server = await spawnServer({ teacher: folder, args: ["--protocol", "both", "--port", "0"] });
  let run;
  try {
    const spec: ByotSpec = {
      family: "byot",
      scale,
      seed,
      settings,
      teachers: {
        folder: folderSource,
        http: { kind: "http", url: server.url, protocol, model: "teacher", adapter: FOREIGN_INPUT },
      },
      cacheDir,
      check: { kitTestAcc: kit.meta.testAcc, agreement, testImages: nTest },
    };
    const store = await runExperiment(byotPlan(spec, fingerprint), {
      executor: opts.executor,
      store: opts.store,
    });
    run = { store: store.root, ...await collectByot(store) };
  } finally {
    await server.close();
  }
  const log = await server.readLog();
  const byOutcome: Record<string, number> = {};
  for (const e of log) byOutcome[e.outcome] = (byOutcome[e.outcome] ?? 0) + 1;
  const answeredImages = log.reduce((s, e) => s + (e.outcome === "answered" ? e.images : 0), 0);
  const [local, http, rerun] = run.labelings;
  const same = local.distances.every((v, i) =>
    Object.is(v, http.distances[i]) && Object.is(v, rerun.distances[i])
  );
  if (opts.save !== false) await saveRun(run.student.record);
  return {
    settings,
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
    samples: local.teacherLabels.length,
    labelings: run.labelings,
    sameDistances: same,
    maxDistanceDiff: maxDiff(local.distances, http.distances),
    server: { url: server.url, requests: log.length, answeredImages, byOutcome },
    student: run.student,
    store: run.store,
  };
}
