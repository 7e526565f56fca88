/**
 * Every knob of CAKE synthesis as one typed options object, with the paper's per-dataset defaults.
 *
 * @module
 */
import { checkChoice, checkNumbers, checkSeed, InputError } from "../util/checks.ts";
import type { CakeWeights } from "./losses.ts";
import type { DecayKind } from "./schedule.ts";

/** Datasets with published CAKE synthesis defaults. */
export type CakeDataset = "cifar10" | "mnist" | "fmnist" | "two-moons";

/**
 * Per-channel affine map between the teacher's input space u and the synthesis space X:
 * u = X·std + mean (channels = last axis). The kit's teachers take [0,1] images, while CAKE
 * optimises X in the teacher's *normalised* space (X ~ N(0, I) at the start); this map is how the
 * two are reconciled (see {@link CakeOptions.normalization}).
 */
export interface Normalization {
  /** Mean per channel (length 1 broadcasts to all channels). */
  mean: number[];
  /** Standard deviation per channel (length 1 broadcasts). */
  std: number[];
}

/** The normalisation the CAKE teachers were trained with (reference data pipeline). */
export const CAKE_NORMALIZATION: Record<CakeDataset, Normalization | null> = {
  mnist: { mean: [0.1307], std: [0.3081] },
  fmnist: { mean: [0.5], std: [0.5] },
  cifar10: { mean: [125.3 / 255, 123.0 / 255, 113.9 / 255], std: [63.0 / 255, 62.1 / 255, 66.7 / 255] },
  // Two-moons points are already standardised: X is the teacher's input.
  "two-moons": null,
};

/** Options of {@link synthesize}. Paper symbols in brackets. */
export interface CakeOptions {
  /** [M] number of synthesis batches. */
  numBatches: number;
  /** [B] samples per batch, B = R·G; must be a multiple of `groups`. */
  batchSize: number;
  /** [G] groups per row: each row of R = B/G rows gets G distinct target classes (G ≤ K). */
  groups: number;
  /** [T] SGD steps per batch. */
  steps: number;
  /** [η0] step size of the first batch. */
  eta0: number;
  /** [D] decades of step-size decay over the M batches. */
  decades: number;
  /** Shape of the decay: log-linear (paper), cosine, or none (ablation "decay off"). */
  decay: DecayKind;
  /** [w_cls, w_contr, w_tv, w_ent] loss weights. */
  weights: CakeWeights;
  /** LAKE: add Langevin noise sqrt(2·η_m)·N(0, I) after every step (paper default: off). */
  langevin: boolean;
  /**
   * u = X·std + mean maps the synthesis variable X (normalised space, starts at N(0, I)) to the
   * teacher's input u. `null` = identity (X is fed to the teacher as is). The returned transfer set
   * stores u (the teacher's — and the student's — input space), never X.
   */
  normalization: Normalization | null;
  /** Seed for the noise initialisation, the target classes and the Langevin noise. */
  seed: number;
  /** Ledger phase of the optimisation steps (forward + backward); the final forward is `${phase}.final`. */
  phase: string;
  /**
   * Directory where every finished batch is written; an interrupted run started again with the same
   * options and `cacheDir` skips the finished batches. Omit for no checkpoints.
   */
  cacheDir?: string;
  /**
   * Identifies the teacher in the checkpoint fingerprint (e.g. its training seed + model name), so a
   * cache made with another teacher is never reused. Default "".
   */
  teacherKey: string;
  /** Show a progress bar through `createProgress` (default true); a string sets its label. */
  progress: boolean | string;
}

/** Reference per-dataset defaults (w_cls, w_contr, w_tv, η0, T, B, M, G as in the paper's code). */
const TABLE: Record<CakeDataset, [number, number, number, number, number, number, number, number]> = {
  //            w_cls w_contr w_tv  η0    T    B    M    G
  cifar10: [1e3, 1e1, 1e5, 0.1, 256, 500, 500, 10],
  mnist: [1e3, 1e-3, 1e7, 0.1, 256, 500, 512, 10],
  fmnist: [1e3, 1e-3, 1e7, 0.1, 256, 500, 512, 10],
  "two-moons": [1e-2, 1e-3, 0, 1e-2, 250, 100, 100, 2],
};

/** The paper's synthesis settings for a dataset (log-linear decay over D = 4 decades, no LAKE). */
export function cakeDefaults(dataset: CakeDataset): CakeOptions {
  const row = TABLE[dataset];
  if (!row) {
    throw new Error(`cakeDefaults: unknown dataset "${dataset}" (one of ${Object.keys(TABLE).join(", ")})`);
  }
  const [cls, contr, tv, eta0, steps, batchSize, numBatches, groups] = row;
  return {
    numBatches,
    batchSize,
    groups,
    steps,
    eta0,
    decades: 4,
    decay: "linear",
    weights: { cls, contr, tv, ent: 0 },
    langevin: false,
    normalization: CAKE_NORMALIZATION[dataset],
    seed: 0,
    phase: "cake.synth",
    teacherKey: "",
    progress: true,
  };
}

/** Options as accepted by {@link synthesize}: any subset, `weights` may be partial too. */
export type CakeOptionsInput = Partial<Omit<CakeOptions, "weights">> & {
  /** Start from this dataset's defaults (default "mnist" when the teacher takes images, else "two-moons"). */
  dataset?: CakeDataset;
  /** Override single weights. */
  weights?: Partial<CakeWeights>;
};

/** Merge user options over a dataset's defaults and check them. */
export function resolveCakeOptions(input: CakeOptionsInput, fallback: CakeDataset): CakeOptions {
  const base = cakeDefaults(input.dataset ?? fallback);
  const { dataset: _d, weights, ...rest } = input;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const o: CakeOptions = { ...base, ...defined, weights: { ...base.weights, ...(weights ?? {}) } };
  const where = "cake options";
  checkNumbers(where, o, {
    numBatches: { integer: true, min: 1 },
    batchSize: { integer: true, min: 1 },
    groups: { integer: true, min: 1 },
    steps: { integer: true, min: 0 },
    eta0: { above: 0 },
    decades: { min: 0 },
  });
  checkNumbers(`${where} (weights)`, o.weights, {
    cls: { min: 0 },
    contr: { min: 0 },
    tv: { min: 0 },
    ent: { min: 0 },
  });
  checkChoice(where, "decay", o.decay, ["linear", "cosine", "none"]);
  checkSeed(o.seed, where);
  if (o.batchSize % o.groups !== 0) {
    throw new InputError(`cake: batchSize B = ${o.batchSize} must be a multiple of groups G = ${o.groups}`);
  }
  const nrm = o.normalization;
  if (nrm && (!nrm.mean.every(Number.isFinite) || !nrm.std.every((v) => Number.isFinite(v) && v > 0))) {
    throw new InputError(
      `${where}: normalization mean [${nrm.mean}] / std [${nrm.std}] must be finite with std > 0; ` +
        `pass the teacher's per-channel statistics, or null for none`,
    );
  }
  return o;
}
