/**
 * `NativeSeqTrainer`: loss, gradients and batch-norm running statistics of a feed-forward network (conv,
 * dense, batch norm, ReLU, max-pool, dropout, padding, flatten, residual add and global average pooling
 * layers: the DB3 LeNets and AlexNets, the CAKE LeNets, CNN and MLP, the CIFAR ResNets) on a batch,
 * computed by `seq_train.cpp` (compiled at first use by `build.ts`, called with Deno FFI) on all cores
 * (issue 12).
 *
 * Parameters and gradients are one flat float array in `model.trainableWeights` order and layout, the
 * state one flat array of the batch norms' moving mean and variance (`model.nonTrainableWeights`), so
 * together they are `model.getWeights()`. Losses are {@link NativeLossWeights} (`nativeLossWeights` maps
 * every loss of lib/learn/losses.ts). For a frozen network, {@link NativeSeqTrainer.infer} gives the logits in
 * inference mode and {@link NativeSeqTrainer.inputGrad} the gradient with respect to the input images of a
 * given upstream gradient on those logits, without parameter gradients (used by `frozen_net.ts`: teacher
 * queries for residual nets, the `logits+grad` oracle). {@link NativeSeqTrainer.tryCreate} returns `{ok: false, reason}` when
 * the engine is disabled (`BKD_NATIVE=0`), cannot be built, or a layer is unsupported (the reason names it).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { coreCount } from "../parallel/pool.ts";
import { buildNative, type BuildOptions, cString, openNativeLibrary } from "./build.ts";
import type { NativeLossWeights } from "./lenet_grads.ts";
import { UnsupportedModelError } from "./plan.ts";
import { describeSeq, type SeqDesc } from "./seq_desc.ts";

const SYMBOLS = {
  bkd_seq_create: { parameters: ["buffer", "i32", "buffer", "i32"], result: "pointer" },
  bkd_seq_param_count: { parameters: ["pointer"], result: "i64" },
  bkd_seq_state_count: { parameters: ["pointer"], result: "i64" },
  bkd_seq_loss_grads: {
    parameters: [
      "pointer", // net
      "buffer", // params
      "buffer", // state
      "buffer", // x
      "buffer", // y
      "buffer", // targets
      "i64", // n
      "buffer", // weights
      "i32", // kl
      "i32", // training
      "u64", // seed
      "buffer", // grads (or null)
      "buffer", // loss
      "buffer", // logits (or null)
      "i32", // threads
    ],
    result: "i32",
  },
  bkd_seq_infer: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i64", "buffer", "i32"],
    result: "i32",
  },
  bkd_seq_input_grad: {
    parameters: ["pointer", "buffer", "buffer", "i64", "buffer", "buffer", "i32"],
    result: "i32",
  },
  bkd_seq_dropout_mask: { parameters: ["pointer", "i32", "u64", "i64", "buffer"], result: "i32" },
  bkd_seq_activation: { parameters: ["pointer", "i32", "buffer", "i64"], result: "i64" },
  bkd_seq_free: { parameters: ["pointer"], result: "void" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Result of {@link NativeSeqTrainer.tryCreate}. */
export type NativeSeqTrainerResult = { ok: true; engine: NativeSeqTrainer } | { ok: false; reason: string };

/** Options for {@link NativeSeqTrainer.tryCreate}. */
export interface NativeSeqTrainerOptions {
  /** Native threads per call (default: number of cores). */
  threads?: number;
  /** Build options (cache folder, compiler). */
  build?: BuildOptions;
}

/** A batch: NHWC images (`n` rows), labels (read when the loss has a hard term), n×K target scores. */
export interface NativeBatch {
  x: Float32Array;
  y?: Int32Array;
  targets?: Float32Array;
}

/** How to run one pass. */
export interface NativePassOptions {
  /**
   * Training mode (default true): batch norm on batch statistics and the moving ones updated in `state`;
   * dropout on. False: inference mode (moving statistics, no dropout, `state` unchanged).
   */
  training?: boolean;
  /** Dropout seed (any integer < 2⁶⁴ as a bigint or a safe integer); the mask is a function of it. */
  seed?: bigint | number;
  /** Where to write the gradients (a new array when absent). */
  out?: Float32Array;
  /** Also return the n×K logits. */
  logits?: boolean;
}

/** Loss, gradients and batch-norm statistics of a feed-forward network on the native engine. */
export class NativeSeqTrainer {
  readonly desc: SeqDesc;
  /** Length of the flat parameter / gradient array. */
  readonly paramCount: number;
  /** Length of the flat state array (batch-norm moving mean and variance). */
  readonly stateCount: number;
  readonly threads: number;
  #lib: Lib;
  #handle: Deno.PointerValue | null;

  private constructor(desc: SeqDesc, lib: Lib, handle: Deno.PointerValue, threads: number) {
    this.desc = desc;
    this.#lib = lib;
    this.#handle = handle;
    this.threads = threads;
    this.paramCount = Number(lib.symbols.bkd_seq_param_count(handle));
    this.stateCount = Number(lib.symbols.bkd_seq_state_count(handle));
  }

  /** An engine for `model`, or `{ok: false, reason}` when the native engine cannot train it. */
  static async tryCreate(
    model: tfl.LayersModel,
    opts: NativeSeqTrainerOptions = {},
  ): Promise<NativeSeqTrainerResult> {
    let desc: SeqDesc;
    try {
      desc = describeSeq(model);
    } catch (e) {
      if (e instanceof UnsupportedModelError) return { ok: false, reason: e.message };
      throw e;
    }
    const build = await buildNative({ ...opts.build, source: "seq_train.cpp" });
    if (!build.ok) return build;
    let lib: Lib;
    try {
      lib = openNativeLibrary(build.path, SYMBOLS);
    } catch (e) {
      return { ok: false, reason: `cannot load ${build.path}: ${e instanceof Error ? e.message : e}` };
    }
    const err = new Uint8Array(512);
    const handle = lib.symbols.bkd_seq_create(desc.words, desc.words.length, err, err.length);
    if (handle === null) return { ok: false, reason: `model ${model.name}: ${cString(err)}` };
    const threads = Math.max(1, Math.floor(opts.threads ?? coreCount()));
    const engine = new NativeSeqTrainer(desc, lib, handle, threads);
    const want = desc.paramSizes.reduce((a, b) => a + b, 0),
      wantState = desc.stateSizes.reduce((a, b) => a + b, 0);
    if (engine.paramCount !== want || engine.stateCount !== wantState) {
      engine.close();
      return {
        ok: false,
        reason:
          `model ${model.name}: the engine counts ${engine.paramCount} parameters and ${engine.stateCount} ` +
          `statistics, the model has ${want} and ${wantState}`,
      };
    }
    return { ok: true, engine };
  }

  /**
   * The loss `w` of the `n` images of `batch` and its gradient with respect to `params` (flat,
   * `trainableWeights` order). In training mode `state` (the batch norms' moving statistics) is updated in
   * place, as one tfjs training step does.
   */
  lossGrads(
    params: Float32Array,
    state: Float32Array,
    batch: NativeBatch,
    n: number,
    w: NativeLossWeights,
    opts: NativePassOptions = {},
  ): { loss: number; grads: Float32Array; logits?: Float32Array } {
    if (this.#handle === null) throw new Error("NativeSeqTrainer: used after close(); create a new one");
    const d = this.desc;
    const need = (what: string, got: number, want: number) => {
      if (got < want) throw new Error(`NativeSeqTrainer: ${what} needs ${want} floats, got ${got}`);
    };
    if (params.length !== this.paramCount) {
      throw new Error(
        `NativeSeqTrainer: params has ${params.length} floats, the network needs ${this.paramCount}`,
      );
    }
    if (state.length !== this.stateCount) {
      throw new Error(
        `NativeSeqTrainer: state has ${state.length} floats, the network needs ${this.stateCount}`,
      );
    }
    need(`${n} images`, batch.x.length, n * d.inputSize);
    if (w.hard !== 0 && (!batch.y || batch.y.length < n)) {
      throw new Error(
        `NativeSeqTrainer: the loss has a hard-label term; pass ${n} labels (got ${batch.y?.length ?? 0})`,
      );
    }
    if (w.soft !== 0) {
      need(`the soft term of ${n} rows (target scores)`, batch.targets?.length ?? 0, n * d.classes);
    }
    const grads = opts.out ?? new Float32Array(this.paramCount);
    if (grads.length !== this.paramCount) {
      throw new Error(
        `NativeSeqTrainer: out has ${grads.length} floats, the network needs ${this.paramCount}`,
      );
    }
    const loss = new Float32Array(1);
    const logits = opts.logits ? new Float32Array(n * d.classes) : null;
    const seed = BigInt.asUintN(64, BigInt(opts.seed ?? 0));
    const rc = this.#lib.symbols.bkd_seq_loss_grads(
      this.#handle,
      params,
      state,
      batch.x,
      batch.y ?? new Int32Array(1),
      batch.targets ?? new Float32Array(1),
      BigInt(n),
      Float64Array.from([w.hard, w.soft, w.tau]),
      w.kl ? 1 : 0,
      opts.training === false ? 0 : 1,
      seed,
      grads,
      loss,
      logits,
      this.threads,
    );
    if (rc === -1) {
      throw new Error(
        `NativeSeqTrainer: a label is outside 0…${d.classes - 1}; labels must be class indices`,
      );
    }
    if (rc === -2) throw new Error(`NativeSeqTrainer: temperature ${w.tau} must be > 0`);
    if (rc === -3) {
      throw new Error(`NativeSeqTrainer: out of memory for a batch of ${n}; use a smaller batch size`);
    }
    return { loss: loss[0], grads, ...(logits ? { logits } : {}) };
  }

  /**
   * Logits (n×K) of `n` images in inference mode (batch norm on the moving statistics in `state`, which is
   * only read; dropout off). Keeps the activations for {@link inputGrad} on the same batch.
   */
  infer(params: Float32Array, state: Float32Array, x: Float32Array, n: number): Float32Array {
    this.#checkArgs(params, state, x, n);
    const logits = new Float32Array(n * this.desc.classes);
    const rc = this.#lib.symbols.bkd_seq_infer(
      this.#handle,
      params,
      state,
      x,
      BigInt(n),
      logits,
      this.threads,
    );
    if (rc === -3) {
      throw new Error(`NativeSeqTrainer: out of memory for a batch of ${n}; use a smaller batch size`);
    }
    return logits;
  }

  /**
   * The input gradient dx = (∂logits/∂x)ᵀ·`dLogits` (n×K upstream gradient) of the inference function at
   * the batch of the last {@link infer} call: pass the same `params` and `x` (and `n`). No parameter
   * gradients are formed (the network is frozen). Returns n images' worth of floats (NHWC).
   */
  inputGrad(params: Float32Array, x: Float32Array, n: number, dLogits: Float32Array): Float32Array {
    this.#checkArgs(params, undefined, x, n);
    if (dLogits.length !== n * this.desc.classes) {
      throw new Error(
        `NativeSeqTrainer: dLogits has ${dLogits.length} floats, ${n} rows of ${this.desc.classes} logits need ` +
          `${n * this.desc.classes}`,
      );
    }
    const dx = new Float32Array(n * this.desc.inputSize);
    const rc = this.#lib.symbols.bkd_seq_input_grad(
      this.#handle,
      params,
      x,
      BigInt(n),
      dLogits,
      dx,
      this.threads,
    );
    if (rc === -4) {
      throw new Error(
        `NativeSeqTrainer: inputGrad on ${n} images without an infer() of that batch just before it; ` +
          "call infer(params, state, x, n) first",
      );
    }
    if (rc === -3) {
      throw new Error(`NativeSeqTrainer: out of memory for a batch of ${n}; use a smaller batch size`);
    }
    return dx;
  }

  #checkArgs(params: Float32Array, state: Float32Array | undefined, x: Float32Array, n: number): void {
    if (this.#handle === null) throw new Error("NativeSeqTrainer: used after close(); create a new one");
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`NativeSeqTrainer: n = ${n} is not a count`);
    if (params.length !== this.paramCount) {
      throw new Error(
        `NativeSeqTrainer: params has ${params.length} floats, the network needs ${this.paramCount}`,
      );
    }
    if (state && state.length !== this.stateCount) {
      throw new Error(
        `NativeSeqTrainer: state has ${state.length} floats, the network needs ${this.stateCount}`,
      );
    }
    if (x.length < n * this.desc.inputSize) {
      throw new Error(
        `NativeSeqTrainer: ${n} images need ${n * this.desc.inputSize} floats, got ${x.length}`,
      );
    }
  }

  /**
   * The dropout mask op `op` (an index of `desc.dropoutOps`) applies in training mode for `seed` on a batch
   * of `n`: per element 0 or 1/(1 − rate).
   */
  dropoutMask(op: number, seed: bigint | number, n: number): Float32Array {
    if (this.#handle === null) throw new Error("NativeSeqTrainer: used after close(); create a new one");
    const o = this.desc.ops[op];
    if (!o || o.kind !== "dropout") throw new Error(`NativeSeqTrainer: op ${op} is not a dropout`);
    const out = new Float32Array(n * o.out[0] * o.out[1] * o.out[2]);
    this.#lib.symbols.bkd_seq_dropout_mask(
      this.#handle,
      op,
      BigInt.asUintN(64, BigInt(seed)),
      BigInt(n),
      out,
    );
    return out;
  }

  /** The output of op `op` (NHWC, the whole batch) in the last {@link lossGrads} call. */
  activation(op: number): Float32Array {
    if (this.#handle === null) throw new Error("NativeSeqTrainer: used after close(); create a new one");
    const size = Number(this.#lib.symbols.bkd_seq_activation(this.#handle, op, null, 0n));
    if (size < 0) throw new Error(`NativeSeqTrainer: op ${op} does not exist (${this.desc.ops.length} ops)`);
    const out = new Float32Array(size);
    this.#lib.symbols.bkd_seq_activation(this.#handle, op, out, BigInt(size));
    return out;
  }

  /** Free the native state. */
  close(): void {
    if (this.#handle !== null) this.#lib.symbols.bkd_seq_free(this.#handle);
    this.#handle = null;
  }
}
