/**
 * Which engine answers the `logits+grad` oracle: the native engine in inference mode
 * ({@link NativeFrozenNet}: logits and input gradients on all cores, CIFAR ResNets included) when it can
 * be built and describes the teacher, else tfjs (`model.apply` + `tf.valueAndGrad` on the active backend),
 * with the reason. The choice comes from `LogitsGradOptions.engine`, else `BKD_GRAD_ENGINE`, else `auto`:
 * `native` (or fail, naming the reason), `tfjs` (never native), `auto`.
 *
 * The native pass is: logits z = T(clamp(x)) natively; loss and g = ∂loss/∂z with tfjs on z alone (the
 * caller's `lossOfLogits`, any tfjs function); dx = (∂z/∂x)ᵀ·g natively, zeroed where the clamp cut x
 * (as `tf.clipByValue`'s gradient does).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { envVar } from "../native/build.ts";
import { NativeFrozenNet } from "../native/frozen_net.ts";
import type { NativeEngineInfo } from "../native/predictor.ts";
import { InputError } from "../util/checks.ts";

/** Engine choices of the `logits+grad` oracle. */
export type GradEngine = "auto" | "native" | "tfjs";

/** Engine choices, for argument parsing. */
export const GRAD_ENGINES: readonly GradEngine[] = ["auto", "native", "tfjs"];

/** What the tfjs path records. */
export interface TfjsGradEngineInfo {
  engine: "tfjs";
  /** The tfjs backend that ran the passes (e.g. "wasm", "cpu", "tensorflow"). */
  backend: string;
  /** Why the native engine was not used (absent when tfjs was asked for). */
  nativeUnavailable?: string;
  label: string;
}

/** Which engine answered the `logits+grad` oracle, for run records. */
export type GradEngineInfo = NativeEngineInfo | TfjsGradEngineInfo;

/**
 * Parse an engine name (case and surrounding blanks ignored): undefined when unset or empty, an
 * {@link InputError} naming `source` and the valid names when unknown.
 */
export function parseGradEngine(v: string | undefined, source = "engine"): GradEngine | undefined {
  const s = v?.trim().toLowerCase();
  if (s === undefined || s === "") return undefined;
  if (GRAD_ENGINES.includes(s as GradEngine)) return s as GradEngine;
  throw new InputError(
    `${source} ${JSON.stringify(v)} is not a logits+grad engine; use one of ${GRAD_ENGINES.join(", ")} ` +
      `(or leave it unset for "auto")`,
  );
}

/** The engine choice: the option, else `BKD_GRAD_ENGINE`, else "auto". */
export function gradEngineChoice(option?: GradEngine): GradEngine {
  if (option !== undefined) return parseGradEngine(option, "LogitsGradOptions.engine")!;
  return parseGradEngine(envVar("BKD_GRAD_ENGINE"), "BKD_GRAD_ENGINE") ?? "auto";
}

/** The chosen engine: a native net, or none (tfjs), and the record. */
export interface OpenedGradEngine {
  net: NativeFrozenNet | null;
  info: GradEngineInfo;
}

function tfjsInfo(reason?: string): TfjsGradEngineInfo {
  const backend = tf.getBackend();
  return {
    engine: "tfjs",
    backend,
    ...(reason ? { nativeUnavailable: reason } : {}),
    label: `tfjs ${backend}${reason ? " (native unavailable)" : ""}`,
  };
}

/**
 * Open the engine for `model` (input shape `inputShape`, `numClasses` logits). With "native" an
 * unavailable engine or an unsupported teacher throws, naming the reason; with "auto" it falls back to
 * tfjs and records the reason.
 */
export async function openGradEngine(
  model: tfl.LayersModel,
  choice: GradEngine,
  shape: { inputShape: number[]; numClasses: number },
  opts: { threads?: number } = {},
): Promise<OpenedGradEngine> {
  if (choice === "tfjs") return { net: null, info: tfjsInfo() };
  const r = await NativeFrozenNet.tryCreate(model, { threads: opts.threads });
  let reason: string;
  if (r.ok) {
    const s = r.net.spec;
    if (s.numClasses === shape.numClasses && s.inputShape.join() === shape.inputShape.join()) {
      return { net: r.net, info: r.net.describe() };
    }
    r.net.close();
    reason = `the native net maps [${s.inputShape}] to ${s.numClasses} logits, the oracle serves ` +
      `[${shape.inputShape}] → ${shape.numClasses}`;
  } else reason = r.reason;
  if (choice === "native") {
    throw new Error(
      `logits+grad oracle: the native engine is unavailable (${reason}); use engine "auto" or "tfjs" ` +
        "(BKD_GRAD_ENGINE) to run on tfjs",
    );
  }
  return { net: null, info: tfjsInfo(reason) };
}

/** `x` as float32 values, clamped to [lo, hi] on a copy when `clamp` is given. */
async function inputOf(
  x: tf.Tensor,
  clamp?: [number, number],
): Promise<{ raw: Float32Array; xs: Float32Array }> {
  const raw = Float32Array.from(await x.data() as ArrayLike<number>);
  if (!clamp) return { raw, xs: raw };
  const [lo, hi] = clamp;
  return { raw, xs: raw.map((v) => (v < lo ? lo : v > hi ? hi : v)) };
}

/** Logits of the batch `x` on the native net. */
export async function nativeLogits(net: NativeFrozenNet, x: tf.Tensor, clamp?: [number, number]) {
  const n = x.shape[0];
  const { xs } = await inputOf(x, clamp);
  return tf.tensor2d(net.logits(xs, n), [n, net.spec.numClasses]);
}

/** Loss, logits and input gradient of the batch `x` on the native net (see the module doc). */
export async function nativeValueAndGrad(
  net: NativeFrozenNet,
  x: tf.Tensor,
  lossOfLogits: (z: tf.Tensor2D) => tf.Scalar,
  clamp?: [number, number],
): Promise<{ loss: number; logits: tf.Tensor2D; dx: tf.Tensor }> {
  const n = x.shape[0];
  const { raw, xs } = await inputOf(x, clamp);
  // From the native forward to the native backward nothing awaits: another request on this net cannot
  // replace the kept activations in between.
  const logits = tf.tensor2d(net.logits(xs, n), [n, net.spec.numClasses]);
  const { value, grad } = tf.valueAndGrad((z: tf.Tensor2D) => lossOfLogits(z))(logits);
  const loss = value.dataSync()[0];
  const g = Float32Array.from(grad.dataSync() as ArrayLike<number>);
  value.dispose();
  grad.dispose();
  const dx = net.inputGrad(xs, n, g);
  if (clamp) {
    const [lo, hi] = clamp;
    for (let i = 0; i < dx.length; i++) if (!(raw[i] >= lo && raw[i] <= hi)) dx[i] = 0;
  }
  return { loss, logits, dx: tf.tensor(dx, x.shape) };
}
