/**
 * Decision fields of 2-D classifiers: the class-0 probability over a regular grid, in the form
 * `decisionField` (lib/show/plots.ts) draws. Used by the quickstart and the CAKE Figure 1.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LabeledData } from "../data/mod.ts";
import { grid2d } from "../data/toys.ts";
import type { DecisionFieldInput } from "../show/plots.ts";
import { predictLogits } from "../learn/evaluate.ts";

/** Grid of a field: square [lo, hi]² with `steps` points per axis (the paper: [−2, 2]², 200). */
export interface FieldGrid {
  lo?: number;
  hi?: number;
  steps?: number;
}

/**
 * Class-0 probability p(y = 0 | x) = softmax(f(x))₀ of a 2-D classifier `model` on the grid,
 * optionally with labelled points drawn on top.
 */
export function classField(
  model: tfl.LayersModel,
  grid: FieldGrid = {},
  points?: LabeledData,
): DecisionFieldInput {
  const g = grid2d(grid);
  const n = g.steps * g.steps;
  const z = predictLogits(model, g.points, n, 8192);
  const k = z.length / n;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, z[i * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(z[i * k + c] - max);
    values[i] = Math.exp(z[i * k] - max) / sum;
  }
  const lo = grid.lo ?? -2;
  const hi = grid.hi ?? 2;
  const field: DecisionFieldInput = {
    grid: { x0: lo, x1: hi, y0: lo, y1: hi, nx: g.steps, ny: g.steps },
    values,
  };
  if (points) field.points = pointsOf(points);
  return field;
}

/** Split a 2-D point set into the coordinate arrays a field plot overlays. */
export function pointsOf(d: LabeledData): { x: Float32Array; y: Float32Array; labels: Int32Array } {
  const n = d.shape[0];
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = d.x[2 * i];
    y[i] = d.x[2 * i + 1];
  }
  return { x, y, labels: d.y };
}
