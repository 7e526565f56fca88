/**
 * ZSDB3KD pseudo-sample generation (Wang 2021), label-only, with checkpoints.
 *
 * Per round (reference: 15) the initialisation (`noise_init.ts`) gives `perClass` (reference: 200)
 * images of every class c with T(x) = c. Then `iterations` (40) times, for all of them at once:
 * 1. the untargeted minimal boundary distance g and direction Θ of each sample (`untargeted.ts`);
 * 2. the move away from the nearest boundary, X ← clip(X − λΘ, 0, 1), λ = `stepSize` (0.5), with
 *    λ halved for a sample whose label would change (one query per try, phase "zs.step"; at most
 *    `maxHalvings` halvings, then the sample stays put this iteration; λ restarts at 0.5 each
 *    iteration, as in the reference).
 * X is saved at iteration 0 (the raw accepted noise) and at each of `snapshotAt` (5, 10, …, 40).
 * Each pseudo sample's class is its generation class c, which every step preserves.
 *
 * A sample whose random initial directions never left its class starts from the direction to the
 * nearest accepted noise image of another class of its round (iteration 0: known labels, no query). The
 * round's iteration-0 images, not the moving ones, so each sample's path depends on its own queries
 * only and a contiguous range of samples can be optimised in a unit of its own (`lib/experiments/zs_*`).
 *
 * Samples of a round are ids `idOffset + round·K·perClass + j`; their queries (boundary searches and
 * steps) are booked under those ids, the noise draws untagged. With `checkpointDir` the state is saved
 * after every iteration (arrays in `state.bin`, the rest in `state.json`) and a later call with the
 * same options and teacher resumes there: the random streams depend only on (seed, round, iteration),
 * so a resumed run's samples equal an uninterrupted one's. Each checkpoint holds the ledger so far;
 * the queries after it are journaled in the same folder (`ledger-<epoch>.journal`, reserved before
 * each query is sent, replaced at the next checkpoint) and replayed on resume, so the queries of an
 * interrupted iteration stay counted and per-sample budgets hold across restarts. A missing journal
 * or a corrupt checkpoint is an error naming the file. Progress (iterations, queries spent) goes through
 * `createProgress`.
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { readTextIfExists, writeAtomic } from "../util/files.ts";
import { createProgress } from "../show/progress.ts";
import { checkNumberList, checkNumbers, checkSeed } from "../util/checks.ts";
import {
  checkNoiseInitOptions,
  initPseudoNoise,
  type NoiseInitOptions,
  type NoiseInitReport,
} from "./noise_init.ts";
import {
  type Anchors,
  checkUntargetedOptions,
  UNTARGETED_DEFAULTS,
  untargetedBoundary,
  type UntargetedOptions,
} from "./untargeted.ts";

/** Options of {@link generatePseudoSamples} (reference defaults in {@link GENERATE_DEFAULTS}). */
export interface GenerateOptions {
  /** Pseudo samples per class and round. */
  perClass?: number;
  /** Rounds (each a fresh initialisation). */
  rounds?: number;
  /** Optimisation iterations per round. */
  iterations?: number;
  /** Iterations whose X is kept (iteration 0, the raw noise, always is). */
  snapshotAt?: number[];
  /** λ: step away from the boundary. */
  stepSize?: number;
  /** Most halvings of λ per sample and iteration (the reference has no bound). */
  maxHalvings?: number;
  /** Use the round's other pseudo samples as fallback initial directions (no queries). */
  anchorFallback?: boolean;
  /** Untargeted boundary search options (per iteration). */
  untargeted?: Omit<UntargetedOptions, "seed" | "lockstep">;
  /** Initialisation options. */
  noise?: Omit<NoiseInitOptions, "perClass" | "seed">;
  /** Seed of everything random. */
  seed?: number;
  /** First sample id. */
  idOffset?: number;
  /** Folder for checkpoints (omitted: none). */
  checkpointDir?: string;
  /** Identity of the teacher (e.g. `modelFingerprint` plus engine): part of the checkpoint's key. */
  teacher?: string;
  /** Progress bar label (default "zsdb3kd pseudo samples"); false for none. */
  progress?: string | false;
}

/** Reference defaults (`get_pseudo_samples.py`). */
export const GENERATE_DEFAULTS = {
  perClass: 200,
  rounds: 15,
  iterations: 40,
  snapshotAt: [5, 10, 15, 20, 25, 30, 35, 40],
  stepSize: 0.5,
  maxHalvings: 10,
  anchorFallback: true,
  seed: 0,
  idOffset: 0,
};

/** Per-iteration statistics of the whole set. */
export interface IterationStats {
  /** Iteration 1..iterations. */
  iteration: number;
  /** Mean g (distance to the nearest boundary found before the step), over finite ones. */
  meanDistance: number;
  /** Samples with a finite g (a direction that leaves their class was found). */
  found: number;
  /** Samples moved, and the mean λ they moved by. */
  moved: number;
  meanStep: number;
  /** Label queries of this iteration (all rounds). */
  queries: number;
}

/** The generated pseudo samples. */
export interface PseudoSet {
  /** [h, w, c] of one image. */
  imageShape: number[];
  numClasses: number;
  /** Generation class of each sample (rounds concatenated). */
  y: Int32Array;
  /** Ledger id of each sample. */
  ids: Int32Array;
  /** Round of each sample. */
  round: Int32Array;
  /** Where each initial sample came from ("reference", "smooth", "strokes", "walk"). */
  origin: string[];
  /** X at iteration 0 and at each snapshot iteration, ascending. */
  snapshots: { iteration: number; x: Float32Array }[];
  /** g[i] per iteration (index 0 = iteration 1), measured before that iteration's step. */
  distances: Float32Array[];
  /** Queries of the untargeted searches per sample, summed over iterations. */
  searchQueries: Int32Array;
  /** Per-iteration statistics, summed over rounds. */
  stats: IterationStats[];
  /** Initialisation report per round. */
  init: NoiseInitReport[];
  /** Options in force. */
  options: typeof GENERATE_DEFAULTS & {
    untargeted: typeof UNTARGETED_DEFAULTS;
    noise: Record<string, unknown>;
  };
  /** The oracle ledger at the end. */
  ledger: LedgerSnapshot;
  /** Seconds computed in this call (resumed work excluded). */
  seconds: number;
  /**
   * Seconds the whole generation cost, resumed work included: the checkpoint stores the compute time
   * spent so far, so a rerun from the cache still reports the original cost. `null` when resumed from a
   * checkpoint written before the cost was stored.
   */
  totalSeconds: number | null;
  /** Iterations resumed from a checkpoint. */
  resumedIterations: number;
}

/** Snapshot `x` of one iteration (throws when that iteration was not kept). */
export function snapshotX(set: PseudoSet, iteration: number): Float32Array {
  const s = set.snapshots.find((q) => q.iteration === iteration);
  if (!s) {
    throw new Error(`no snapshot at iteration ${iteration} (kept: ${set.snapshots.map((q) => q.iteration)})`);
  }
  return s.x;
}

/** The seed of one stream from several integers (FNV-1a): rounds and iterations get their own streams. */
export function seedMix(...v: number[]): number {
  let h = 2166136261;
  for (const x of v) h = Math.imul(h ^ (x | 0), 16777619) >>> 0;
  return h;
}

/** Pseudo samples of one round (all, or a contiguous part) as they move. */
export interface MovingSamples {
  x: Float32Array;
  y: Int32Array;
  ids: Int32Array;
  /** Iterations done. */
  iteration: number;
  /** X at iteration 0 and at each snapshot iteration reached. */
  snaps: { iteration: number; x: Float32Array }[];
  /** g per iteration done. */
  distances: Float32Array[];
  /** Queries of the untargeted searches per sample, summed over iterations. */
  searchQueries: Int32Array;
}

/** One round's evolving state (what a checkpoint holds for the round in progress). */
interface RoundState extends MovingSamples {
  origin: string[];
  init: NoiseInitReport;
}

/** What one iteration did to the samples it moved. */
export interface IterationStep {
  /** g of each sample before the step (Infinity: no direction left its class). */
  distances: Float32Array;
  /** Label queries of the iteration, samples moved and the sum of their λ. */
  queries: number;
  moved: number;
  stepSum: number;
}

/**
 * Iteration `s.iteration + 1` of round `round`: untargeted boundary search, then the step away from
 * it; keeps X when the iteration is in `snapshotAt`. The random streams depend on (seed, round,
 * iteration) and each sample's id, and `anchors` are the whole round's iteration-0 images, so a part
 * of a round moves exactly as it does within the whole round.
 */
export async function optimiseIteration(
  oracle: LabelOracle,
  s: MovingSamples,
  o: {
    seed: number;
    round: number;
    untargeted: Omit<UntargetedOptions, "seed" | "lockstep">;
    stepSize: number;
    maxHalvings: number;
    snapshotAt: number[];
    anchors?: Anchors;
  },
): Promise<IterationStep> {
  const it = s.iteration + 1;
  const before = oracle.ledger.spent;
  const ub = await untargetedBoundary(oracle, s.x, s.y, {
    ...o.untargeted,
    seed: seedMix(o.seed, o.round, it, 2),
    ids: s.ids,
    anchors: o.anchors,
  });
  for (let i = 0; i < s.y.length; i++) s.searchQueries[i] += ub.queries[i];
  const st = await stepAway(oracle, s, ub.distances, ub.directions, o.stepSize, o.maxHalvings);
  s.distances.push(ub.distances);
  s.iteration = it;
  if (o.snapshotAt.includes(it)) s.snaps.push({ iteration: it, x: s.x.slice() });
  return {
    distances: ub.distances,
    queries: oracle.ledger.spent - before,
    moved: st.moved,
    stepSum: st.stepSum,
  };
}

interface Checkpoint {
  fingerprint: string;
  done: RoundState[];
  current: RoundState | null;
  stats: IterationStats[];
  /** The ledger at this checkpoint (queries after it are in `ledger-<epoch>.journal`). */
  ledger: LedgerSnapshot;
  /** Compute seconds spent on this generation so far, over all calls (absent in older checkpoints). */
  seconds?: number;
  /** Journal epoch: bumped at every checkpoint. */
  epoch: number;
}

// --- checkpoint (de)serialisation: arrays to one binary file, the rest to JSON ---

function packState(s: RoundState, arrays: (Float32Array | Int32Array)[]) {
  const ref = (a: Float32Array | Int32Array) => {
    arrays.push(a);
    return arrays.length - 1;
  };
  return {
    x: ref(s.x),
    y: ref(s.y),
    ids: ref(s.ids),
    origin: s.origin,
    iteration: s.iteration,
    snaps: s.snaps.map((q) => ({ iteration: q.iteration, x: ref(q.x) })),
    distances: s.distances.map(ref),
    searchQueries: ref(s.searchQueries),
    init: s.init,
  };
}

type Packed = ReturnType<typeof packState>;

async function saveCheckpoint(dir: string, cp: Checkpoint) {
  const arrays: (Float32Array | Int32Array)[] = [];
  const done = cp.done.map((s) => packState(s, arrays));
  const current = cp.current ? packState(cp.current, arrays) : null;
  const lengths = arrays.map((a) => a.length);
  const kinds = arrays.map((a) => (a instanceof Int32Array ? "i32" : "f32"));
  const bytes = new Uint8Array(lengths.reduce((s, l) => s + 4 * l, 0));
  let off = 0;
  for (const a of arrays) {
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
    off += a.byteLength;
  }
  const tag = crypto.randomUUID().slice(0, 8);
  await writeAtomic(`${dir}/state-${tag}.bin`, bytes);
  const old = await readTextIfExists(`${dir}/state.json`);
  await writeAtomic(
    `${dir}/state.json`,
    JSON.stringify({
      fingerprint: cp.fingerprint,
      bin: `state-${tag}.bin`,
      lengths,
      kinds,
      done,
      current,
      stats: cp.stats,
      ledger: cp.ledger,
      ...(cp.seconds !== undefined ? { seconds: cp.seconds } : {}),
      epoch: cp.epoch,
    }) + "\n",
  );
  if (old) await Deno.remove(`${dir}/${JSON.parse(old).bin}`).catch(() => {});
}

async function loadCheckpoint(dir: string, fingerprint: string): Promise<Checkpoint | undefined> {
  const text = await readTextIfExists(`${dir}/state.json`);
  if (text === undefined) return undefined;
  const corrupt = (file: string, why: string) =>
    new Error(
      `zsdb3kd generation: ${dir}/${file} is corrupt (${why}). Delete the folder ${dir} to start the ` +
        `generation over.`,
    );
  let j;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw corrupt("state.json", (e as Error).message);
  }
  if (j.fingerprint !== fingerprint) {
    throw new Error(
      `zsdb3kd generation: ${dir} holds a checkpoint of a different run (options or teacher differ). ` +
        `Use another checkpointDir, or delete that folder to start over.`,
    );
  }
  if (!Number.isInteger(j.epoch) || typeof j.ledger?.totals?.spent !== "number") {
    throw corrupt("state.json", "no ledger epoch: written by an older version of the kit, or edited");
  }
  const bytes = await Deno.readFile(`${dir}/${j.bin}`).catch((e) => {
    throw corrupt(String(j.bin), (e as Error).message);
  });
  const want = (j.lengths as number[]).reduce((a, l) => a + 4 * l, 0);
  if (bytes.length !== want) throw corrupt(String(j.bin), `${bytes.length} bytes, state.json says ${want}`);
  const arrays: (Float32Array | Int32Array)[] = [];
  let off = 0;
  (j.lengths as number[]).forEach((len, i) => {
    const buf = bytes.slice(off, off + 4 * len).buffer;
    arrays.push(j.kinds[i] === "i32" ? new Int32Array(buf) : new Float32Array(buf));
    off += 4 * len;
  });
  const unpack = (p: Packed): RoundState => ({
    x: arrays[p.x] as Float32Array,
    y: arrays[p.y] as Int32Array,
    ids: arrays[p.ids] as Int32Array,
    origin: p.origin,
    iteration: p.iteration,
    snaps: p.snaps.map((q) => ({ iteration: q.iteration, x: arrays[q.x] as Float32Array })),
    distances: p.distances.map((k) => arrays[k] as Float32Array),
    searchQueries: arrays[p.searchQueries] as Int32Array,
    init: p.init,
  });
  return {
    fingerprint,
    done: (j.done as Packed[]).map(unpack),
    current: j.current ? unpack(j.current) : null,
    stats: j.stats,
    ledger: j.ledger,
    seconds: typeof j.seconds === "number" ? j.seconds : undefined,
    epoch: j.epoch,
  };
}

/**
 * Move every sample away from its boundary: X ← clip(X − λΘ), halving λ where the label would change.
 * Each sample's steps depend on its own answers only (a shard of the samples moves them the same way).
 */
async function stepAway(
  oracle: LabelOracle,
  s: { x: Float32Array; y: Int32Array; ids: Int32Array },
  g: Float32Array,
  theta: Float32Array,
  stepSize: number,
  maxHalvings: number,
): Promise<{ moved: number; stepSum: number; queries: number }> {
  const dim = oracle.inputShape.reduce((a, b) => a * b, 1);
  const n = s.y.length;
  const lam = new Float64Array(n).fill(stepSize);
  let pending: number[] = [];
  for (let i = 0; i < n; i++) if (Number.isFinite(g[i])) pending.push(i);
  let moved = 0, stepSum = 0, queries = 0;
  for (let h = 0; h <= maxHalvings && pending.length > 0; h++) {
    const cand = new Float32Array(pending.length * dim);
    pending.forEach((i, j) => {
      for (let k = 0; k < dim; k++) {
        const v = s.x[i * dim + k] - lam[i] * theta[i * dim + k];
        cand[j * dim + k] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    });
    const ans = await oracle.labels(cand, pending.length, {
      phase: "zs.step",
      sampleIds: Int32Array.from(pending, (i) => s.ids[i]),
    });
    const next: number[] = [];
    pending.forEach((i, j) => {
      if (ans.refused[j]) return;
      queries++;
      if (ans.labels[j] === s.y[i]) {
        s.x.set(cand.subarray(j * dim, (j + 1) * dim), i * dim);
        moved++;
        stepSum += lam[i];
      } else {
        lam[i] /= 2;
        next.push(i);
      }
    });
    pending = next;
  }
  return { moved, stepSum, queries };
}

/** Check generation options (and the nested search and noise options) up front. */
export function checkGenerateOptions(opts: GenerateOptions, where = "generatePseudoSamples"): void {
  checkNumbers(where, opts, {
    perClass: { integer: true, min: 1 },
    rounds: { integer: true, min: 0 },
    iterations: { integer: true, min: 0 },
    stepSize: { above: 0 },
    maxHalvings: { integer: true, min: 0 },
    idOffset: { integer: true, min: 0 },
  });
  checkNumberList(where, "snapshotAt", opts.snapshotAt, { integer: true, min: 0 });
  if (opts.seed !== undefined) checkSeed(opts.seed, where);
  if (opts.untargeted) checkUntargetedOptions(opts.untargeted, `${where} (untargeted options)`);
  if (opts.noise) checkNoiseInitOptions(opts.noise, `${where} (noise options)`);
}

/** Generate pseudo samples (see the module doc). */
export async function generatePseudoSamples(
  oracle: LabelOracle,
  opts: GenerateOptions = {},
): Promise<PseudoSet> {
  checkGenerateOptions(opts);
  const o = {
    ...GENERATE_DEFAULTS,
    ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => v !== undefined && k in GENERATE_DEFAULTS)),
  } as typeof GENERATE_DEFAULTS;
  const snapAt = [...new Set(o.snapshotAt.filter((i) => i >= 1 && i <= o.iterations))].sort((a, b) => a - b);
  o.snapshotAt = snapAt;
  const ut = { ...UNTARGETED_DEFAULTS, ...opts.untargeted };
  const noise = { ...opts.noise };
  const K = oracle.numClasses, shape = oracle.inputShape;
  const fingerprint = JSON.stringify({ o, ut, noise, shape, K, teacher: opts.teacher ?? null });
  const dir = opts.checkpointDir?.replace(/\/+$/, "");
  if (!dir) return await generate(oracle, opts, o, ut, noise, fingerprint, undefined);
  const old = await loadCheckpoint(dir, fingerprint);
  const epoch = old?.epoch ?? 0;
  if (old && (await readTextIfExists(journalPath(dir, epoch))) === undefined) {
    throw new Error(
      `zsdb3kd generation: ${dir} holds a checkpoint but not its ledger journal ` +
        `(ledger-${epoch}.journal was deleted): the queries since that checkpoint cannot be counted. ` +
        `Delete the folder to start over, or restore the file.`,
    );
  }
  // The checkpoint's ledger, then the journal of the queries made after it (an interrupted iteration).
  if (old && oracle.ledger.spent === 0) oracle.ledger.merge(old.ledger);
  // Journals of earlier epochs are in the checkpoint already (a kill right after a save leaves one).
  for (let e = 0; e < epoch; e++) await Deno.remove(journalPath(dir, e)).catch(() => {});
  oracle.ledger.attachJournal(journalPath(dir, epoch));
  try {
    return await generate(oracle, opts, o, ut, noise, fingerprint, dir);
  } finally {
    oracle.ledger.detachJournal();
  }
}

/** The ledger journal of the queries made after checkpoint `epoch`. */
function journalPath(dir: string, epoch: number): string {
  return `${dir}/ledger-${epoch}.journal`;
}

/**
 * Save a checkpoint with the ledger so far and move the ledger to the next epoch's (empty) journal.
 * The new journal exists before the checkpoint names it, and the old one is removed only after.
 */
async function checkpointAndRoll(
  oracle: LabelOracle,
  dir: string,
  cp: Checkpoint,
  seconds: number | undefined,
): Promise<void> {
  const next = cp.epoch + 1;
  await Deno.writeFile(journalPath(dir, next), new Uint8Array(0), { append: true, create: true });
  await saveCheckpoint(dir, { ...cp, epoch: next, ledger: oracle.ledger.snapshot(), seconds });
  oracle.ledger.detachJournal();
  oracle.ledger.attachJournal(journalPath(dir, next));
  await Deno.remove(journalPath(dir, cp.epoch)).catch(() => {});
  cp.epoch = next;
}

async function generate(
  oracle: LabelOracle,
  opts: GenerateOptions,
  o: typeof GENERATE_DEFAULTS,
  ut: typeof UNTARGETED_DEFAULTS,
  noise: Omit<NoiseInitOptions, "perClass" | "seed">,
  fingerprint: string,
  dir: string | undefined,
): Promise<PseudoSet> {
  const snapAt = o.snapshotAt;
  const K = oracle.numClasses, shape = oracle.inputShape;
  let cp: Checkpoint = {
    fingerprint,
    done: [],
    current: null,
    stats: [],
    ledger: oracle.ledger.snapshot(),
    seconds: 0,
    epoch: 0,
  };
  let resumedIterations = 0;
  if (dir) {
    const old = await loadCheckpoint(dir, fingerprint);
    if (old) {
      cp = old;
      resumedIterations = old.done.length * o.iterations + (old.current?.iteration ?? 0);
    }
  }
  if (cp.stats.length === 0) {
    cp.stats = Array.from({ length: o.iterations }, (_, i) => ({
      iteration: i + 1,
      meanDistance: 0,
      found: 0,
      moved: 0,
      meanStep: 0,
      queries: 0,
    }));
  }
  const totalSteps = o.rounds * (o.iterations + 1);
  const bar = opts.progress === false
    ? undefined
    : createProgress({ label: opts.progress ?? "zsdb3kd pseudo samples", total: totalSteps, unit: "step" });
  const spent0 = oracle.ledger.spent;
  const info = () => `${oracle.ledger.spent.toLocaleString("en-US")} queries`;
  const t0 = performance.now();
  const priorSeconds = cp.seconds; // undefined: resumed from a checkpoint that did not store its cost
  const spentSoFar = () =>
    priorSeconds === undefined ? undefined : priorSeconds + (performance.now() - t0) / 1000;
  for (let r = cp.done.length; r < o.rounds; r++) {
    let s = cp.current;
    if (!s) {
      const init = await initPseudoNoise(oracle, {
        ...noise,
        perClass: o.perClass,
        seed: seedMix(o.seed, r, 1),
      });
      const n = init.y.length;
      const base = o.idOffset + r * K * o.perClass;
      s = {
        x: init.x,
        y: init.y,
        ids: Int32Array.from({ length: n }, (_, i) => base + i),
        origin: init.origin,
        iteration: 0,
        snaps: [{ iteration: 0, x: init.x.slice() }],
        distances: [],
        searchQueries: new Int32Array(n),
        init: init.report,
      };
      cp.current = s;
    }
    bar?.update(r * (o.iterations + 1) + 1 + s.iteration, info());
    while (s.iteration < o.iterations) {
      const step = await optimiseIteration(oracle, s, {
        seed: o.seed,
        round: r,
        untargeted: ut,
        stepSize: o.stepSize,
        maxHalvings: o.maxHalvings,
        snapshotAt: snapAt,
        anchors: o.anchorFallback ? { x: s.snaps[0].x, labels: s.y } : undefined,
      });
      const it = s.iteration;
      const stat = cp.stats[it - 1];
      let sum = 0, m = 0;
      for (const d of step.distances) if (Number.isFinite(d)) [sum, m] = [sum + d, m + 1];
      // Running mean over rounds.
      stat.meanDistance = stat.found + m > 0 ? (stat.meanDistance * stat.found + sum) / (stat.found + m) : 0;
      stat.found += m;
      stat.meanStep = stat.moved + step.moved > 0
        ? (stat.meanStep * stat.moved + step.stepSum) / (stat.moved + step.moved)
        : 0;
      stat.moved += step.moved;
      stat.queries += step.queries;
      if (dir) await checkpointAndRoll(oracle, dir, cp, spentSoFar());
      bar?.update(r * (o.iterations + 1) + 1 + it, info());
    }
    cp.done.push(s);
    cp.current = null;
    if (dir) await checkpointAndRoll(oracle, dir, cp, spentSoFar());
  }
  const seconds = (performance.now() - t0) / 1000;
  bar?.update(totalSteps, info());
  bar?.done(
    `${o.rounds} rounds, ${(oracle.ledger.spent - spent0).toLocaleString("en-US")} queries in this call`,
  );
  // Concatenate the rounds.
  const rounds = cp.done;
  const n = rounds.reduce((a, s) => a + s.y.length, 0);
  const cat = <T extends Float32Array | Int32Array>(parts: T[], make: (len: number) => T): T => {
    const out = make(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p as never, off);
      off += p.length;
    }
    return out;
  };
  const f32 = (len: number) => new Float32Array(len);
  const snapshots = [0, ...snapAt].map((iteration) => ({
    iteration,
    x: cat(rounds.map((s) => s.snaps.find((q) => q.iteration === iteration)!.x), f32),
  }));
  const distances = Array.from(
    { length: o.iterations },
    (_, i) => cat(rounds.map((s) => s.distances[i]), f32),
  );
  const round = new Int32Array(n);
  let off = 0;
  rounds.forEach((s, r) => {
    round.fill(r, off, off + s.y.length);
    off += s.y.length;
  });
  return {
    imageShape: [...shape],
    numClasses: K,
    y: cat(rounds.map((s) => s.y), (l) => new Int32Array(l)),
    ids: cat(rounds.map((s) => s.ids), (l) => new Int32Array(l)),
    round,
    origin: rounds.flatMap((s) => s.origin),
    snapshots,
    distances,
    searchQueries: cat(rounds.map((s) => s.searchQueries), (l) => new Int32Array(l)),
    stats: cp.stats.map((q) => ({ ...q })),
    init: rounds.map((s) => s.init),
    options: { ...o, untargeted: ut, noise },
    ledger: oracle.ledger.snapshot(),
    seconds,
    totalSeconds: priorSeconds === undefined ? null : priorSeconds + seconds,
    resumedIterations,
  };
}
