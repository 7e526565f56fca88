/**
 * `NativeLeNetGrads`: loss and gradients of a DB3 LeNet-5 (any widths, any input ≥ 16×16) on a batch,
 * computed by the native training engine's first piece (`lenet_grads.cpp`, compiled at first use by
 * `build.ts`, called with Deno FFI) on all cores. Parameters and gradients are flat float arrays in tfjs
 * `model.getWeights()` order and layout, so they interchange with the tfjs model directly.
 *
 * Every loss of `lib/learn/losses.ts` (CE, soft CE, DB3 KD, standard KD) is one {@link NativeLossWeights}
 * choice ({@link nativeLossWeights}). The trainer (`lib/train/native_stepper.ts`) trains DB3 LeNet-5s on it
 * when it is available (issue 12). {@link NativeLeNetGrads.tryCreate}
 * returns `{ok: false, reason}` when the engine is disabled (`BKD_NATIVE=0`), cannot be built (no compiler,
 * missing permission) or the model is not a DB3 LeNet-5, so callers can fall back.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { coreCount } from "../parallel/pool.ts";
import { DEFAULT_TEMPERATURE, lossNeeds, type LossSpec } from "../learn/losses.ts";
import { buildNative, type BuildOptions, cString, openNativeLibrary } from "./build.ts";

const SYMBOLS = {
  bkd_lenet_create: { parameters: ["buffer", "buffer", "i32"], result: "pointer" },
  bkd_lenet_param_count: { parameters: ["pointer"], result: "i64" },
  bkd_lenet_loss_grads: {
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "i32",
    ],
    result: "i32",
  },
  bkd_lenet_free: { parameters: ["pointer"], result: "void" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Shape of a DB3 LeNet-5: input h×w×cin, conv widths c1, c2, hidden units hid, classes k. */
export interface LeNetDims {
  h: number;
  w: number;
  cin: number;
  c1: number;
  c2: number;
  hid: number;
  k: number;
}

/**
 * A loss as the native engine computes it, summed over the batch's rows:
 * Σ_j hard·CE(s_j, y_j) + soft·D(p_j ‖ q_j), p = softmax(z/τ), q = softmax(s/τ), D = KL(p ‖ q) when `kl`,
 * else the soft cross-entropy −Σ_k p_k log q_k. "Mean" terms carry their 1/N inside `hard`/`soft`.
 */
export interface NativeLossWeights {
  /** Weight of each row's hard-label cross-entropy (0: labels are not read). */
  hard: number;
  /** Weight of each row's soft term (0: targets are not read). */
  soft: number;
  /** Temperature τ of the soft term. */
  tau: number;
  /** KL divergence (true) or soft cross-entropy (false) as the soft term. */
  kl: boolean;
}

/**
 * The native weights of `spec` (lib/learn/losses.ts) for a batch whose "mean" terms divide by `total`:
 * `ce` → hard 1/N; `soft-ce` → soft 1/N, CE; `kd-db3` → hard 1/N (unless `hard: false`), soft 1 (a sum), KL;
 * `kd` → hard (1−α)/N, soft α·τ²/N, KL.
 */
export function nativeLossWeights(spec: LossSpec, total: number): NativeLossWeights {
  const need = lossNeeds(spec);
  switch (spec.kind) {
    case "ce":
      return { hard: 1 / total, soft: 0, tau: 1, kl: false };
    case "soft-ce":
      return { hard: 0, soft: 1 / total, tau: spec.temperature ?? DEFAULT_TEMPERATURE["soft-ce"], kl: false };
    case "kd-db3":
      return {
        hard: need.y ? 1 / total : 0,
        soft: 1,
        tau: spec.temperature ?? DEFAULT_TEMPERATURE["kd-db3"],
        kl: true,
      };
    case "kd": {
      const { alpha, temperature: tau } = spec;
      return {
        hard: need.y ? (1 - alpha) / total : 0,
        soft: need.targets ? alpha * tau * tau / total : 0,
        tau,
        kl: true,
      };
    }
  }
}

/** Result of {@link NativeLeNetGrads.tryCreate}. */
export type NativeLeNetGradsResult = { ok: true; engine: NativeLeNetGrads } | { ok: false; reason: string };

/** Options for {@link NativeLeNetGrads.tryCreate}. */
export interface NativeLeNetGradsOptions {
  /** Native threads per call (default: number of cores). */
  threads?: number;
  /** Build options (cache folder, compiler). */
  build?: BuildOptions;
}

/**
 * The dims of `model` if it is a DB3 LeNet-5 (lib/models/lenet.ts: conv 5×5 → ReLU → pool → conv 5×5 →
 * ReLU → pool → flatten → dense → ReLU → dense), else a reason why not.
 */
export function leNetDims(model: tfl.LayersModel): LeNetDims | string {
  const classes = model.layers.map((l) => l.getClassName());
  const want = [
    "InputLayer",
    "Conv2D",
    "Activation",
    "MaxPooling2D",
    "Conv2D",
    "Activation",
    "MaxPooling2D",
    "Flatten",
    "Dense",
    "Activation",
    "Dense",
  ];
  if (classes.join() !== want.join()) {
    return `model ${model.name} is not a DB3 LeNet-5 (layers ${classes.join(", ")}); the native gradient ` +
      "engine covers only that network so far";
  }
  const s = model.weights.map((w) => w.shape as number[]);
  const input = model.inputs[0].shape as number[];
  if (s[0][0] !== 5 || s[0][1] !== 5 || s[2][0] !== 5) return `model ${model.name}: conv kernels are not 5×5`;
  return { h: input[1], w: input[2], cin: input[3], c1: s[0][3], c2: s[2][3], hid: s[4][1], k: s[6][1] };
}

/** Loss and gradients of a DB3 LeNet-5 on the native engine. Call {@link close} when done. */
export class NativeLeNetGrads {
  readonly dims: LeNetDims;
  /** Total number of parameters (the length of the flat parameter and gradient arrays). */
  readonly paramCount: number;
  readonly threads: number;
  #lib: Lib;
  #handle: Deno.PointerValue | null;

  private constructor(dims: LeNetDims, lib: Lib, handle: Deno.PointerValue, threads: number) {
    this.dims = dims;
    this.#lib = lib;
    this.#handle = handle;
    this.threads = threads;
    this.paramCount = Number(lib.symbols.bkd_lenet_param_count(handle));
  }

  /** An engine for `dims`, or `{ok: false, reason}` when the native engine cannot be used. */
  static async tryCreate(
    dims: LeNetDims,
    opts: NativeLeNetGradsOptions = {},
  ): Promise<NativeLeNetGradsResult> {
    const build = await buildNative({ ...opts.build, source: "lenet_grads.cpp" });
    if (!build.ok) return build;
    let lib: Lib;
    try {
      lib = openNativeLibrary(build.path, SYMBOLS);
    } catch (e) {
      return { ok: false, reason: `cannot load ${build.path}: ${e instanceof Error ? e.message : e}` };
    }
    const err = new Uint8Array(512);
    const words = Int32Array.from([dims.h, dims.w, dims.cin, dims.c1, dims.c2, dims.hid, dims.k]);
    const handle = lib.symbols.bkd_lenet_create(words, err, err.length);
    if (handle === null) return { ok: false, reason: cString(err) };
    const threads = Math.max(1, Math.floor(opts.threads ?? coreCount()));
    return { ok: true, engine: new NativeLeNetGrads(dims, lib, handle, threads) };
  }

  /**
   * Mean softmax cross-entropy of the `n` images in `x` (NHWC rows) against labels `y`, and its gradient
   * with respect to `params` (flat, tfjs `getWeights()` order), written into `out` (or a new array).
   */
  grads(
    params: Float32Array,
    x: Float32Array,
    y: Int32Array,
    n: number,
    out?: Float32Array,
  ): { loss: number; grads: Float32Array } {
    // Mean CE is the general loss with a hard term of 1/n and no soft term (as bkd_lenet_grads in C).
    const ce: NativeLossWeights = { hard: 1 / Math.max(n, 1), soft: 0, tau: 1, kl: false };
    return this.lossGrads(params, { x, y }, n, ce, out);
  }

  /**
   * The loss `w` (see {@link NativeLossWeights}) of the `n` images in `x`, with labels `y` (read when
   * `w.hard ≠ 0`) and n×K target scores `targets` (read when `w.soft ≠ 0`), and its gradient with respect
   * to `params`, written into `out` (or a new array).
   */
  lossGrads(
    params: Float32Array,
    batch: { x: Float32Array; y?: Int32Array; targets?: Float32Array },
    n: number,
    w: NativeLossWeights,
    out?: Float32Array,
  ): { loss: number; grads: Float32Array } {
    if (this.#handle === null) throw new Error("NativeLeNetGrads: used after close(); create a new one");
    const d = this.dims;
    if (params.length !== this.paramCount) {
      throw new Error(
        `NativeLeNetGrads: params has ${params.length} floats, the network needs ${this.paramCount}`,
      );
    }
    if (batch.x.length < n * d.h * d.w * d.cin) {
      throw new Error(
        `NativeLeNetGrads: ${n} images need ${n * d.h * d.w * d.cin} input floats, got ${batch.x.length}`,
      );
    }
    if (w.hard !== 0 && (!batch.y || batch.y.length < n)) {
      throw new Error(
        `NativeLeNetGrads: the loss has a hard-label term; pass ${n} labels (got ${batch.y?.length ?? 0})`,
      );
    }
    if (w.soft !== 0 && (!batch.targets || batch.targets.length < n * d.k)) {
      throw new Error(
        `NativeLeNetGrads: the loss has a soft term; pass ${n}×${d.k} target scores (got ${
          batch.targets?.length ?? 0
        })`,
      );
    }
    const grads = out ?? new Float32Array(this.paramCount);
    const loss = new Float32Array(1);
    const rc = this.#lib.symbols.bkd_lenet_loss_grads(
      this.#handle,
      params,
      batch.x,
      batch.y ?? new Int32Array(1),
      batch.targets ?? new Float32Array(1),
      BigInt(n),
      Float64Array.from([w.hard, w.soft, w.tau]),
      w.kl ? 1 : 0,
      grads,
      loss,
      this.threads,
    );
    if (rc === -1) {
      throw new Error(`NativeLeNetGrads: a label is outside 0…${d.k - 1}; labels must be class indices`);
    }
    if (rc === -2) throw new Error(`NativeLeNetGrads: temperature ${w.tau} must be > 0`);
    return { loss: loss[0], grads };
  }

  /** Free the native state. */
  close(): void {
    if (this.#handle !== null) this.#lib.symbols.bkd_lenet_free(this.#handle);
    this.#handle = null;
  }
}
