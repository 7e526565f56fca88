/**
 * Naive CE-only synthesis, the first baseline of the CAKE paper's Figure 1.
 *
 * Same noise initialisation and plain SGD as CAKE, but only the classification term
 * (w_contr = 0, w_tv = 0, w_ent = 0) and no step-size decay: every sample is pushed deep into its
 * target class with the same (large) step, so the points "fly to the edges" — far from the decision
 * boundary, where the teacher's soft targets carry little information about it.
 *
 * @module
 */
import type { LogitsGradOracle } from "../oracle/oracle.ts";
import type { CakeOptionsInput } from "./options.ts";
import { type BatchListener, type CakeTransferSet, synthesize } from "./synthesize.ts";

/** What makes a synthesis "naive": forced on top of whatever options are given. */
export const NAIVE_OVERRIDES = { weights: { contr: 0, tv: 0, ent: 0 }, decay: "none" as const };

/** The options {@link synthesizeNaive} actually runs with. */
export function naiveOptions(input: CakeOptionsInput = {}): CakeOptionsInput {
  return {
    ...input,
    decay: NAIVE_OVERRIDES.decay,
    weights: { ...(input.weights ?? {}), ...NAIVE_OVERRIDES.weights },
    phase: input.phase ?? "naive.synth",
    progress: input.progress ?? "naive CE synthesis",
  };
}

/**
 * CE-only synthesis through a `logits+grad` oracle: {@link synthesize} with w_contr = w_tv = w_ent = 0
 * and a constant step size η0 (the remaining options — B, M, T, G, η0, w_cls, seed — as given).
 */
export async function synthesizeNaive(
  oracle: LogitsGradOracle,
  input: CakeOptionsInput = {},
  onBatch?: BatchListener,
): Promise<CakeTransferSet> {
  const set = await synthesize(oracle, naiveOptions(input), onBatch);
  set.method = "naive";
  return set;
}
