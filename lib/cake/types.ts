/**
 * The common shape of every synthetic transfer set the CAKE module produces (CAKE itself, the naive
 * CE-only synthesis, the conditional-generator baseline), so students and plots treat them alike.
 * It is a `TrainSet` of lib/train with soft targets (`x`, `shape`, `targets`).
 *
 * @module
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";

/** Which synthesis method produced a set. */
export type SynthesisMethod = "cake" | "naive" | "generator";

/** Synthetic inputs with the teacher's logits as soft targets, and an audit trail. */
export interface SyntheticSet {
  /** The method that made the set. */
  method: SynthesisMethod;
  /** Inputs in the teacher's input space, flat, shape `shape`. */
  x: Float32Array;
  /** [n, ...inputShape]. */
  shape: number[];
  /** Teacher logits on `x`, n×K (soft targets: softmax at τ = 1). */
  targets: Float32Array;
  /** K. */
  numClasses: number;
  /** Class each sample was made for. */
  targetClass: Int32Array;
  /** argmax of the teacher's logits on the final sample (hard targets). */
  teacherClass: Int32Array;
  /** The oracle's ledger after synthesis. */
  ledger: LedgerSnapshot;
}

/** argmax of each row of an n×K matrix. */
export function argmaxRows(scores: Float32Array, k: number): Int32Array {
  const n = Math.floor(scores.length / k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (scores[i * k + j] > scores[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Fraction of positions where `a` and `b` agree (NaN when empty). */
export function agreement(a: Int32Array, b: Int32Array): number {
  let hit = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) hit++;
  return a.length ? hit / a.length : NaN;
}
