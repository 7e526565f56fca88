/**
 * Losses of the trainer and its worker replicas (kept in `lib/learn`, below both `lib/train` and
 * `lib/parallel`, so neither imports the other to share them).
 *
 * Training losses for teachers and students, written as differentiable tfjs ops.
 *
 * Every loss is a sum of per-sample terms, each either divided by the batch size N ("mean" terms) or
 * not ("sum" terms, DB3's KL). Callers that split one batch into shards pass the *whole* batch size
 * as `total`, so the shard losses (and their gradients) add up exactly to the whole-batch loss.
 *
 * Symbols: S = student logits s, z = target scores (teacher logits or distance-based scores),
 * y = hard labels, τ = temperature, α = KD weight, p = softmax(z/τ), q = softmax(s/τ).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Which loss the trainer minimises (see DESIGN.md, lib/train). */
export type LossSpec =
  | { kind: "ce" }
  | { kind: "soft-ce"; temperature?: number }
  | { kind: "kd-db3"; temperature?: number; hard?: boolean }
  | { kind: "kd"; alpha: number; temperature: number };

/** Tensors of one (shard of a) batch that a loss may read. */
export interface LossTargets {
  /** Hard labels y, int32 `[n]`. */
  y?: tf.Tensor1D;
  /** Target scores z, float32 `[n, K]` (logits-like; the loss applies its own τ). */
  targets?: tf.Tensor2D;
}

/** Default temperatures: τ = 1 for soft-ce (CAKE), τ = 20 for kd-db3 (DB3 reference). */
export const DEFAULT_TEMPERATURE = { "soft-ce": 1, "kd-db3": 20 } as const;

/** Which inputs a loss needs: `y` (hard labels) and/or `targets` (n×K scores). */
export function lossNeeds(spec: LossSpec): { y: boolean; targets: boolean } {
  switch (spec.kind) {
    case "ce":
      return { y: true, targets: false };
    case "soft-ce":
      return { y: false, targets: true };
    case "kd-db3":
      return { y: spec.hard !== false, targets: true };
    case "kd":
      return { y: spec.alpha < 1, targets: spec.alpha > 0 };
  }
}

/** Throw a readable error if the data lacks what `spec` needs. */
export function checkLossInputs(spec: LossSpec, has: { y: boolean; targets: boolean }): void {
  const need = lossNeeds(spec);
  if (need.y && !has.y) {
    throw new Error(`loss "${spec.kind}" needs hard labels: pass TrainSet.y (Int32Array, one per image)`);
  }
  if (need.targets && !has.targets) {
    throw new Error(`loss "${spec.kind}" needs target scores: pass TrainSet.targets (Float32Array, n×K)`);
  }
}

/** Per-sample cross-entropy −log softmax(s)[y], shape `[n]`. */
export function perSampleCE(logits: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const logq = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.cast(y, "int32"), logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(onehot, logq), 1)) as tf.Tensor1D;
  });
}

/** Per-sample soft cross-entropy −Σ_k softmax(z/τ)_k · log softmax(s/τ)_k, shape `[n]`. */
export function perSampleSoftCE(logits: tf.Tensor2D, targets: tf.Tensor2D, tau: number): tf.Tensor1D {
  return tf.tidy(() => {
    const p = tf.softmax(tf.div(targets, tau));
    const logq = tf.logSoftmax(tf.div(logits, tau));
    return tf.neg(tf.sum(tf.mul(p, logq), 1)) as tf.Tensor1D;
  });
}

/**
 * Per-sample KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) with p = softmax(z/τ), q = softmax(s/τ),
 * shape `[n]`. Computed from log-softmaxes, so p_k = 0 contributes 0 (as torch's KLDivLoss does).
 */
export function perSampleKL(logits: tf.Tensor2D, targets: tf.Tensor2D, tau: number): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.div(targets, tau));
    const logq = tf.logSoftmax(tf.div(logits, tau));
    return tf.sum(tf.mul(tf.exp(logp), tf.sub(logp, logq)), 1) as tf.Tensor1D;
  });
}

/**
 * The scalar loss of `spec` on a batch (or a shard of one).
 *
 * - `ce`: mean_j CE(s_j, y_j)
 * - `soft-ce`: mean_j CE(softmax(z_j/τ), softmax(s_j/τ)), τ = 1 by default
 * - `kd-db3`: mean_j CE(s_j, y_j) + Σ_j KL(p_j ‖ q_j), τ = 20 by default, no α, no τ²;
 *   `hard: false` drops the CE term
 * - `kd`: (1 − α)·mean_j CE(s_j, y_j) + α·τ²·mean_j KL(p_j ‖ q_j)
 *
 * @param total the size N of the whole batch that "mean" terms divide by (default: this batch's size)
 */
export function computeLoss(spec: LossSpec, logits: tf.Tensor2D, t: LossTargets, total?: number): tf.Scalar {
  const n = total ?? logits.shape[0];
  return tf.tidy(() => {
    const need = lossNeeds(spec);
    checkLossInputs(spec, { y: !!t.y, targets: !!t.targets });
    const meanOf = (v: tf.Tensor1D) => tf.div(tf.sum(v), n) as tf.Scalar;
    switch (spec.kind) {
      case "ce":
        return meanOf(perSampleCE(logits, t.y!));
      case "soft-ce":
        return meanOf(
          perSampleSoftCE(logits, t.targets!, spec.temperature ?? DEFAULT_TEMPERATURE["soft-ce"]),
        );
      case "kd-db3": {
        const tau = spec.temperature ?? DEFAULT_TEMPERATURE["kd-db3"];
        const kl = tf.sum(perSampleKL(logits, t.targets!, tau)) as tf.Scalar;
        return need.y ? tf.add(meanOf(perSampleCE(logits, t.y!)), kl) as tf.Scalar : kl;
      }
      case "kd": {
        const { alpha, temperature: tau } = spec;
        const parts: tf.Scalar[] = [];
        if (need.y) parts.push(tf.mul(1 - alpha, meanOf(perSampleCE(logits, t.y!))));
        if (need.targets) {
          parts.push(tf.mul(alpha * tau * tau, meanOf(perSampleKL(logits, t.targets!, tau))));
        }
        return (parts.length === 1 ? parts[0] : tf.add(parts[0], parts[1])) as tf.Scalar;
      }
    }
  });
}
