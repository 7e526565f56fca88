/**
 * Optimizers as plain functions over `Float32Array`s.
 *
 * Parameters, gradients and optimizer state are flat arrays (one per trainable weight, in
 * `model.trainableWeights` order), so the state is trivially serialisable for checkpoints and every
 * data-parallel replica that applies the same step to the same arrays stays bit-identical (plain JS
 * arithmetic is deterministic). Semantics follow PyTorch's `torch.optim.Adam` and `torch.optim.SGD`.
 *
 * @module
 */

/** Adam (Kingma & Ba), PyTorch defaults: β1 0.9, β2 0.999, ε 1e-8; optional L2 weight decay. */
export interface AdamConfig {
  kind: "adam";
  /** Learning rate η (the peak rate under a one-cycle schedule). */
  lr: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** L2 penalty added to the gradient (PyTorch `weight_decay`, not AdamW); default 0. */
  weightDecay?: number;
}

/** SGD with momentum μ and weight decay as in PyTorch: g ← g + wd·w, b ← μ·b + g, w ← w − η·b. */
export interface SgdConfig {
  kind: "sgd";
  lr: number;
  /** Momentum μ (default 0). */
  momentum?: number;
  /** Weight decay wd (default 0), added to the gradient before momentum. */
  weightDecay?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
}

/** Optimizer choice in a TrainConfig. */
export type OptimizerConfig = AdamConfig | SgdConfig;

/**
 * Serialisable optimizer state. `slots[i]` are the per-parameter buffers for weight i:
 * Adam `[m, v]` (first and second moments), SGD `[b]` (momentum buffer, empty when μ = 0).
 */
export interface OptimizerState {
  kind: OptimizerConfig["kind"];
  /** Number of steps taken (t in Adam's bias correction). */
  step: number;
  slots: Float32Array[][];
}

/** Per-step hyperparameters set by the schedule: learning rate and (optionally) momentum / β1. */
export interface StepParams {
  lr: number;
  /** Overrides SGD momentum or Adam β1 for this step (one-cycle momentum cycling). */
  momentum?: number;
}

/** Fresh (zero) state for weights of the given element counts. */
export function createOptimizerState(cfg: OptimizerConfig, sizes: number[]): OptimizerState {
  const slots = sizes.map((n) => {
    if (cfg.kind === "adam") return [new Float32Array(n), new Float32Array(n)];
    return (cfg.momentum ?? 0) > 0 ? [new Float32Array(n)] : [];
  });
  return { kind: cfg.kind, step: 0, slots };
}

/**
 * One optimizer step, in place: updates `params` and `state` from `grads`.
 * `grads` are not modified.
 */
export function optimizerStep(
  cfg: OptimizerConfig,
  state: OptimizerState,
  params: Float32Array[],
  grads: Float32Array[],
  hp: StepParams,
): void {
  if (state.kind !== cfg.kind) throw new Error(`optimizer state is ${state.kind}, config is ${cfg.kind}`);
  if (params.length !== grads.length || params.length !== state.slots.length) {
    throw new Error(`optimizer: ${params.length} params, ${grads.length} grads, ${state.slots.length} slots`);
  }
  const t = state.step + 1;
  const lr = hp.lr;
  if (cfg.kind === "adam") {
    const b1 = hp.momentum ?? cfg.beta1 ?? 0.9;
    const b2 = cfg.beta2 ?? 0.999;
    const eps = cfg.epsilon ?? 1e-8;
    const wd = cfg.weightDecay ?? 0;
    const bc1 = 1 - Math.pow(b1, t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    const stepSize = lr / bc1;
    for (let i = 0; i < params.length; i++) {
      const w = params[i], g = grads[i], [m, v] = state.slots[i];
      for (let j = 0; j < w.length; j++) {
        const gj = wd !== 0 ? g[j] + wd * w[j] : g[j];
        const mj = (m[j] = b1 * m[j] + (1 - b1) * gj);
        const vj = (v[j] = b2 * v[j] + (1 - b2) * gj * gj);
        // PyTorch: w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
        w[j] -= stepSize * mj / (Math.sqrt(vj) / bc2Sqrt + eps);
      }
    }
  } else {
    const mu = hp.momentum ?? cfg.momentum ?? 0;
    const wd = cfg.weightDecay ?? 0;
    const nesterov = cfg.nesterov ?? false;
    for (let i = 0; i < params.length; i++) {
      const w = params[i], g = grads[i], slot = state.slots[i];
      if (mu > 0 && slot.length === 0) slot.push(new Float32Array(w.length));
      const b = slot[0];
      for (let j = 0; j < w.length; j++) {
        let d = wd !== 0 ? g[j] + wd * w[j] : g[j];
        if (mu > 0) {
          // PyTorch initialises the buffer with the first gradient.
          const bj = (b[j] = t === 1 ? d : mu * b[j] + d);
          d = nesterov ? d + mu * bj : bj;
        }
        w[j] -= lr * d;
      }
    }
  }
  state.step = t;
}

/** Deep copy of a state (e.g. to hand to another replica). */
export function cloneOptimizerState(s: OptimizerState): OptimizerState {
  return { kind: s.kind, step: s.step, slots: s.slots.map((ss) => ss.map((a) => a.slice())) };
}
