/**
 * The DB3 ablations (notebook 13) as data: a settings table in which `paper` is the reference base and
 * `laptop`/`smoke` are overrides with their reasons, and the ablation students as named variants, each
 * an override of the base student (soft-label source, MBD snapshot, τ, student network, remedy,
 * transfer set), in the style of CAKE's `conf/experiment`. The driver trains one student per variant;
 * nothing about a part is written as a code path.
 *
 * Parts (notebook order):
 * - `budget`: BD, then MBD's distances as they stood after q queries per (sample, class) (its snapshots);
 * - `tau`: temperature τ of the DB3 loss (MBD targets);
 * - `size`: the table's student against a smaller one (CE and MBD);
 * - `remedies`: the 1/d blow-up — BD and MBD targets with no remedy, a distance floor (a low quantile of
 *   all off-class distances), and flagged samples dropped — on the transfer set plus a few training
 *   images the teacher misclassifies (found by a label-query scan).
 *
 * @module
 */
import { MBD_DEFAULTS } from "../db3/mbd.ts";
import type { SoftLabelOptions } from "../db3/soft_labels.ts";
import type { LabeledData } from "../data/mod.ts";
import type { ModelName } from "../models/registry.ts";
import type { RunRecord } from "../results/record.ts";
import type { Scale } from "../scale.ts";
// Types only from db3.ts: the family's units import this module, and the registry of families must not
// import the DB3 driver (which runs experiments through the registry) while it loads.
import type { Db3Settings, Db3TableResult } from "./db3.ts";
import { type DeepPartial, resolveSettings, settingsNote, type SettingsTable } from "./settings.ts";

/** Ablation parts. */
export type Db3AblationPart = "budget" | "tau" | "size" | "remedies";

/** All parts, in notebook order. */
export const DB3_ABLATION_PARTS: readonly Db3AblationPart[] = ["budget", "tau", "size", "remedies"];

/** The ablation's own settings (the labeling and base students are the DB3 table's, {@link db3Settings}). */
export interface Db3AblationSettings {
  /** Epochs of the ablation students. */
  epochs: number;
  /** τ values of the τ part (MBD targets). */
  taus: number[];
  /** Students of the size part by printed name: the table's student first, then the smaller one. */
  students: Record<string, ModelName>;
  /** Distance-floor remedy. */
  floor: { quantile: number };
  /** Test images scored after every epoch for best-epoch numbers (null: as the table's students; 0: none). */
  epochTestLimit: number | null;
  /**
   * Remedies part: training images scanned with label queries for ones the teacher misclassifies, and
   * how many of those are added to the transfer set (a ~99%-accurate teacher leaves few or none in a few
   * hundred images; the reference's 1,000-image run had 13).
   */
  stress: { scan: number; add: number };
}

/** The settings table: `paper` is the reference; `laptop` and `smoke` override a few fields. */
export const DB3_ABLATION_SETTINGS: SettingsTable<Db3AblationSettings> = {
  paper: {
    base: {
      epochs: 200,
      taus: [1, 5, 20, 50],
      students: { "LeNet-5-half": "db3-lenet5-half", "LeNet-5-fifth": "db3-lenet5-fifth" },
      floor: { quantile: 0.05 },
      epochTestLimit: null,
      stress: { scan: 60000, add: 13 },
    },
    note: "reference: ablation students as the table's (200 epochs, τ 20 among 1, 5, 20, 50); student " +
      "sizes half and fifth; remedies on the whole training set's misclassified images (13 added, as many " +
      "as the reference's 1,000-image run had)",
  },
  laptop: {
    override: { epochs: 100, epochTestLimit: 0, stress: { scan: 20000, add: 6 } },
    note: "ablation students 100 epochs (base students 200), test set scored after the last epoch only " +
      "(no best-epoch numbers)",
  },
  smoke: {
    override: { epochs: 2, taus: [1, 20], stress: { scan: 500, add: 2 } },
    note: "pipeline check: ablation students 2 epochs, τ 1 and 20; remedies scan 500 images, add 2",
  },
};

/** Resolved settings of one run: the ablation's, the DB3 table's it starts from, and the notes. */
export interface Db3AblationConfig extends Db3AblationSettings {
  /** The table settings the ablation starts from (labeling, base students). */
  table: Db3Settings;
  /** What differs from the paper (the table's note, then the ablation's). */
  note: string;
}

/**
 * Settings of `scale` starting from the DB3 table's settings `table` of that scale (MNIST), with `extra`
 * laid over the scale's override (`db3AblationSettings` in `db3_ablations.ts` passes the table's).
 */
export function db3AblationConfig(
  scale: Scale,
  table: Db3Settings,
  extra?: DeepPartial<Db3AblationSettings>,
): Db3AblationConfig {
  const own = resolveSettings<Db3AblationSettings>(DB3_ABLATION_SETTINGS, scale, extra);
  const note = scale === "paper"
    ? table.note
    : `${table.note}; ${settingsNote(DB3_ABLATION_SETTINGS, scale)}`;
  return { ...own, table, note };
}

/** The remedies of the 1/d blow-up, by name (soft-label options over the reference's none). */
export function db3Remedies(
  floor: { quantile: number },
): [string, Omit<SoftLabelOptions, "teacherLabels">][] {
  return [["no remedy", {}], ["distance floor", { floor }], ["flagged dropped", { dropFlagged: true }]];
}

/** One ablation student: a named override of the base student. */
export interface Db3AblationVariant {
  part: Db3AblationPart;
  /**
   * Printed name, recorded as the run record's `config.variant` (remedies: the remedy, printed after
   * the source and how many misclassified images were added).
   */
  name: string;
  /** Soft-label source (null: CE only). */
  source: "bd" | "mbd" | null;
  /** Learn from MBD's distances as they stood within this many queries per (sample, class). */
  snapshot?: number;
  /** Over the base student. */
  student?: { temperature?: number; model?: ModelName };
  /** Soft-label remedy. */
  soft?: Omit<SoftLabelOptions, "teacherLabels">;
  /** Train on the remedies' transfer set instead of the base set. */
  stress?: true;
}

/** The variants of `parts` under settings `s`, in notebook order. */
export function db3AblationVariants(
  s: Db3AblationConfig,
  parts: readonly Db3AblationPart[] = DB3_ABLATION_PARTS,
): Db3AblationVariant[] {
  const snapshots = s.table.mbd.snapshotAt ?? MBD_DEFAULTS.snapshotAt;
  const byPart: Record<Db3AblationPart, Db3AblationVariant[]> = {
    budget: [
      { part: "budget", name: "BD", source: "bd" },
      ...snapshots.map((q) => ({ part: "budget", name: `MBD ≤ ${q}`, source: "mbd", snapshot: q } as const)),
    ],
    tau: s.taus.map((t) => ({ part: "tau", name: `τ = ${t}`, source: "mbd", student: { temperature: t } })),
    size: Object.entries(s.students).flatMap(([title, model]) =>
      ([null, "mbd"] as const).map((source) => ({
        part: "size" as const,
        name: `${title}, ${source ? "MBD" : "CE"}`,
        source,
        student: { model },
      }))
    ),
    remedies: (["bd", "mbd"] as const).flatMap((source) =>
      db3Remedies(s.floor).map(([name, soft]) => ({
        part: "remedies" as const,
        name,
        source,
        soft,
        stress: true as const,
      }))
    ),
  };
  return DB3_ABLATION_PARTS.filter((p) => parts.includes(p)).flatMap((p) => byPart[p]);
}

/** One ablation student's result. */
export interface Db3AblationRow {
  part: Db3AblationPart | "methods";
  /** Variant, e.g. `MBD ≤ 1000`, `τ = 5`, `LeNet-5-fifth, CE`, `BD (+6 misclassified), distance floor`;
   * the methods part: the table row's method (`ce`, `sd`, `bd`, `mbd`). */
  variant: string;
  /** Soft-label source (null: CE only). */
  source: "sd" | "bd" | "mbd" | null;
  /** Query budget per (sample, class) for the budget curve (BD: its mean spend). */
  budget: number | null;
  temperature: number | null;
  student: ModelName;
  testAcc: number;
  bestTestAcc: number | null;
  trainedOn: number;
  maxLogit: number | null;
  flagged: number;
  epochs: number;
}

/** Transfer set of the remedies part. */
export interface StressSet {
  /** Training images scanned with label queries, and misclassified ones found among them. */
  scanned: number;
  found: number;
  /** Indices (in the training set) of the added images. */
  added: number[];
  /** Samples (base first, then the added ones) and their BD / MBD distances. */
  samples: LabeledData;
  distances: { bd: Float32Array; mbd: Float32Array };
  teacherLabels: Int32Array;
  /** Label queries spent labelling the added images. */
  labelQueries: number;
}

/** Result of `runDb3Ablations`. */
export interface Db3AblationResult {
  settings: Db3AblationConfig;
  base: Db3TableResult;
  rows: Db3AblationRow[];
  records: RunRecord[];
  /** Test images used. */
  testN: number;
  /** The remedies part's transfer set: the base set plus teacher-misclassified training images. */
  stress?: StressSet;
}
