/**
 * `teacherPredictor`: the fastest available engine for teacher label/logit queries — the native
 * inference engine ({@link NativePredictor}) when it can be built and the model is a supported chain,
 * else the native training engine in inference mode ({@link NativeFrozenNet}: residual networks such as
 * the CIFAR ResNets), else a wasm `ModelPool` of worker replicas. Both answer `predictLabels(x, n)` / `predictLogits(x, n)`,
 * carry `spec` and `size`, and must be `close()`d. {@link engineInfo} says which one was chosen, for
 * run records ("native (g++ 12.2.0, avx512f x16, 2 threads)" vs "wasm pool (2 workers)").
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { ModelSpec } from "../models/registry.ts";
import { ModelPool } from "../parallel/pool.ts";
import { InputError } from "../util/checks.ts";
import { type BuildOptions, envVar } from "./build.ts";
import { NativeFrozenNet } from "./frozen_net.ts";
import { type NativeEngineInfo, NativePredictor } from "./predictor.ts";

/** Which engine to use: `auto` (native if possible), `native` (or fail), `pool` (wasm workers). */
export type TeacherEngine = "auto" | "native" | "pool";

/** Engine choices, for argument parsing. */
export const TEACHER_ENGINES: readonly TeacherEngine[] = ["auto", "native", "pool"];

/** A teacher inference engine. */
export type TeacherPredictor = NativePredictor | NativeFrozenNet | ModelPool;

/** What a `ModelPool` engine records. */
export interface PoolEngineInfo {
  engine: "pool";
  backend: string;
  workers: number;
  /** Why the native engine was not used (absent when the pool was asked for). */
  nativeUnavailable?: string;
  label: string;
}

/** Engine description for run records. */
export type EngineInfo = NativeEngineInfo | PoolEngineInfo;

/** Options for {@link teacherPredictor}. */
export interface TeacherPredictorOptions {
  /** Pool workers / native threads (default: number of cores). */
  workers?: number;
  /** Default `BKD_ENGINE` or "auto". */
  engine?: TeacherEngine;
  /** Native build options (cache folder, compiler). */
  build?: BuildOptions;
}

/** Why the native engine was skipped for each pool made by {@link teacherPredictor}. */
const fallbackReasons = new WeakMap<ModelPool, string>();

/**
 * The engine for `model` (whose architecture `spec` describes). With `engine: "native"` an unavailable
 * engine or unsupported model is an error naming the reason; with "auto" it falls back to the pool.
 */
export async function teacherPredictor(
  model: tfl.LayersModel,
  spec: ModelSpec,
  opts: TeacherPredictorOptions = {},
): Promise<TeacherPredictor> {
  const engine = opts.engine !== undefined
    ? parseEngine(opts.engine, "teacherPredictor engine")!
    : parseEngine(envVar("BKD_ENGINE"), "BKD_ENGINE") ?? "auto";
  let reason: string | undefined;
  if (engine !== "pool") {
    const r = await NativePredictor.tryCreate(model, spec, { threads: opts.workers, build: opts.build });
    if (r.ok) return r.predictor;
    const f = await NativeFrozenNet.tryCreate(model, { threads: opts.workers, build: opts.build });
    if (f.ok) {
      const s = f.net.spec;
      if (s.numClasses === spec.numClasses && s.inputShape.join() === spec.inputShape.join()) return f.net;
      f.net.close();
      reason =
        `${r.reason}; seq_train: model maps [${s.inputShape}] to ${s.numClasses} outputs but spec says ` +
        `[${spec.inputShape}] → ${spec.numClasses} classes`;
    } else reason = `${r.reason}; seq_train: ${f.reason}`;
    if (engine === "native") throw new Error(`native engine unavailable: ${reason}`);
  }
  const pool = await ModelPool.fromModel(model, spec, opts.workers ? { workers: opts.workers } : {});
  if (reason !== undefined) fallbackReasons.set(pool, reason);
  return pool;
}

/**
 * Parse an engine name (case and surrounding blanks ignored): undefined when unset or empty, an
 * {@link InputError} naming `source` (e.g. "BKD_ENGINE", "--engine") and the valid names when unknown.
 * The one parser for the environment variable, command-line flags and options.
 */
export function parseEngine(v: string | undefined, source = "engine"): TeacherEngine | undefined {
  const s = v?.trim().toLowerCase();
  if (s === undefined || s === "") return undefined;
  if (TEACHER_ENGINES.includes(s as TeacherEngine)) return s as TeacherEngine;
  throw new InputError(
    `${source} ${JSON.stringify(v)} is not an engine; use one of ${TEACHER_ENGINES.join(", ")} ` +
      `(or leave it unset for "auto")`,
  );
}

/** Which engine `p` is, for run records. */
export function engineInfo(p: TeacherPredictor): EngineInfo {
  if (p instanceof NativePredictor || p instanceof NativeFrozenNet) return p.describe();
  const reason = fallbackReasons.get(p);
  return {
    engine: "pool",
    backend: p.backend,
    workers: p.size,
    ...(reason ? { nativeUnavailable: reason } : {}),
    label: `${p.backend} pool (${p.size} worker${p.size === 1 ? "" : "s"})`,
  };
}
