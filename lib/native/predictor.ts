/**
 * `NativePredictor`: label and logit queries on a sequential tfjs model through the native engine
 * (`forward.cpp`, compiled by `build.ts`, called with Deno FFI). Same surface as `ModelPool`'s
 * inference half: `predictLabels(x, n)`, `predictLogits(x, n)`, `spec`, `size`, `close()`.
 *
 * The forward call is `nonblocking`: it runs on a runtime thread and spreads the batch over `threads`
 * native threads, while the JS thread stays free. Input arrays are passed without copying and kept
 * referenced until the call settles (the label oracle's scratch arrays are valid exactly that long).
 * Calls on one predictor may overlap; the engine runs them one after another. The model's weights are
 * copied (packed) when the predictor is created: later changes to the model do not reach it.
 *
 * Labels: first maximum wins, as tfjs `argMax`; a NaN logit never wins and a row of NaN logits gets
 * label 0 (deterministic for any input; the label oracle clamps inputs, so it never sends NaN).
 *
 * Needs `--allow-ffi`, `--allow-run` (compiler), `--allow-read`/`--allow-write` (cache) and
 * `--allow-env`; without them {@link NativePredictor.tryCreate} reports the engine unavailable.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { ModelSpec } from "../models/registry.ts";
import { coreCount } from "../parallel/pool.ts";
import { buildNative, type BuildOptions, cString, type NativeBuild, openNativeLibrary } from "./build.ts";
import { buildPlan, type NativePlan, UnsupportedModelError } from "./plan.ts";

const SYMBOLS = {
  bkd_plan_create: { parameters: ["buffer", "i64", "buffer", "i64", "buffer", "i32"], result: "pointer" },
  bkd_plan_info: { parameters: ["pointer", "i32"], result: "i64" },
  bkd_forward: {
    parameters: ["pointer", "buffer", "i64", "buffer", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  bkd_last_error: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  bkd_plan_free: { parameters: ["pointer"], result: "void" },
  bkd_isa: { parameters: ["buffer", "i32"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

function openLibrary(path: string): Lib {
  return openNativeLibrary(path, SYMBOLS);
}

/** What `describe()` returns, for run records. */
export interface NativeEngineInfo {
  engine: "native";
  /** Compiler command and the first line of its `--version`. */
  compiler: string;
  flags: string;
  threads: number;
  /** CPU model name. */
  cpu: string;
  /** Vector instruction set the library was built for, e.g. "avx512f x16". */
  isa: string;
  /** One line, e.g. "native (g++ 12.2.0, avx512f x16, 2 threads)". */
  label: string;
}

/** Options for {@link NativePredictor.create}. */
export interface NativePredictorOptions {
  /** Native threads per call (default: number of cores). */
  threads?: number;
  /** Build options (cache folder, compiler). */
  build?: BuildOptions;
  /** Called with the reason when {@link NativePredictor.create} returns undefined. */
  onUnavailable?: (reason: string) => void;
}

/** Outcome of {@link NativePredictor.tryCreate}. */
export type NativeCreateResult = { ok: true; predictor: NativePredictor } | { ok: false; reason: string };

/** The native inference engine on one model (see the module doc). */
export class NativePredictor {
  readonly spec: ModelSpec;
  /** Native threads per call. */
  readonly size: number;
  /** The plan's ops, e.g. ["conv 5×5/1×1 1→20 relu", "maxpool 2×2/2×2", ...]. */
  readonly ops: readonly string[];
  readonly #lib: Lib;
  readonly #build: NativeBuild;
  readonly #isa: string;
  readonly #inputSize: number;
  readonly #numClasses: number;
  #plan: Deno.PointerValue;
  #inflight = 0;
  #closed = false;

  private constructor(
    spec: ModelSpec,
    lib: Lib,
    build: NativeBuild,
    plan: Deno.PointerObject,
    p: NativePlan,
    threads: number,
  ) {
    this.spec = spec;
    this.size = threads;
    this.ops = p.ops;
    this.#lib = lib;
    this.#build = build;
    this.#plan = plan;
    this.#inputSize = p.inputSize;
    this.#numClasses = p.outputSize;
    const buf = new Uint8Array(64);
    lib.symbols.bkd_isa(buf, buf.length);
    this.#isa = cString(buf);
  }

  /**
   * A predictor for `model` (whose architecture `spec` describes), or `{ok: false, reason}` when the
   * engine is disabled, cannot be built or loaded, or the model has an unsupported layer.
   */
  static async tryCreate(
    model: tfl.LayersModel,
    spec: ModelSpec,
    opts: NativePredictorOptions = {},
  ): Promise<NativeCreateResult> {
    let plan: NativePlan;
    try {
      plan = buildPlan(model);
    } catch (e) {
      if (e instanceof UnsupportedModelError) return { ok: false, reason: e.message };
      throw e;
    }
    const want = spec.inputShape.reduce((a, b) => a * b, 1);
    if (plan.inputSize !== want || plan.outputSize !== spec.numClasses) {
      return {
        ok: false,
        reason:
          `model maps [${plan.inputShape}] to ${plan.outputSize} outputs but spec says [${spec.inputShape}] → ` +
          `${spec.numClasses} classes`,
      };
    }
    const build = await buildNative(opts.build);
    if (!build.ok) return build;
    let lib: Lib;
    try {
      lib = openLibrary(build.path);
    } catch (e) {
      return { ok: false, reason: `cannot load ${build.path}: ${e instanceof Error ? e.message : e}` };
    }
    const err = new Uint8Array(1024);
    const handle = lib.symbols.bkd_plan_create(
      plan.words,
      BigInt(plan.words.length),
      plan.params,
      BigInt(plan.params.length),
      err,
      err.length,
    );
    if (handle === null) return { ok: false, reason: `native engine rejected the plan: ${cString(err)}` };
    const inSize = Number(lib.symbols.bkd_plan_info(handle, 0));
    const outSize = Number(lib.symbols.bkd_plan_info(handle, 1));
    if (inSize !== plan.inputSize || outSize !== plan.outputSize) {
      lib.symbols.bkd_plan_free(handle);
      return {
        ok: false,
        reason:
          `native plan sizes ${inSize}→${outSize} differ from the model's ${plan.inputSize}→${plan.outputSize}`,
      };
    }
    const threads = Math.max(1, Math.floor(opts.threads ?? coreCount()));
    return { ok: true, predictor: new NativePredictor(spec, lib, build, handle, plan, threads) };
  }

  /**
   * A predictor, or undefined when the engine is unavailable or the model unsupported (the reason
   * goes to `opts.onUnavailable`).
   */
  static async create(
    model: tfl.LayersModel,
    spec: ModelSpec,
    opts: NativePredictorOptions = {},
  ): Promise<NativePredictor | undefined> {
    const r = await NativePredictor.tryCreate(model, spec, opts);
    if (r.ok) return r.predictor;
    opts.onUnavailable?.(r.reason);
    return undefined;
  }

  /** Argmax labels for `n` inputs stored row-major in `x` (`x.length` = n · ∏ inputShape). */
  async predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
    const labels = new Int32Array(this.#check("predictLabels", x, n));
    if (n > 0) await this.#forward(x, n, null, labels);
    return labels;
  }

  /** Logits (n × numClasses, row-major) for `n` inputs stored row-major in `x`. */
  async predictLogits(x: Float32Array, n: number): Promise<Float32Array> {
    const logits = new Float32Array(this.#check("predictLogits", x, n) * this.#numClasses);
    if (n > 0) await this.#forward(x, n, logits, null);
    return logits;
  }

  /** Engine, compiler, flags, threads and CPU, for run records. */
  describe(): NativeEngineInfo {
    const b = this.#build;
    const version = b.compilerVersion.match(/\d+\.\d+(\.\d+)?/)?.[0];
    return {
      engine: "native",
      compiler: `${b.compiler}: ${b.compilerVersion}`,
      flags: b.flags.join(" "),
      threads: this.size,
      cpu: b.cpu,
      isa: this.#isa,
      label: `native (${b.compiler}${version ? " " + version : ""}, ${this.#isa}, ${this.size} thread${
        this.size === 1 ? "" : "s"
      })`,
    };
  }

  /** Free the native plan (after calls in flight settle). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inflight === 0) this.#free();
  }

  #free(): void {
    if (this.#plan !== null) {
      this.#lib.symbols.bkd_plan_free(this.#plan);
      this.#plan = null;
    }
  }

  #check(what: string, x: Float32Array, n: number): number {
    if (this.#closed) throw new Error("NativePredictor is closed");
    if (!(x instanceof Float32Array)) throw new TypeError(`${what}: x must be a Float32Array`);
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`${what}: n must be a non-negative integer, got ${n}`);
    }
    if (x.length !== n * this.#inputSize) {
      throw new RangeError(
        `${what}: x has ${x.length} floats but n = ${n} inputs of shape [${this.spec.inputShape}] need ` +
          `${n} × ${this.#inputSize} = ${n * this.#inputSize}`,
      );
    }
    return n;
  }

  async #forward(x: Float32Array, n: number, logits: Float32Array | null, labels: Int32Array | null) {
    this.#inflight++;
    const keep = [x, logits, labels]; // referenced until the native call has returned
    try {
      const rc = await this.#lib.symbols.bkd_forward(this.#plan, x, BigInt(n), logits, labels, this.size);
      if (rc !== 0) {
        const buf = new Uint8Array(1024);
        this.#lib.symbols.bkd_last_error(this.#plan, buf, buf.length);
        throw new Error(`native forward failed: ${cString(buf)}`);
      }
    } finally {
      keep.length = 0;
      if (--this.#inflight === 0 && this.#closed) this.#free();
    }
  }
}
