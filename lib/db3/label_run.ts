/**
 * Resumable DB3 labeling: run SD, BD or MBD over many samples in chunks, saving each chunk's
 * distances (and the oracle's cumulative ledger) to a cache folder, so an interrupted run resumes at
 * the first missing chunk. Results do not depend on the chunking: a sample's candidates and random
 * directions are fixed by (seed, sample id, class).
 *
 * Cache layout (`cacheDir`): `meta.json` (a fingerprint of method, options, samples and the teacher's
 * identity — a different run in the same folder is an error, not silently mixed), and per chunk:
 * - `chunk-00000.journal`: the write-ahead journal of the oracle's ledger while the chunk is computed
 *   (`lib/oracle/journal.ts`): every query is reserved there, fsync'd, before the teacher is asked. A
 *   rerun after a kill replays it before computing the chunk again, so the killed attempt's queries
 *   stay counted and the chunk's per-sample budgets hold across restarts (a sample that spent 2,000 of
 *   2,500 has 500 left).
 * - `chunk-00000.json`: the chunk's distances, written once it is done;
 * - `chunk-00000.ledger.json`: the chunk's ledger (attempts before a kill included), which then
 *   replaces its journal. Every chunk's queries are booked into the oracle's ledger when the chunk
 *   is computed or read, so the run's ledger is the sum over chunks.
 *
 * Several labelers may work on one folder at once: each chunk is computed under an exclusive lock
 * (`chunk-00000.lock`), and a labeler that gets the lock after another finished the chunk reads it
 * (and books its ledger) instead of paying for it again. A done chunk whose ledger is missing, or an
 * unreadable chunk, ledger, meta or journal file, is an error naming the file and the fix.
 *
 * Progress goes through `createProgress` (samples done, queries spent).
 */
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { readTextIfExists, writeAtomic } from "../util/files.ts";
import { createProgress } from "../show/progress.ts";
import { BD_DEFAULTS, type BdOptions, boundaryDistances } from "./bd.ts";
import type { LockstepOptions } from "./lockstep.ts";
import { MBD_DEFAULTS, type MbdOptions, minimalBoundaryDistances } from "./mbd.ts";
import { sampleDistances, SD_DEFAULTS, type SdOptions } from "./sd.ts";
import { type ClassStreams, type Db3Samples, sampleDim, sampleIds } from "./streams.ts";

/** The three DB3 soft-label sources. */
export type Db3Method = "sd" | "bd" | "mbd";

/** Options of {@link labelDistances}. */
export interface LabelRunOptions {
  method: Db3Method;
  sd?: SdOptions;
  bd?: BdOptions;
  mbd?: Omit<MbdOptions, "bd" | "lockstep">;
  /** Samples per chunk (default: SD all, BD 200, MBD 20). */
  chunkSize?: number;
  /** Folder for chunk results and the ledger; omitted: nothing saved, nothing resumed. */
  cacheDir?: string;
  /** Progress bar label (default "db3 <method>"); `false` for none. */
  progress?: string | false;
  /** Lockstep driver options (round size, lanes). */
  lockstep?: Omit<LockstepOptions, "onRound">;
  /**
   * Identity of the teacher behind the oracle (e.g. `modelFingerprint` of its weights plus the
   * engine): part of the cache key, so labels of another teacher are never resumed.
   */
  teacher?: string;
}

/** Distances for all samples, with everything needed to judge them. */
export interface Db3Distances {
  method: Db3Method;
  ids: Int32Array;
  y: Int32Array;
  numClasses: number;
  /** d (n×K), Infinity at the true class. */
  distances: Float32Array;
  /** BD distances that MBD started from (MBD only). */
  bdDistances?: Float32Array;
  /** Samples whose BD searches (before MBD) a budget cut short (MBD only). */
  bdExhausted?: Uint8Array;
  /** Queries per (sample, class) (BD/MBD; MBD includes BD's when `includeBdQueries`). */
  queries?: Int32Array;
  /** MBD snapshots: g within each query budget. */
  snapshots?: { queries: number[]; distances: Float32Array[] };
  /** T(x0) (−1 when unknown), and the samples it disagrees with y on. */
  teacherLabels: Int32Array;
  misclassified: Uint8Array;
  /** Samples whose searches a budget cut short (their distances are best-so-far). */
  exhausted: Uint8Array;
  /** Indices (into the samples) of the budget-cut samples. */
  budgetCut: Int32Array;
  /** Cumulative oracle ledger (empty for SD). */
  ledger: LedgerSnapshot | null;
  /** Options in force, defaults filled in. */
  options: Record<string, unknown>;
  /** Chunks computed now and taken from the cache. */
  chunks: { computed: number; resumed: number; size: number };
  /** Seconds spent computing in this call (resumed chunks excluded). */
  seconds: number;
}

interface ChunkFile {
  start: number;
  n: number;
  distances: (number | string)[];
  bdDistances?: (number | string)[];
  bdExhausted?: number[];
  queries?: number[];
  snapshots?: (number | string)[][];
  teacherLabels: number[];
  misclassified: number[];
  exhausted: number[];
  seconds: number;
}

const enc = (a: Float32Array) => Array.from(a, (v) => (Number.isFinite(v) ? v : String(v)));
const dec = (a: (number | string)[]) => Float32Array.from(a, (v) => (typeof v === "string" ? Number(v) : v));

function fingerprint(
  samples: Db3Samples,
  streams: ClassStreams,
  opts: LabelRunOptions,
  chunk: number,
): string {
  let h = 2166136261;
  const mix = (v: number) => {
    h = Math.imul(h ^ (v | 0), 16777619) >>> 0;
  };
  for (const v of sampleIds(samples)) mix(v);
  for (const v of samples.y) mix(v);
  const dim = sampleDim(samples);
  for (let i = 0; i < samples.x.length; i += Math.max(1, dim >> 3)) mix(Math.round(samples.x[i] * 1e6));
  return JSON.stringify({
    teacher: opts.teacher ?? null,
    method: opts.method,
    sd: opts.sd ?? {},
    bd: opts.bd ?? {},
    mbd: opts.mbd ?? {},
    n: samples.y.length,
    chunk,
    streamsSeed: streams.seed,
    streamSizes: streams.byClass.map((c) => c.length),
    samples: h,
  });
}

function slice(samples: Db3Samples, start: number, n: number): Db3Samples {
  const dim = sampleDim(samples);
  return {
    x: samples.x.subarray(start * dim, (start + n) * dim),
    y: samples.y.subarray(start, start + n),
    shape: [n, ...samples.shape.slice(1)],
    numClasses: samples.numClasses,
    ids: sampleIds(samples).subarray(start, start + n),
  };
}

async function runChunk(
  method: Db3Method,
  oracle: LabelOracle | null,
  part: Db3Samples,
  streams: ClassStreams,
  opts: LabelRunOptions,
  onRound: LockstepOptions["onRound"],
): Promise<Omit<ChunkFile, "start" | "n" | "seconds">> {
  const n = part.y.length;
  if (method === "sd") {
    const r = sampleDistances(part, streams, opts.sd);
    return {
      distances: enc(r.distances),
      teacherLabels: new Array(n).fill(-1),
      misclassified: new Array(n).fill(0),
      exhausted: new Array(n).fill(0),
    };
  }
  if (!oracle) throw new Error(`db3 ${method}: a label oracle is required`);
  const lockstep = { ...opts.lockstep, onRound };
  if (method === "bd") {
    const r = await boundaryDistances(oracle, part, streams, { ...opts.bd, lockstep });
    return {
      distances: enc(r.distances),
      queries: Array.from(r.queries),
      teacherLabels: Array.from(r.teacherLabels),
      misclassified: Array.from(r.misclassified),
      exhausted: Array.from(r.exhausted),
    };
  }
  const r = await minimalBoundaryDistances(oracle, part, streams, { ...opts.mbd, bd: opts.bd, lockstep });
  return {
    distances: enc(r.distances),
    bdDistances: enc(r.bd.distances),
    bdExhausted: Array.from(r.bd.exhausted),
    queries: Array.from(r.queries),
    snapshots: r.snapshots.distances.map(enc),
    teacherLabels: Array.from(r.teacherLabels),
    misclassified: Array.from(r.misclassified),
    exhausted: Array.from(r.exhausted),
  };
}

/**
 * Distances for every sample by SD, BD or MBD, chunked and resumable (see the module doc). `oracle`
 * may be `null` for SD, which asks the teacher nothing.
 */
export async function labelDistances(
  oracle: LabelOracle | null,
  samples: Db3Samples,
  streams: ClassStreams,
  opts: LabelRunOptions,
): Promise<Db3Distances> {
  const method = opts.method;
  const n = samples.y.length;
  const size = Math.max(1, opts.chunkSize ?? (method === "sd" ? n : method === "bd" ? 200 : 20));
  const dir = opts.cacheDir?.replace(/\/+$/, "");
  const fp = fingerprint(samples, streams, opts, size);
  if (dir) {
    const old = await readTextIfExists(`${dir}/meta.json`);
    if (
      old !== undefined &&
      parseCacheFile<{ fingerprint?: string }>(`${dir}/meta.json`, old).fingerprint !== fp
    ) {
      throw new Error(
        `db3 labeling: ${dir} holds chunks of a different run (method, options, samples or teacher ` +
          `differ). Use another cacheDir, or delete that folder to start over.`,
      );
    }
    if (await exists(`${dir}/ledger.json`)) {
      throw new Error(
        `db3 labeling: ${dir} was written by an older version of the kit (one ledger.json for the whole ` +
          `run, which a crash could leave short). Delete the folder to start over.`,
      );
    }
    if (old === undefined) await writeAtomic(`${dir}/meta.json`, JSON.stringify({ fingerprint: fp }) + "\n");
  }
  return await labelChunks(oracle, samples, streams, opts, size, dir);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The queries a done chunk cost: its ledger file, else (a crash before that was written) its journal. */
async function chunkLedger(base: string): Promise<LedgerSnapshot> {
  const text = await readTextIfExists(`${base}.ledger.json`);
  if (text !== undefined) {
    const l = parseCacheFile<LedgerSnapshot>(`${base}.ledger.json`, text);
    if (typeof l !== "object" || l === null || typeof l.totals?.spent !== "number" || !l.bySample) {
      throw new Error(
        `db3 labeling: ${base}.ledger.json is corrupt (not a ledger snapshot). Delete ${base}.json ` +
          `and that file to recompute the chunk (its queries will be paid again), or the folder to start over.`,
      );
    }
    return l;
  }
  if (await exists(`${base}.journal`)) return Ledger.replay(`${base}.journal`);
  throw new Error(
    `db3 labeling: ${base}.json has no ledger (${base}.ledger.json and ${base}.journal are missing): the ` +
      `queries it cost cannot be counted. Restore the file, or delete ${base}.json to recompute the chunk ` +
      `(its queries will be paid again), or delete the folder to start over.`,
  );
}

/** JSON of a cache file, or an error naming the file and the fix. */
function parseCacheFile<T>(path: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(
      `db3 labeling: ${path} is corrupt (${(e as Error).message}). Delete that file to recompute it ` +
        `(or the whole folder to start over).`,
    );
  }
}

/** A chunk file, checked for the fields and lengths this run needs. */
function readChunk(path: string, text: string, m: number, k: number, method: Db3Method): ChunkFile {
  const c = parseCacheFile<ChunkFile>(path, text);
  const bad = (what: string) =>
    new Error(
      `db3 labeling: ${path} is corrupt (${what}). Delete that file to recompute the chunk (its queries ` +
        `stay counted in the ledger journal), or the whole folder to start over.`,
    );
  if (typeof c !== "object" || c === null) throw bad("not an object");
  if (!Array.isArray(c.distances) || c.distances.length !== m * k) {
    throw bad(`distances: want ${m * k} values`);
  }
  for (const key of ["teacherLabels", "misclassified", "exhausted"] as const) {
    if (!Array.isArray(c[key]) || c[key].length !== m) throw bad(`${key}: want ${m} values`);
  }
  if (method !== "sd" && (!Array.isArray(c.queries) || c.queries.length !== m * k)) {
    throw bad(`queries: want ${m * k} values`);
  }
  if (method === "mbd" && (!Array.isArray(c.bdDistances) || c.bdDistances.length !== m * k)) {
    throw bad(`bdDistances: want ${m * k} values`);
  }
  return c;
}

/** Hold an exclusive lock on `path` (created if needed) until `release` is called. */
async function lockFile(path: string): Promise<() => void> {
  const f = await Deno.open(path, { create: true, write: true });
  await f.lock(true);
  return () => {
    try {
      f.unlockSync();
    } finally {
      f.close();
    }
  };
}

async function labelChunks(
  oracle: LabelOracle | null,
  samples: Db3Samples,
  streams: ClassStreams,
  opts: LabelRunOptions,
  size: number,
  dir: string | undefined,
): Promise<Db3Distances> {
  const method = opts.method;
  const n = samples.y.length, k = samples.numClasses;
  const out = {
    distances: new Float32Array(n * k),
    bdDistances: method === "mbd" ? new Float32Array(n * k) : undefined,
    bdExhausted: method === "mbd" ? new Uint8Array(n) : undefined,
    queries: method === "sd" ? undefined : new Int32Array(n * k),
    snapshots: method === "mbd"
      ? (opts.mbd?.snapshotAt ?? MBD_DEFAULTS.snapshotAt).map(() => new Float32Array(n * k))
      : undefined,
    teacherLabels: new Int32Array(n).fill(-1),
    misclassified: new Uint8Array(n),
    exhausted: new Uint8Array(n),
  };
  const bar = opts.progress === false
    ? undefined
    : createProgress({ label: opts.progress ?? `db3 ${method}`, total: n, unit: "sample" });
  const spent0 = oracle?.ledger.spent ?? 0;
  let computed = 0, resumed = 0, seconds = 0, doneSamples = 0;
  for (let start = 0; start < n; start += size) {
    const m = Math.min(size, n - start);
    const base = dir ? `${dir}/chunk-${String(start / size).padStart(5, "0")}` : undefined;
    const file = base ? `${base}.json` : undefined;
    const booked = oracle !== null && method !== "sd";
    let chunk: ChunkFile | undefined;
    let text = file ? await readTextIfExists(file) : undefined;
    let unlock: (() => void) | undefined;
    if (base && text === undefined) {
      // Another labeler may be computing this chunk: wait for it, then take its result.
      unlock = await lockFile(`${base}.lock`);
      text = await readTextIfExists(file!);
    }
    try {
      if (text !== undefined) {
        chunk = readChunk(file!, text, m, k, method);
        if (booked) oracle!.ledger.merge(await chunkLedger(base!));
        resumed++;
      } else {
        const t0 = performance.now();
        const pairs = m * (k - 1);
        const onRound: LockstepOptions["onRound"] = (info) =>
          bar?.update(
            doneSamples + (info.finished / pairs) * m,
            `${((oracle?.ledger.spent ?? 0) - spent0).toLocaleString("en-US")} queries`,
          );
        // The ledger of an earlier computation whose chunk file was deleted stays counted.
        const prior = base && booked && (await exists(`${base}.ledger.json`))
          ? await chunkLedger(base)
          : null;
        if (prior) oracle!.ledger.merge(prior);
        // Replays an interrupted attempt's reservations; journals this attempt's.
        if (base && booked) oracle!.ledger.attachJournal(`${base}.journal`);
        let part;
        try {
          part = await runChunk(method, oracle, slice(samples, start, m), streams, opts, onRound);
        } finally {
          if (base && booked) oracle!.ledger.detachJournal();
        }
        const secs = (performance.now() - t0) / 1000;
        chunk = { start, n: m, ...part, seconds: secs };
        seconds += secs;
        computed++;
        if (file) await writeAtomic(file, JSON.stringify(chunk) + "\n");
        if (base && booked) {
          // The chunk's ledger replaces its journal (which only grows during the chunk).
          const l = Ledger.replay(`${base}.journal`);
          const summary = prior ? Ledger.fromSnapshot(prior) : new Ledger();
          if (prior) summary.merge(l);
          await writeAtomic(`${base}.ledger.json`, JSON.stringify(prior ? summary.snapshot() : l) + "\n");
          await Deno.remove(`${base}.journal`).catch(() => {});
        }
      }
    } finally {
      unlock?.();
    }
    out.distances.set(dec(chunk.distances), start * k);
    if (out.bdDistances && chunk.bdDistances) out.bdDistances.set(dec(chunk.bdDistances), start * k);
    // Chunks written before BD's own flags were stored: MBD's flags (a superset) stand in.
    if (out.bdExhausted) out.bdExhausted.set(chunk.bdExhausted ?? chunk.exhausted, start);
    if (out.queries && chunk.queries) out.queries.set(chunk.queries, start * k);
    if (out.snapshots && chunk.snapshots) {
      chunk.snapshots.forEach((s, j) => out.snapshots![j].set(dec(s), start * k));
    }
    out.teacherLabels.set(chunk.teacherLabels, start);
    out.misclassified.set(chunk.misclassified, start);
    out.exhausted.set(chunk.exhausted, start);
    doneSamples += m;
    bar?.update(doneSamples, `${((oracle?.ledger.spent ?? 0) - spent0).toLocaleString("en-US")} queries`);
  }
  bar?.done(`${n} samples, ${(oracle?.ledger.spent ?? 0).toLocaleString("en-US")} queries in total`);
  const options: Record<string, unknown> = method === "sd"
    ? { ...SD_DEFAULTS, ...opts.sd }
    : method === "bd"
    ? { ...BD_DEFAULTS, ...opts.bd }
    : { ...MBD_DEFAULTS, ...opts.mbd, bd: { ...BD_DEFAULTS, ...opts.bd } };
  return {
    method,
    ids: sampleIds(samples),
    y: samples.y,
    numClasses: k,
    distances: out.distances,
    bdDistances: out.bdDistances,
    bdExhausted: out.bdExhausted,
    queries: out.queries,
    snapshots: out.snapshots
      ? { queries: [...(opts.mbd?.snapshotAt ?? MBD_DEFAULTS.snapshotAt)], distances: out.snapshots }
      : undefined,
    teacherLabels: out.teacherLabels,
    misclassified: out.misclassified,
    exhausted: out.exhausted,
    budgetCut: Int32Array.from(out.exhausted.keys()).filter((i) => out.exhausted[i] === 1),
    ledger: oracle && method !== "sd" ? oracle.ledger.snapshot() : null,
    options,
    chunks: { computed, resumed, size },
    seconds,
  };
}
