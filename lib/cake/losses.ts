/**
 * The CAKE synthesis objective, term by term.
 *
 * A synthesis batch holds B = R·G samples laid out as R rows ("groups of G"): row r has G samples
 * whose target classes are G distinct classes. Teacher logits are Z with shape [R, G, K].
 *
 * - L_cls   = G · mean_{r,i} CE(Z[r,i,:], y[r,i])                      ({@link lossCls})
 * - L_contr = ½·G² · mean_{r,i,j,k} (Z[r,i,k] − Z[r,j,k])²              ({@link lossContr})
 * - L_tv    = mean |x[h+1,w] − x[h,w]| + mean |x[h,w+1] − x[h,w]|       ({@link lossTv})
 * - L_ent   = (1/K) Σ_k p̄_k · log10 p̄_k, p̄ = batch mean of softmax(Z) ({@link lossEnt})
 *
 * The total is w_cls·L_cls + w_contr·L_contr + w_tv·L_tv + w_ent·L_ent. Only L_tv depends on the
 * inputs directly, so {@link logitsObjective} (everything but L_tv) is what goes through the teacher
 * oracle, and L_tv's gradient is computed locally by {@link lossTvGrad}.
 *
 * All functions are pure tf ops (differentiable) unless stated; none of them disposes its inputs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Loss weights of the objective (paper: w_cls, w_contr, w_tv, w_ent). */
export interface CakeWeights {
  /** w_cls: weight of the classification term L_cls. */
  cls: number;
  /** w_contr: weight of the contrastive term L_contr (0 switches it off). */
  contr: number;
  /** w_tv: weight of the total-variation image prior L_tv (0 switches it off; ignored for points). */
  tv: number;
  /** w_ent: weight of the batch-entropy term L_ent (default 0, off). */
  ent: number;
}

/**
 * L_cls = G · mean CE(Z, y): cross entropy of the teacher logits against the target classes, averaged
 * over all B = R·G samples and scaled by the number of groups G.
 *
 * @param z teacher logits, [B, K] or [R, G, K]
 * @param y target class per sample (length B, row-major over [R, G]); int32 tensor or Int32Array
 * @param groups G, the number of groups per row
 */
export function lossCls(z: tf.Tensor, y: tf.Tensor1D | Int32Array, groups: number): tf.Scalar {
  return tf.tidy(() => {
    const k = z.shape[z.rank - 1];
    const z2 = tf.reshape(z, [-1, k]) as tf.Tensor2D;
    const yt = y instanceof Int32Array ? tf.tensor1d(y, "int32") : y;
    const logp = tf.logSoftmax(z2);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(yt, k)), 1);
    return tf.mul(tf.neg(tf.mean(picked)), groups) as tf.Scalar;
  });
}

/**
 * L_contr = ½·G² · mean over (r, i, j, k) of (Z[r,i,k] − Z[r,j,k])²: pulls the logits of the G samples
 * of one row (which have G different target classes) towards each other, so that CE (which pushes
 * each sample into its own class) and this term balance near the decision boundaries.
 *
 * Computed in O(R·G·K) through the identity Σ_{i,j}(a_i − a_j)² = 2G Σ_i (a_i − ā)², which gives
 * L_contr = G² · mean_{r,i,k} (Z[r,i,k] − Z̄[r,k])², with Z̄[r,k] the row mean over the G samples.
 *
 * @param z teacher logits, [R, G, K] (or [B, K] together with `groups`)
 * @param groups G; required when `z` is [B, K], checked against z.shape[1] when z is [R, G, K]
 */
export function lossContr(z: tf.Tensor, groups?: number): tf.Scalar {
  return tf.tidy(() => {
    const z3 = asRows(z, groups);
    const g = z3.shape[1];
    const centred = tf.sub(z3, tf.mean(z3, 1, true));
    return tf.mul(tf.mean(tf.square(centred)), g * g) as tf.Scalar;
  });
}

/**
 * L_ent = (1/K) Σ_k p̄_k · log10 p̄_k with p̄ = mean over the batch of softmax(Z): the negative entropy
 * (in decades, divided by K) of the batch's average prediction. Minimising it spreads a batch over the
 * classes. Off by default (w_ent = 0).
 *
 * @param z teacher logits, [B, K] or [R, G, K]
 */
export function lossEnt(z: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const k = z.shape[z.rank - 1];
    const p = tf.mean(tf.softmax(tf.reshape(z, [-1, k]) as tf.Tensor2D), 0);
    const logp10 = tf.div(tf.log(tf.maximum(p, 1e-30)), Math.LN10);
    return tf.mean(tf.mul(p, logp10)) as tf.Scalar;
  });
}

/**
 * The part of the objective that depends on the teacher logits only:
 * w_cls·L_cls + w_contr·L_contr + w_ent·L_ent. Terms with weight 0 are not built.
 * This is the `lossOfLogits` handed to `LogitsGradOracle.valueAndGrad`.
 *
 * @param z teacher logits [B, K] (B = R·G, row-major over [R, G])
 * @param y target classes (length B)
 * @param groups G
 */
export function logitsObjective(
  z: tf.Tensor,
  y: tf.Tensor1D | Int32Array,
  groups: number,
  w: Pick<CakeWeights, "cls" | "contr" | "ent">,
): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    if (w.cls !== 0) total = tf.add(total, tf.mul(lossCls(z, y, groups), w.cls));
    if (w.contr !== 0) total = tf.add(total, tf.mul(lossContr(z, groups), w.contr));
    if (w.ent !== 0) total = tf.add(total, tf.mul(lossEnt(z), w.ent));
    return total;
  });
}

/**
 * True when per-sample inputs of this shape are images (rank ≥ 2 spatial: [H, W, C] or [H, W]),
 * i.e. when the total-variation prior applies. 2-D toy points ([2]) have no TV.
 */
export function hasSpatialAxes(inputShape: readonly number[]): boolean {
  return inputShape.length >= 2 && inputShape[0] > 1 && inputShape[1] > 1;
}

/**
 * L_tv: mean anisotropic L1 total variation of a batch of NHWC images,
 *
 *   L_tv = mean_{b,h<H−1,w,c} |x[b,h+1,w,c] − x[b,h,w,c]| + mean_{b,h,w<W−1,c} |x[b,h,w+1,c] − x[b,h,w,c]|.
 *
 * Each direction is averaged over its own number of differences. This equals the average over samples
 * and channels of (per-image mean vertical |Δ| + per-image mean horizontal |Δ|), i.e. the "mean"
 * reduction of the reference implementation. Inputs are x of shape [B, H, W, C] (or [B, H, W]);
 * anything else (e.g. [B, 2] toy points) has no spatial axes and L_tv = 0.
 */
export function lossTv(x: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (x.rank < 3 || !hasSpatialAxes(x.shape.slice(1))) return tf.scalar(0);
    const [dh, dw] = spatialDiffs(x);
    return tf.add(tf.mean(tf.abs(dh)), tf.mean(tf.abs(dw))) as tf.Scalar;
  });
}

/**
 * ∂L_tv/∂x, computed in closed form (no teacher involved): with s = sign(Δ) (sign(0) = 0),
 * each difference d = x[h+1] − x[h] contributes +s/N to x[h+1] and −s/N to x[h], N being the number
 * of differences in that direction. Same shape as `x`; zeros when x has no spatial axes.
 */
export function lossTvGrad(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (x.rank < 3 || !hasSpatialAxes(x.shape.slice(1))) return tf.zerosLike(x);
    const [dh, dw] = spatialDiffs(x);
    const sh = tf.div(tf.sign(dh), dh.size);
    const sw = tf.div(tf.sign(dw), dw.size);
    const zeroPads = (axis: number, before: boolean): Array<[number, number]> =>
      x.shape.map((_, i) => (i === axis ? (before ? [1, 0] : [0, 1]) : [0, 0]) as [number, number]);
    const gh = tf.sub(tf.pad(sh, zeroPads(1, true)), tf.pad(sh, zeroPads(1, false)));
    const gw = tf.sub(tf.pad(sw, zeroPads(2, true)), tf.pad(sw, zeroPads(2, false)));
    return tf.add(gh, gw);
  });
}

/** Vertical and horizontal forward differences of a [B, H, W(, C)] batch. */
function spatialDiffs(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const [, h, w] = x.shape;
  const begin = x.shape.map(() => 0);
  const size = x.shape.map(() => -1);
  const sl = (axis: number, start: number, len: number) => {
    const b = begin.slice();
    const s = size.slice();
    b[axis] = start;
    s[axis] = len;
    return tf.slice(x, b, s);
  };
  const dh = tf.sub(sl(1, 1, h - 1), sl(1, 0, h - 1));
  const dw = tf.sub(sl(2, 1, w - 1), sl(2, 0, w - 1));
  return [dh, dw];
}

/** View logits as [R, G, K]. */
function asRows(z: tf.Tensor, groups?: number): tf.Tensor3D {
  if (z.rank === 3) {
    if (groups !== undefined && z.shape[1] !== groups) {
      throw new Error(`lossContr: logits have ${z.shape[1]} groups per row, expected ${groups}`);
    }
    return z as tf.Tensor3D;
  }
  if (groups === undefined) throw new Error("lossContr: pass `groups` when logits are [B, K]");
  const [b, k] = z.shape;
  if (b % groups !== 0) throw new Error(`lossContr: batch ${b} is not a multiple of G = ${groups}`);
  return tf.reshape(z, [b / groups, groups, k]);
}
