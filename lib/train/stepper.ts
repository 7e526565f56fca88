/**
 * The trainer's view of whatever takes its optimizer steps: one tfjs replica in this thread, a worker
 * pool of them, or the native engine (`native_stepper.ts`).
 *
 * @module
 */
import type { OptimizerState, StepParams } from "../learn/optim.ts";

/** Takes optimizer steps on batches of the training set (row indices) and answers what the trainer asks. */
export interface Stepper {
  /** One optimizer step on rows `idx` of the training set; resolves to the batch loss. */
  step(idx: Int32Array, hp: StepParams): Promise<number>;
  /** All weights, `model.getWeights()` order (copies). */
  weights(): Promise<Float32Array[]>;
  optimizerState(): Promise<OptimizerState>;
  /** Predicted labels of `n` inputs with the current weights. */
  labels(x: Float32Array, n: number): Promise<Int32Array>;
  close(): void;
}
