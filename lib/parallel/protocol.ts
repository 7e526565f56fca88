/**
 * Messages between {@link ModelPool} (main thread) and its workers. Every request carries an `id`
 * and gets exactly one reply `{id, ok, ...}` or `{id, error}`; a worker handles requests strictly in
 * the order they arrive.
 *
 * @module
 */
import type { BackendName } from "../backend.ts";
import type { ModelSpec } from "../models/registry.ts";
import type { LossSpec } from "../learn/losses.ts";
import type { OptimizerConfig, OptimizerState, StepParams } from "../learn/optim.ts";

/** Requests from the pool to a worker. */
export type Request =
  | {
    id: number;
    type: "init";
    spec: ModelSpec;
    seed: number;
    backend: BackendName;
    weights?: Float32Array[];
  }
  | { id: number; type: "setWeights"; weights: Float32Array[] }
  | { id: number; type: "getWeights" }
  | { id: number; type: "predict"; x: Float32Array; n: number; batchSize: number }
  | {
    id: number;
    type: "data";
    /** Views on SharedArrayBuffers: the whole training set, sent once. */
    x: Float32Array;
    shape: number[];
    y?: Int32Array;
    targets?: Float32Array;
  }
  | {
    id: number;
    type: "configure";
    loss: LossSpec;
    optimizer: OptimizerConfig;
    state?: OptimizerState;
    /** SharedArrayBuffer with (workers + 1) gradient slots of numParams floats; the last is the sum. */
    grads: SharedArrayBuffer;
    slot: number;
  }
  | { id: number; type: "grad"; indices: Int32Array; total: number }
  | { id: number; type: "apply"; hp: StepParams; nonTrainable?: Float32Array[] }
  | { id: number; type: "optState" };

/** Replies from a worker. */
export type Reply =
  | { id: number; error: string }
  | {
    id: number;
    ok: true;
    numParams?: number;
    weights?: Float32Array[];
    logits?: Float32Array;
    loss?: number;
    nonTrainable?: Float32Array[];
    state?: OptimizerState;
  };
