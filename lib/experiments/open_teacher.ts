/**
 * The one place a {@link TeacherSource} becomes the oracles a method needs.
 *
 * `openTeacher(source, {need, expect, workers, engine})` checks the access first (a label endpoint
 * asked for probs or logits+grad is a {@link TeacherAccessError} before anything loads), then:
 * - recipe: `getTeacher` (trained once, cached), answered by the native engine or the wasm pool
 *   (`teacherPredictor`);
 * - folder with `spec.json` (kit checkpoint): loaded and verified (`loadModel`), same engines;
 * - folder with `model.json` (TF.js, input adapter applied): the model in this process (tfjs);
 * - http: the remote label oracle (no local model; labels only).
 *
 * Every handle carries the teacher's cache identity, `fingerprint`: `modelFingerprint` (topology and
 * weight bytes) for local models, and for an endpoint a digest of its model identity
 * (`remoteCacheIdentity`: name, version, protocol, tensors, adapter, what the server reports) — never
 * a file name or host:port. The engine is part of what callers key caches on.
 *
 * A runner family opens its teacher through the spec helpers below: `resolveTeacher` when it plans
 * (fingerprint, then closed) and `openPlannedTeacher` inside a unit (checked against the plan's
 * fingerprint); both map an endpoint's token from {@link TEACHER_TOKEN_ENV} and take the images'
 * shape from the spec's dataset.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import type * as tfl from "@tensorflow/tfjs-layers";
import { modelFingerprint } from "../models/fingerprint.ts";
import { loadModel } from "../models/io.ts";
import type { ModelSpec } from "../models/registry.ts";
import { engineInfo, type TeacherEngine, teacherPredictor } from "../native/teacher_predictor.ts";
import type { Ledger } from "../oracle/ledger.ts";
import { type LabelOracle, labelOracle, type ProbsOracle, probsOracle } from "../oracle/oracle.ts";
import { RemoteTeacher } from "../remote/client.ts";
import {
  remoteCacheIdentity,
  remoteLabelOracle,
  type RemoteOracleOptions,
  reportedModelIdentity,
} from "../remote/oracle.ts";
import { loadTeacher } from "../teachers/load.ts";
import { getTeacher, type TeacherMeta } from "../train/teachers.ts";
import { jsonDigest } from "../util/digest.ts";
import { repoRoot } from "../util/paths.ts";
import {
  describeTeacherSource,
  requireAccess,
  TEACHER_TOKEN_ENV,
  type TeacherAccess,
  TeacherAccessError,
  type TeacherSource,
} from "./teacher_source.ts";
import { pathExists } from "../util/files.ts";
import { initBackend } from "../backend.ts";
import { loadDataset } from "../data/datasets.ts";
import type { DatasetName } from "../data/types.ts";

/** Options of {@link openTeacher}. */
export interface OpenTeacherOptions {
  /** The highest access the caller's methods need (checked before loading; default "label"). */
  need?: TeacherAccess;
  /** Method name(s) for the access error message. */
  method?: string;
  /** The images the teacher will see (kit NHWC shape without batch axis) and K; required for http. */
  expect?: { inputShape: number[]; numClasses: number };
  /** Oracle workers / native threads (default: all cores; 0 = the model in this process, no engine). */
  workers?: number;
  /** Engine for local kit models (default "auto": native if it builds, else the wasm pool). */
  engine?: TeacherEngine;
  /** HTTP: images per request (default 512) and requests in flight (default 4). */
  batchSize?: number;
  concurrency?: number;
  /** HTTP, KServe v2: send tensors with the binary extension (default true; false: plain JSON). */
  binary?: boolean;
  /** HTTP: persistent label cache root (keyed by the endpoint's model identity); default none. */
  cacheDir?: string;
}

/** What answers the teacher's queries, as recorded (`oracleEngine` in run records). */
export type TeacherEngineInfo = { engine: string; label: string } & Record<string, unknown>;

/** A teacher ready to be asked (see the module doc). Close it when done. */
export interface OpenTeacher {
  source: TeacherSource;
  /** Model name for tables ("db3-lenet5", the endpoint's model name, or the folder's name). */
  name: string;
  inputShape: number[];
  numClasses: number;
  /** Cache identity of the teacher (see the module doc). */
  fingerprint: string;
  engine: TeacherEngineInfo;
  /** Local model (recipe, folder); null for an endpoint. */
  model: tfl.LayersModel | null;
  /** Kit model spec when the teacher is a kit network; else null. */
  spec: ModelSpec | null;
  /** Recipe metadata (test accuracy, training time) when the kit trained it; else null. */
  meta: TeacherMeta | null;
  /** A fresh label oracle on `ledger` (default: a new ledger without budgets). */
  labelOracle(ledger?: Ledger): Promise<LabelOracle>;
  /** A fresh probs oracle (own ledger); throws {@link TeacherAccessError} for an endpoint. */
  probsOracle(): ProbsOracle;
  close(): void;
}

/**
 * A folder path as given, or — when it is relative and absent from the working directory (notebooks run
 * in `notebooks/`) — relative to the repository root, where `deno task notebooks` is started.
 */
async function folderPath(path: string): Promise<string> {
  if (isAbsolute(path) || await pathExists(path)) return path;
  const fromRoot = resolve(repoRoot(), path);
  return await pathExists(fromRoot) ? fromRoot : path;
}

/** Open `source` for a method needing `opts.need` (see the module doc). */
export async function openTeacher(
  source: TeacherSource,
  opts: OpenTeacherOptions = {},
): Promise<OpenTeacher> {
  const need = opts.need ?? "label";
  requireAccess(source, need, opts.method ?? "this experiment");
  if (source.kind === "http") return await openEndpoint(source, opts);
  let model: tfl.LayersModel, spec: ModelSpec | null = null, meta: TeacherMeta | null = null, name: string;
  let inputShape: number[], numClasses: number;
  const dir = source.kind === "folder" ? await folderPath(source.path) : "";
  if (source.kind === "recipe") {
    const t = await getTeacher({
      dataset: source.dataset,
      model: source.model,
      scale: source.scale ?? "laptop",
      seed: source.seed ?? 1,
    });
    ({ model, spec, meta } = t);
    name = t.spec.name;
    [inputShape, numClasses] = [t.spec.inputShape, t.spec.numClasses];
  } else if (await pathExists(`${dir}/spec.json`)) {
    const t = await loadModel(dir);
    ({ model, spec } = t);
    const m = t.meta as Partial<TeacherMeta> | null;
    meta = m && typeof m.testAcc === "number" && typeof m.dataset === "string" ? m as TeacherMeta : null;
    name = t.spec.name;
    [inputShape, numClasses] = [t.spec.inputShape, t.spec.numClasses];
  } else if (await pathExists(`${dir}/model.json`)) {
    const t = await loadTeacher(dir, {
      input: source.adapter,
      ...(opts.expect ? { expect: opts.expect.inputShape } : {}),
    });
    model = t.model;
    name = dir.split("/").filter((p) => p !== "").pop() ?? "teacher";
    [inputShape, numClasses] = [t.inputShape, t.numClasses];
  } else {
    throw new Error(
      `teacher folder "${dir}" holds neither spec.json (a kit checkpoint) nor model.json (a TF.js model): ` +
        `pass the folder that contains one of them (or an endpoint URL, or dataset:model:scale)`,
    );
  }
  const pool = spec && opts.workers !== 0
    ? await teacherPredictor(model, spec, { workers: opts.workers, engine: opts.engine })
    : null;
  const engine: TeacherEngineInfo = pool
    ? engineInfo(pool) as unknown as TeacherEngineInfo
    : { engine: "in-process", label: `in-process tfjs model${spec ? "" : " (TF.js folder)"}` };
  const answer = pool ?? model;
  return {
    source,
    name,
    inputShape,
    numClasses,
    fingerprint: modelFingerprint(model),
    engine,
    model,
    spec,
    meta,
    labelOracle: (ledger) => Promise.resolve(labelOracle(answer, ledger ? { ledger } : {})),
    probsOracle: () => probsOracle(answer),
    close: () => pool?.close(),
  };
}

async function openEndpoint(
  source: Extract<TeacherSource, { kind: "http" }>,
  opts: OpenTeacherOptions,
): Promise<OpenTeacher> {
  if (!opts.expect) {
    throw new Error(
      `${describeTeacherSource(source)}: an endpoint does not say its image shape or class count; ` +
        `pass expect: {inputShape, numClasses} (the experiment's dataset gives them)`,
    );
  }
  const ro: RemoteOracleOptions = {
    url: source.url,
    model: source.model,
    ...(source.version ? { version: source.version } : {}),
    protocol: source.protocol,
    binary: source.protocol === "kserve-v2" && opts.binary !== false,
    ...(source.adapter ? { input: source.adapter } : {}),
    ...(source.token ? { auth: `Bearer ${source.token}` } : {}),
    inputShape: opts.expect.inputShape,
    numClasses: opts.expect.numClasses,
    batchSize: opts.batchSize ?? 512,
    concurrency: opts.concurrency ?? 4,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
  };
  const identity = remoteCacheIdentity(new RemoteTeacher(ro), undefined, await reportedModelIdentity(ro));
  return {
    source,
    name: source.model,
    inputShape: opts.expect.inputShape,
    numClasses: opts.expect.numClasses,
    fingerprint: `endpoint-${jsonDigest(identity)}`,
    engine: { engine: "http", label: `${source.protocol} endpoint, model ${source.model} (labels only)` },
    model: null,
    spec: null,
    meta: null,
    labelOracle: (ledger) => remoteLabelOracle({ ...ro, ...(ledger ? { ledger } : {}) }),
    probsOracle: () => {
      throw new TeacherAccessError(
        `${describeTeacherSource(source)} answers labels only; probs need a folder`,
      );
    },
    close: () => {},
  };
}

/** What a run spec says about its teacher: the source (never with a token) and the images it sees. */
export interface SpecTeacher {
  /** The teacher source as saved in the spec (an endpoint's token comes from the environment). */
  teacher: TeacherSource | Omit<Extract<TeacherSource, { kind: "http" }>, "token">;
  /** The dataset whose images the teacher labels (gives `expect` for an endpoint). */
  dataset: DatasetName;
  /** Engine for local kit models (default "auto"). */
  engine?: TeacherEngine;
}

/** How a unit or a planner opens a {@link SpecTeacher}: access, method name, oracle workers. */
export type SpecTeacherOptions = Pick<OpenTeacherOptions, "need" | "method" | "workers">;

/** `source` with an endpoint's bearer token from {@link TEACHER_TOKEN_ENV} (other sources as they are). */
export function withEnvToken(source: SpecTeacher["teacher"]): TeacherSource {
  const token = source.kind === "http" ? Deno.env.get(TEACHER_TOKEN_ENV) : undefined;
  return (token ? { ...source, token } : source) as TeacherSource;
}

/** Open a spec's teacher (recipe, folder or endpoint), its images' shape and K from the spec's dataset. */
export async function openSpecTeacher(
  spec: SpecTeacher,
  opts: SpecTeacherOptions = {},
): Promise<OpenTeacher> {
  await initBackend();
  const probe = await loadDataset(spec.dataset, "test", { limit: 1 });
  return await openTeacher(withEnvToken(spec.teacher), {
    ...opts,
    expect: { inputShape: probe.shape.slice(1), numClasses: probe.numClasses },
    ...(spec.engine ? { engine: spec.engine } : {}),
  });
}

/** Close an opened teacher and free its model. */
export function disposeTeacher(t: OpenTeacher): void {
  t.close();
  t.model?.dispose();
}

/**
 * A spec's teacher's cache identity (what a plan keys on; a recipe teacher is trained and cached on
 * first use) and its test accuracy when the kit trained it (else null). The teacher is closed after; it
 * answers no query, so no engine is started unless `opts.workers` asks for one.
 */
export async function resolveTeacher(
  spec: SpecTeacher,
  opts: SpecTeacherOptions = {},
): Promise<{ fingerprint: string; testAcc: number | null }> {
  const t = await openSpecTeacher(spec, { workers: 0, ...opts });
  const out = { fingerprint: t.fingerprint, testAcc: t.meta?.testAcc ?? null };
  disposeTeacher(t);
  return out;
}

/**
 * {@link openSpecTeacher} inside a unit: checked against `expected`, the fingerprint the run was planned
 * with (a teacher changed since is an error, never a silent mix of two teachers in one store).
 */
export async function openPlannedTeacher(
  spec: SpecTeacher,
  expected: string,
  opts: SpecTeacherOptions = {},
): Promise<OpenTeacher> {
  const t = await openSpecTeacher(spec, opts);
  checkFingerprint(t, expected);
  return t;
}

/** Throw (after closing `t`) when `t` is not the teacher of fingerprint `expected`. */
export function checkFingerprint(t: OpenTeacher, expected: string): void {
  if (t.fingerprint === expected) return;
  disposeTeacher(t);
  throw new Error(
    `teacher ${describeTeacherSource(t.source)}: fingerprint ${
      t.fingerprint.slice(0, 12)
    } differs from the run's ${
      expected.slice(0, 12)
    }: the teacher changed since the run was planned; restore it (BKD_TEACHER_DIR, the folder, or the ` +
      `endpoint's model) or start a new run store`,
  );
}
