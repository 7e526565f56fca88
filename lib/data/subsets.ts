/** Row selection on {@link LabeledData}: plain subsets, per-class samples, and class counts. */
import { Rng } from "../util/rng.ts";
import type { LabeledData } from "./types.ts";

/** Number of elements per row (product of `shape` after the first axis). */
export function rowSize(d: LabeledData): number {
  return d.shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * The rows `indices` of `d`, in the given order (copies; repeats allowed). Indices out of range throw a
 * RangeError.
 */
export function subset(d: LabeledData, indices: Int32Array): LabeledData {
  const n = d.shape[0];
  const size = rowSize(d);
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (j < 0 || j >= n) throw new RangeError(`subset: index ${j} at position ${i} is outside [0, ${n})`);
    x.set(d.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = d.y[j];
  }
  return { ...d, x, y, shape: [indices.length, ...d.shape.slice(1)], classNames: [...d.classNames] };
}

/**
 * Indices of a per-class random sample: up to `perClass` rows of each class (all of a class that has
 * fewer), drawn without replacement with `seed`, returned in ascending order.
 */
export function stratifiedIndices(d: LabeledData, perClass: number, seed: number): Int32Array {
  if (!Number.isInteger(perClass) || perClass < 0) {
    throw new RangeError(`stratifiedSubset: perClass must be a non-negative integer, got ${perClass}`);
  }
  const byClass: number[][] = Array.from({ length: d.numClasses }, () => []);
  for (let i = 0; i < d.y.length; i++) byClass[d.y[i]].push(i);
  const rng = new Rng(seed);
  const picked: number[] = [];
  for (const members of byClass) {
    const order = rng.permutation(members.length);
    const take = Math.min(perClass, members.length);
    for (let k = 0; k < take; k++) picked.push(members[order[k]]);
  }
  return Int32Array.from(picked.sort((a, b) => a - b));
}

/** {@link subset} of {@link stratifiedIndices}: a class-balanced random sample of `d`. */
export function stratifiedSubset(d: LabeledData, perClass: number, seed: number): LabeledData {
  return subset(d, stratifiedIndices(d, perClass, seed));
}

/** Number of rows of each class, indexed by label (length `numClasses`). */
export function classCounts(d: LabeledData): number[] {
  const counts = new Array<number>(d.numClasses).fill(0);
  for (let i = 0; i < d.y.length; i++) counts[d.y[i]]++;
  return counts;
}
