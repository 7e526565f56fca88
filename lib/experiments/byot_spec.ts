/**
 * Bring your own teacher (notebook 40) as data: the settings table of its DB3-BD distillation (`paper`
 * the reference base, `laptop`/`smoke` overrides, each note describing what runs: BD labels only, no
 * SD, no MBD) and the wire settings of the HTTP endpoint.
 *
 * @module
 */
import { BD_DEFAULTS } from "../db3/bd.ts";
import type { Protocol } from "../remote/protocols.ts";
import type { Scale } from "../scale.ts";
import type { Db3Settings } from "./db3.ts";
import { type DeepPartial, resolveSettings, settingsNote, type SettingsTable } from "./settings.ts";

/** What the BD distillation of notebook 40 runs with. */
export interface ByotSettings {
  /** Transfer-set images per class (stratified, drawn with the run's seed; 0: the whole training set). */
  samplesPerClass: number;
  /** Test images the student is scored on (0: all). */
  testLimit: number;
  /** BD options (the reference's fields). */
  bd: typeof BD_DEFAULTS;
  /** The DB3 student and its reference loss. */
  student: Omit<Db3Settings["student"], "epochTestLimit">;
  /** Test images scored after every epoch for the best-epoch number (null: all, as the reference). */
  bestEpochTest: number | null;
  /** The endpoint: protocol, KServe v2 binary tensors, images per request, requests in flight. */
  http: { protocol: Protocol; binary: boolean; batchSize: number; concurrency: number };
}

/** The settings table: `paper` is DB3's reference; the notes say what runs. */
export const BYOT_SETTINGS: SettingsTable<ByotSettings> = {
  paper: {
    base: {
      samplesPerClass: 0,
      testLimit: 0,
      bd: { ...BD_DEFAULTS },
      student: { model: "db3-lenet5-half", epochs: 200, batchSize: 512, lr: 1e-3, temperature: 20 },
      bestEpochTest: null,
      http: { protocol: "kserve-v2", binary: true, batchSize: 512, concurrency: 4 },
    },
    note: "BD labels only (SD and MBD are not run here): the whole training set, BD 201 candidates (as the " +
      "reference); student db3-lenet5-half, 200 epochs, batch 512; accuracy after the last epoch on all test images",
  },
  laptop: {
    override: { samplesPerClass: 40, student: { batchSize: 64 }, bestEpochTest: 1000 },
    note: "BD labels only (SD and MBD are not run here): 400 images (40/class), BD 201 candidates (as the " +
      "reference); student db3-lenet5-half, 200 epochs, batch 64 instead of 512; accuracy after the last epoch " +
      "on all test images, best epoch on the first 1,000",
  },
  smoke: {
    override: {
      samplesPerClass: 1,
      testLimit: 500,
      bd: { candidates: 11 },
      student: { epochs: 2, batchSize: 16 },
    },
    note:
      "BD labels only (SD and MBD are not run here): 10 images (1/class), BD 11 candidates instead of 201; " +
      "student db3-lenet5-half, 2 epochs, batch 16 instead of 512; accuracy after the last epoch on the first " +
      "500 test images",
  },
};

/** Resolved settings of one run, with the note of its scale. */
export type ByotConfig = ByotSettings & { note: string };

/** The settings of `scale`, `extra` laid on top (then the note is derived from what runs). */
export function byotSettings(scale: Scale, extra?: DeepPartial<ByotSettings>): ByotConfig {
  const s = resolveSettings<ByotSettings>(BYOT_SETTINGS, scale, extra);
  return { ...s, note: extra === undefined ? settingsNote(BYOT_SETTINGS, scale) : byotNote(s) };
}

/**
 * The settings note derived from what runs: BD labels only (no SD, no MBD), the transfer-set size,
 * BD's candidate count and the student's recipe against the reference.
 */
export function byotNote(settings: ByotSettings, numClasses = 10): string {
  const per = settings.samplesPerClass;
  const images = per > 0
    ? `${(per * numClasses).toLocaleString("en-US")} images (${per}/class)`
    : "the whole training set";
  const cand = settings.bd.candidates;
  const ref = BYOT_SETTINGS.paper.base;
  const st = settings.student;
  const perEpoch = settings.bestEpochTest ?? 0;
  const test = settings.testLimit > 0 ? `the first ${settings.testLimit.toLocaleString("en-US")}` : "all";
  return `BD labels only (SD and MBD are not run here): ${images}, BD ${cand} candidates` +
    `${cand === ref.bd.candidates ? " (as the reference)" : ` instead of ${ref.bd.candidates}`}; ` +
    `student ${st.model}, ${st.epochs} epochs, batch ${st.batchSize}` +
    `${st.batchSize === ref.student.batchSize ? "" : ` instead of ${ref.student.batchSize}`}; ` +
    `accuracy after the last epoch on ${test} test images` +
    `${perEpoch > 0 ? `, best epoch on the first ${perEpoch.toLocaleString("en-US")}` : ""}`;
}

/** The DB3 trainer's settings for this run's student (BD only: no SD or MBD settings apply). */
export function byotStudentSettings(s: ByotConfig): Db3Settings {
  return {
    samplesPerClass: s.samplesPerClass,
    testLimit: s.testLimit,
    sd: {},
    bd: s.bd,
    mbd: {},
    student: { ...s.student, ...(s.bestEpochTest === null ? {} : { epochTestLimit: s.bestEpochTest }) },
    chunk: { bd: 0, mbd: 0 },
    note: s.note,
  };
}
