/**
 * `ModelPool`: model replicas in Deno Workers, one per core, for data-parallel training and
 * batch-split inference.
 *
 * Training (used by `lib/train/trainer.ts`): the training set is copied once into
 * SharedArrayBuffers; each step sends every worker only the indices of its shard. Each worker
 * computes loss and gradients on its shard — mean terms divided by the *whole* batch size, so shard
 * gradients simply add up — and writes them into its slot of a shared gradient buffer. The pool sums
 * the slots in a fixed order into the last slot and tells every worker to apply the same optimizer
 * step to it, so all replicas stay bit-identical.
 *
 * BatchNorm: each worker normalises with its own shard's statistics (like PyTorch DataParallel
 * without SyncBN); the moving mean/variance are averaged over workers (weighted by shard size)
 * after every step, so replicas stay identical.
 *
 * Inference: `predictLogits`/`predictLabels` split a batch into one contiguous chunk per worker.
 *
 * Always `close()` a pool when done (the trainer does). Idle workers do not keep the process alive,
 * so a script that forgets to close still exits.
 *
 * @module
 */
import { Worker as NodeWorker } from "node:worker_threads";
import { type BackendName, initBackend } from "../backend.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import type { ModelSpec } from "../models/registry.ts";
import type { LossSpec } from "../learn/losses.ts";
import type { OptimizerConfig, OptimizerState, StepParams } from "../learn/optim.ts";
import { argmaxRows } from "../learn/evaluate.ts";
import type { Reply, Request } from "./protocol.ts";

export { argmaxRows };

/** Options for {@link ModelPool.create}. */
export interface PoolOptions {
  /** Number of workers (default: `navigator.hardwareConcurrency`). */
  workers?: number;
  /** Backend every worker uses (default: the main thread's, initialising it if needed). */
  backend?: BackendName;
  /** Seed for building the replicas before `weights` overwrite them (default 0). */
  seed?: number;
  /** Inference chunk size inside a worker (default 1024). */
  inferBatchSize?: number;
  /** Smallest number of samples worth sending to one worker for inference (default 32). */
  minPerWorker?: number;
}

/** The training set in a form the workers share (views on SharedArrayBuffers). */
export interface SharedTrainData {
  x: Float32Array;
  shape: number[];
  y?: Int32Array;
  targets?: Float32Array;
}

/** A request without its id (distributes over the union). */
type Dist = Request extends infer R ? R extends unknown ? Omit<R, "id"> : never : never;
type Ok = Extract<Reply, { ok: true }>;

/** Number of logical cores (1 if unknown). */
export function coreCount(): number {
  return Math.max(1, (globalThis.navigator?.hardwareConcurrency as number | undefined) ?? 1);
}

/** Copy a typed array into a SharedArrayBuffer-backed one. */
export function toShared<T extends Float32Array | Int32Array>(a: T): T {
  const sab = new SharedArrayBuffer(a.byteLength);
  const out = (a instanceof Float32Array ? new Float32Array(sab) : new Int32Array(sab)) as T;
  out.set(a);
  return out;
}

/**
 * One worker thread and its outstanding requests. Uses `node:worker_threads` rather than the web
 * `Worker` because only it can be unref'd: the thread keeps the process alive exactly while a
 * request is outstanding, so a program that forgets `close()` still exits.
 */
class WorkerHandle {
  readonly worker: NodeWorker;
  #next = 1;
  #pending = new Map<number, { resolve: (r: Ok) => void; reject: (e: Error) => void }>();
  #dead?: Error;

  constructor(index: number) {
    this.worker = new NodeWorker(new URL("./worker.ts", import.meta.url), { name: `bkd-pool-${index}` });
    this.worker.unref();
    this.worker.on("message", (r: Reply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (this.#pending.size === 0) this.worker.unref();
      if ("error" in r) p.reject(new Error(`pool worker ${index}: ${r.error}`));
      else p.resolve(r);
    });
    this.worker.on("error", (e: Error) => this.fail(new Error(`pool worker ${index} crashed: ${e.message}`)));
    this.worker.on("exit", () => this.fail(new Error(`pool worker ${index} exited`)));
  }

  call(msg: Dist, transfer: Transferable[] = []): Promise<Ok> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise<Ok>((resolve, reject) => {
      if (this.#pending.size === 0) this.worker.ref();
      this.#pending.set(id, { resolve, reject });
      // deno-lint-ignore no-explicit-any
      this.worker.postMessage({ ...msg, id }, transfer as any);
    });
  }

  fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.worker.unref();
  }
}

/** Model replicas in worker threads (see module doc). */
export class ModelPool {
  readonly spec: ModelSpec;
  readonly backend: BackendName;
  readonly #workers: WorkerHandle[];
  readonly #opts: Required<Pick<PoolOptions, "inferBatchSize" | "minPerWorker">>;
  #numParams = 0;
  #grads?: SharedArrayBuffer;
  #applies: Promise<unknown>[] = [];
  #closed = false;

  private constructor(spec: ModelSpec, backend: BackendName, n: number, opts: PoolOptions) {
    this.spec = spec;
    this.backend = backend;
    this.#workers = Array.from({ length: n }, (_, i) => new WorkerHandle(i));
    this.#opts = { inferBatchSize: opts.inferBatchSize ?? 1024, minPerWorker: opts.minPerWorker ?? 32 };
  }

  /**
   * Start `workers` replicas of `spec` with the given weights (`model.getWeights()` order as flat
   * arrays; omitted: the seeded initialisation `buildModel(spec, seed)`).
   */
  static async create(spec: ModelSpec, weights?: Float32Array[], opts: PoolOptions = {}): Promise<ModelPool> {
    const backend = opts.backend ?? (await initBackend()).name;
    const n = Math.max(1, Math.floor(opts.workers ?? coreCount()));
    const pool = new ModelPool(spec, backend, n, opts);
    try {
      const replies = await Promise.all(
        pool.#workers.map((w) => w.call({ type: "init", spec, seed: opts.seed ?? 0, backend, weights })),
      );
      pool.#numParams = replies[0].numParams ?? 0;
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /** A pool of replicas of an in-process `model` built from `spec` (its current weights are copied). */
  static fromModel(model: tfl.LayersModel, spec: ModelSpec, opts: PoolOptions = {}): Promise<ModelPool> {
    const weights = model.getWeights().map((t) => (t.dataSync() as Float32Array).slice());
    return ModelPool.create(spec, weights, opts);
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Replace every replica's weights (`model.getWeights()` order). */
  async setWeights(weights: Float32Array[]): Promise<void> {
    await this.#settle();
    await Promise.all(this.#workers.map((w) => w.call({ type: "setWeights", weights })));
  }

  /** The current weights (from worker 0; all replicas are identical). */
  async getWeights(): Promise<Float32Array[]> {
    await this.#settle();
    return (await this.#workers[0].call({ type: "getWeights" })).weights!;
  }

  /** Every worker's weights (to check that the replicas agree). */
  async allWeights(): Promise<Float32Array[][]> {
    await this.#settle();
    return (await Promise.all(this.#workers.map((w) => w.call({ type: "getWeights" })))).map((r) =>
      r.weights!
    );
  }

  /** Logits (n×K, row-major) for `n` inputs stored row-major in `x`, split across the workers. */
  async predictLogits(x: Float32Array, n: number): Promise<Float32Array> {
    this.#check();
    if (n === 0) return new Float32Array(0);
    const dim = x.length / n;
    if (!Number.isInteger(dim)) {
      throw new Error(`predictLogits: x.length ${x.length} is not a multiple of n=${n}`);
    }
    const parts = Math.max(1, Math.min(this.size, Math.floor(n / this.#opts.minPerWorker)));
    const chunk = Math.ceil(n / parts);
    const jobs: Promise<Ok>[] = [];
    for (let p = 0; p * chunk < n; p++) {
      const s = p * chunk, m = Math.min(chunk, n - s);
      const xs = x.slice(s * dim, (s + m) * dim);
      jobs.push(
        this.#workers[p].call({ type: "predict", x: xs, n: m, batchSize: this.#opts.inferBatchSize }, [
          xs.buffer,
        ]),
      );
    }
    const outs = (await Promise.all(jobs)).map((r) => r.logits!);
    const k = outs[0].length / Math.min(chunk, n);
    const out = new Float32Array(n * k);
    outs.forEach((o, p) => out.set(o, p * chunk * k));
    return out;
  }

  /** Argmax labels for `n` inputs, split across the workers. */
  async predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
    const z = await this.predictLogits(x, n);
    return argmaxRows(z, n);
  }

  /**
   * Give the workers the training set once. Arrays not already backed by a SharedArrayBuffer are
   * copied into one.
   */
  async setTrainData(d: SharedTrainData): Promise<void> {
    await this.#settle();
    const shared = (a: Float32Array | Int32Array | undefined) =>
      a === undefined ? undefined : a.buffer instanceof SharedArrayBuffer ? a : toShared(a);
    const msg: Dist = {
      type: "data",
      x: shared(d.x) as Float32Array,
      shape: d.shape,
      y: shared(d.y) as Int32Array | undefined,
      targets: shared(d.targets) as Float32Array | undefined,
    };
    await Promise.all(this.#workers.map((w) => w.call(msg)));
  }

  /** Set loss and optimizer on every replica (fresh optimizer state unless `state` is given). */
  async configureTraining(loss: LossSpec, optimizer: OptimizerConfig, state?: OptimizerState): Promise<void> {
    await this.#settle();
    const p = this.#numParams;
    this.#grads = new SharedArrayBuffer((this.size + 1) * p * 4);
    await Promise.all(
      this.#workers.map((w, slot) =>
        w.call({ type: "configure", loss, optimizer, state, grads: this.#grads!, slot })
      ),
    );
  }

  /**
   * One data-parallel step on the training-set rows `indices`: shard gradients are summed and every
   * replica applies the optimizer step with `hp`. Returns the batch loss.
   */
  async trainStep(indices: Int32Array, hp: StepParams): Promise<number> {
    this.#check();
    // The previous step's "apply" messages are queued before this step's "grad" in every worker, so
    // there is no need to wait for their replies before posting; only their errors matter.
    const previous = this.#applies;
    this.#applies = [];
    const grads = this.#grads;
    if (!grads) throw new Error("ModelPool: call configureTraining before trainStep");
    const n = indices.length;
    const parts = Math.max(1, Math.min(this.size, n));
    const chunk = Math.ceil(n / parts);
    const jobs: Promise<Ok>[] = [];
    const counts: number[] = [];
    for (let p = 0; p * chunk < n; p++) {
      const part = indices.slice(p * chunk, Math.min(n, (p + 1) * chunk));
      counts.push(part.length);
      jobs.push(this.#workers[p].call({ type: "grad", indices: part, total: n }, [part.buffer]));
    }
    await Promise.all(previous);
    const replies = await Promise.all(jobs);
    const P = this.#numParams;
    const sum = new Float32Array(grads, this.size * P * 4, P);
    sum.set(new Float32Array(grads, 0, P));
    for (let w = 1; w < replies.length; w++) {
      const g = new Float32Array(grads, w * P * 4, P);
      for (let j = 0; j < P; j++) sum[j] += g[j];
    }
    let loss = 0;
    for (const r of replies) loss += r.loss!;
    const nonTrainable = averageNonTrainable(replies.map((r) => r.nonTrainable), counts);
    this.#applies = this.#workers.map((w) => w.call({ type: "apply", hp, nonTrainable }));
    return loss;
  }

  /** The optimizer state (from worker 0; identical on all). */
  async optimizerState(): Promise<OptimizerState> {
    await this.#settle();
    return (await this.#workers[0].call({ type: "optState" })).state!;
  }

  /** Stop all workers. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) {
      w.fail(new Error("ModelPool is closed"));
      void w.worker.terminate();
    }
  }

  #check(): void {
    if (this.#closed) throw new Error("ModelPool is closed");
  }

  async #settle(): Promise<void> {
    this.#check();
    const a = this.#applies;
    this.#applies = [];
    await Promise.all(a);
  }
}

/** Average per-worker non-trainable weights, weighted by shard size (undefined if there are none). */
function averageNonTrainable(
  per: (Float32Array[] | undefined)[],
  counts: number[],
): Float32Array[] | undefined {
  if (!per[0] || per[0].length === 0) return undefined;
  if (per.length === 1) return per[0];
  const total = counts.reduce((a, b) => a + b, 0);
  return per[0].map((_, i) => {
    const out = new Float32Array(per[0]![i].length);
    per.forEach((ws, w) => {
      const f = counts[w] / total, a = ws![i];
      for (let j = 0; j < out.length; j++) out[j] += f * a[j];
    });
    return out;
  });
}
