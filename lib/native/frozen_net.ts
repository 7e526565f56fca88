/**
 * `NativeFrozenNet`: a frozen network (a teacher) on the native training engine (`seq_train.cpp`) in
 * inference mode — logits, labels, and input gradients (∂logits/∂x)ᵀ·g for the `logits+grad` oracle
 * (CAKE synthesis) — for every network the engine describes (`seq_desc.ts`): the sequential ones and the
 * CIFAR ResNets (residual add, global average pooling), which the inference engine (`forward.cpp`) does
 * not cover. Batch norm uses the moving statistics; dropout is off.
 *
 * It answers `predictLabels(x, n)` / `predictLogits(x, n)` like `NativePredictor`, carries `spec` and
 * `size`, says what it is with {@link NativeFrozenNet.describe} and must be `close()`d. The weights are
 * copied when it is created: later changes to the model do not reach it. Calls run synchronously on the
 * calling thread (spread over `size` native threads); label/logit queries run in chunks of images so the
 * kept activations stay below ≈ 256 MB.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { buildNative, type BuildOptions } from "./build.ts";
import type { NativeEngineInfo } from "./predictor.ts";
import { NativeSeqTrainer } from "./seq_train.ts";

/** Activation floats kept per query chunk (≈ 256 MB). */
const CHUNK_FLOATS = 1 << 26;

/** Options for {@link NativeFrozenNet.tryCreate}. */
export interface NativeFrozenNetOptions {
  /** Native threads per call (default: number of cores). */
  threads?: number;
  /** Build options (cache folder, compiler). */
  build?: BuildOptions;
}

/** Outcome of {@link NativeFrozenNet.tryCreate}. */
export type NativeFrozenNetResult = { ok: true; net: NativeFrozenNet } | { ok: false; reason: string };

/** Shape of one input and number of classes. */
export interface FrozenNetSpec {
  inputShape: number[];
  numClasses: number;
}

/** What the engine records besides its threads and label. */
type BuildInfo = Omit<NativeEngineInfo, "threads" | "label"> & { version?: string };

/** Concatenate the values of `vars` (tfjs variables) into one float array. */
function flatten(vars: { read(): { dataSync(): unknown } }[], size: number): Float32Array {
  const out = new Float32Array(size);
  let at = 0;
  for (const v of vars) {
    const d = v.read().dataSync() as Float32Array;
    out.set(d, at);
    at += d.length;
  }
  return out;
}

/** A frozen network on the native engine in inference mode (see the module doc). */
export class NativeFrozenNet {
  readonly spec: FrozenNetSpec;
  /** Native threads per call. */
  readonly size: number;
  readonly #engine: NativeSeqTrainer;
  readonly #params: Float32Array;
  readonly #state: Float32Array;
  readonly #info: BuildInfo;
  /** Images per label/logit chunk. */
  readonly #chunk: number;

  private constructor(
    spec: FrozenNetSpec,
    engine: NativeSeqTrainer,
    params: Float32Array,
    state: Float32Array,
    info: BuildInfo,
  ) {
    this.spec = spec;
    this.size = engine.threads;
    this.#engine = engine;
    this.#params = params;
    this.#state = state;
    this.#info = info;
    const perImage = engine.desc.ops.reduce((a, o) => a + o.out[0] * o.out[1] * o.out[2], 0);
    this.#chunk = Math.max(1, Math.floor(CHUNK_FLOATS / Math.max(1, perImage)));
  }

  /**
   * The frozen `model` on the native engine, or `{ok: false, reason}` when the engine is disabled, cannot
   * be built, or a layer is unsupported (the reason names it).
   */
  static async tryCreate(
    model: tfl.LayersModel,
    opts: NativeFrozenNetOptions = {},
  ): Promise<NativeFrozenNetResult> {
    const made = await NativeSeqTrainer.tryCreate(model, opts);
    if (!made.ok) return made;
    const engine = made.engine;
    const build = await buildNative({ ...opts.build, source: "seq_train.cpp" });
    if (!build.ok) {
      engine.close();
      return build;
    }
    const params = flatten(model.trainableWeights, engine.paramCount);
    const state = flatten(model.nonTrainableWeights, engine.stateCount);
    const shape = engine.desc.inputShape;
    return {
      ok: true,
      net: new NativeFrozenNet(
        { inputShape: shape.length === 1 ? [shape[0]] : [...shape], numClasses: engine.desc.classes },
        engine,
        params,
        state,
        {
          engine: "native",
          compiler: `${build.compiler}: ${build.compilerVersion}`,
          flags: build.flags.join(" "),
          cpu: build.cpu,
          isa: "8×f32 vectors, -march=native",
          version: build.compilerVersion.match(/\d+\.\d+(\.\d+)?/)?.[0],
        },
      ),
    };
  }

  /** Floats per input image. */
  get inputSize(): number {
    return this.#engine.desc.inputSize;
  }

  /**
   * Logits (n×K) of `n` images, in one pass that keeps the activations for {@link inputGrad} (pass the
   * same `x` there).
   */
  logits(x: Float32Array, n: number): Float32Array {
    this.#check("logits", x, n);
    return this.#engine.infer(this.#params, this.#state, x, n);
  }

  /**
   * The input gradient (∂logits/∂x)ᵀ·`dLogits` at the batch of the last {@link logits} call (same `x`
   * and `n`), NHWC, n images.
   */
  inputGrad(x: Float32Array, n: number, dLogits: Float32Array): Float32Array {
    this.#check("inputGrad", x, n);
    return this.#engine.inputGrad(this.#params, x, n, dLogits);
  }

  /** Logits (n × numClasses, row-major) for `n` inputs stored row-major in `x` (in chunks). */
  predictLogits(x: Float32Array, n: number): Promise<Float32Array> {
    try {
      this.#check("predictLogits", x, n);
      const k = this.spec.numClasses, d = this.inputSize;
      const out = new Float32Array(n * k);
      for (let i = 0; i < n; i += this.#chunk) {
        const m = Math.min(this.#chunk, n - i);
        out.set(this.#engine.infer(this.#params, this.#state, x.subarray(i * d, (i + m) * d), m), i * k);
      }
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Argmax labels (first maximum wins; a NaN never wins, an all-NaN row gets 0) for `n` inputs. */
  async predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
    const z = await this.predictLogits(x, n);
    const k = this.spec.numClasses;
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = -1, bestV = 0;
      for (let c = 0; c < k; c++) {
        const v = z[i * k + c];
        if (best < 0 ? !Number.isNaN(v) : v > bestV) best = c, bestV = v;
      }
      labels[i] = best < 0 ? 0 : best;
    }
    return labels;
  }

  /** Engine, compiler, flags, threads and CPU, for run records. */
  describe(): NativeEngineInfo {
    const { version, ...info } = this.#info;
    const t = this.size;
    return {
      ...info,
      threads: t,
      label: `native seq_train (${info.compiler.split(":")[0]}${version ? " " + version : ""}, ${t} thread${
        t === 1 ? "" : "s"
      })`,
    };
  }

  /** Free the native state. Safe to call twice. */
  close(): void {
    this.#engine.close();
  }

  #check(what: string, x: Float32Array, n: number): void {
    if (!(x instanceof Float32Array)) {
      throw new TypeError(`NativeFrozenNet.${what}: x must be a Float32Array`);
    }
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`NativeFrozenNet.${what}: n must be a non-negative integer, got ${n}`);
    }
    if (x.length !== n * this.inputSize) {
      throw new RangeError(
        `NativeFrozenNet.${what}: x has ${x.length} floats but n = ${n} inputs of shape ` +
          `[${this.spec.inputShape}] need ${n * this.inputSize}`,
      );
    }
  }
}
