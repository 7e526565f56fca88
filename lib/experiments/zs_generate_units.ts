/**
 * The generation units of a zsdb3kd run: the noise initialisation of one round (`zs-init`) and the
 * iterations of a contiguous range of pseudo samples (`zs-generate`), and {@link readGeneration},
 * which puts a seed's finished units back together in id order (what `generatePseudoSamples` returns,
 * minus the fields that only a single process knows).
 *
 * @module
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { UnitContext, UnitOutput } from "../runner/family.ts";
import { levelOf } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import { type MovingSamples, optimiseIteration, type PseudoSet, seedMix } from "../zeroshot/generate.ts";
import { initPseudoNoise, type NoiseInitReport } from "../zeroshot/noise_init.ts";
import { unitOracle } from "./unit_oracle.ts";
import { openPlannedTeacher } from "./open_teacher.ts";
import { ZS_TEACHER, type ZsSpec, zsUnits } from "./zs_spec.ts";
import { bytesOf, f32Of } from "./packed.ts";

/** What an init unit saves beside `x0.f32`. */
interface InitResult {
  y: number[];
  origin: string[];
  imageShape: number[];
  report: NoiseInitReport;
  ledger: LedgerSnapshot;
  lost: LedgerSnapshot;
  engine: unknown;
  seconds: number;
}

/** What a generation unit saves beside `x.f32` (snapshots) and `distances.f32` (per iteration). */
interface GenResult {
  ids: number[];
  y: number[];
  round: number[];
  origin: string[];
  searchQueries: number[];
  /** Per iteration: queries, samples moved and the sum of their steps λ (dyadic: sums are exact). */
  queries: number[];
  moved: number[];
  stepSum: number[];
  ledger: LedgerSnapshot;
  lost: LedgerSnapshot;
  seconds: number;
}

/** Kept iterations: 0 (the raw accepted noise) and the snapshots within range, ascending. */
export function keptIterations(spec: ZsSpec): number[] {
  const g = spec.settings.generate;
  return [0, ...[...new Set(g.snapshotAt.filter((i) => i >= 1 && i <= g.iterations))].sort((a, b) => a - b)];
}

export async function initUnit(ctx: UnitContext): Promise<UnitOutput> {
  const t0 = performance.now();
  const spec = ctx.plan.spec as unknown as ZsSpec;
  const { seed, round } = zsUnits(spec).init[ctx.index];
  const g = spec.settings.generate;
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, ZS_TEACHER);
  const u = await unitOracle(ctx, teacher, spec.settings.perSampleBudget, new Map());
  try {
    const init = await initPseudoNoise(u.oracle, {
      ...g.noise,
      perClass: g.perClass,
      seed: seedMix(seed, round, 1),
    });
    const result: InitResult = {
      y: [...init.y],
      origin: init.origin,
      imageShape: [...u.oracle.inputShape],
      report: init.report,
      ledger: u.oracle.ledger.snapshot(),
      lost: u.lost,
      engine: teacher.engine,
      seconds: (performance.now() - t0) / 1000,
    };
    return {
      files: { "x0.f32": bytesOf(init.x), "init.json": JSON.stringify(result) + "\n" },
      done: { samples: init.y.length, queries: result.ledger.totals.spent },
    };
  } finally {
    u.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

async function readInit(store: RunStore, spec: ZsSpec, seed: number, round: number) {
  const u = zsUnits(spec).init;
  const key = levelOf(store.plan, "init").keys[u.findIndex((x) => x.seed === seed && x.round === round)];
  const r = JSON.parse(await store.readText(key, "init.json")) as InitResult;
  return { ...r, x0: f32Of(await store.readBytes(key, "x0.f32")) };
}

export async function generateUnit(ctx: UnitContext): Promise<UnitOutput> {
  const t0 = performance.now();
  const spec = ctx.plan.spec as unknown as ZsSpec;
  const { seed, range: [a, b] } = zsUnits(spec).generate[ctx.index];
  const g = spec.settings.generate;
  const per = spec.numClasses * g.perClass;
  const kept = keptIterations(spec);
  const its = g.iterations;
  const out: Omit<GenResult, "ledger" | "lost" | "seconds"> = {
    ids: [],
    y: [],
    round: [],
    origin: [],
    searchQueries: [],
    queries: new Array(its).fill(0),
    moved: new Array(its).fill(0),
    stepSum: new Array(its).fill(0),
  };
  const snaps: Float32Array[][] = kept.map(() => []);
  const dists: Float32Array[][] = Array.from({ length: its }, () => []);
  const teacher = await openPlannedTeacher(spec, ctx.plan.teacher, ZS_TEACHER);
  const u = await unitOracle(ctx, teacher, spec.settings.perSampleBudget, new Map());
  const oracle = u.oracle;
  const dim = oracle.inputShape.reduce((p, q) => p * q, 1);
  try {
    for (let r = 0; r < g.rounds; r++) {
      const base = r * per;
      if (b <= base || a >= base + per) continue;
      const init = await readInit(ctx.store, spec, seed, r);
      const j0 = Math.max(0, a - base), j1 = Math.min(init.y.length, b - base);
      if (j1 <= j0) continue;
      const s: MovingSamples = {
        x: init.x0.slice(j0 * dim, j1 * dim),
        y: Int32Array.from(init.y.slice(j0, j1)),
        ids: Int32Array.from({ length: j1 - j0 }, (_, j) => base + j0 + j),
        iteration: 0,
        snaps: [],
        distances: [],
        searchQueries: new Int32Array(j1 - j0),
      };
      s.snaps.push({ iteration: 0, x: s.x.slice() });
      const anchors = g.anchorFallback ? { x: init.x0, labels: Int32Array.from(init.y) } : undefined;
      while (s.iteration < its) {
        const step = await optimiseIteration(oracle, s, { ...g, seed, round: r, snapshotAt: kept, anchors });
        out.queries[s.iteration - 1] += step.queries;
        out.moved[s.iteration - 1] += step.moved;
        out.stepSum[s.iteration - 1] += step.stepSum;
      }
      s.snaps.forEach((q, k) => snaps[k].push(q.x));
      s.distances.forEach((d, i) => dists[i].push(d));
      out.ids.push(...s.ids);
      out.y.push(...s.y);
      out.round.push(...new Array(s.y.length).fill(r));
      out.origin.push(...init.origin.slice(j0, j1));
      out.searchQueries.push(...s.searchQueries);
    }
    const result: GenResult = {
      ...out,
      ledger: oracle.ledger.snapshot(),
      lost: u.lost,
      seconds: (performance.now() - t0) / 1000,
    };
    return {
      files: {
        "x.f32": bytesOf(concat(snaps.flat())),
        "distances.f32": bytesOf(concat(dists.flat())),
        "gen.json": JSON.stringify(result) + "\n",
      },
      done: {
        samples: out.ids.length,
        queries: result.ledger.totals.spent,
        lostQueries: u.lost.totals.spent,
      },
    };
  } finally {
    u.close();
    teacher.close();
    teacher.model?.dispose();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A seed's generation, put back together in id order (the fields of a {@link PseudoSet} it shares). */
export interface Generation extends
  Pick<
    PseudoSet,
    | "imageShape"
    | "numClasses"
    | "y"
    | "ids"
    | "round"
    | "origin"
    | "snapshots"
    | "distances"
    | "searchQueries"
  > {
  /** Per iteration: label queries, samples moved, sum of their steps. */
  queries: number[];
  moved: number[];
  stepSum: number[];
  init: NoiseInitReport[];
  /** Ledgers of the init units (round order) and generation units (range order), and what dead attempts paid. */
  ledgers: LedgerSnapshot[];
  lost: LedgerSnapshot[];
  names: string[];
  /** Unit seconds summed. */
  seconds: number;
  engine: unknown;
}

/**
 * Read a seed's finished init and generation units (see {@link Generation}), with the snapshots of
 * `iterations` only (default: every kept iteration; at paper scale one snapshot of a seed is ~100 MB).
 */
export async function readGeneration(
  store: RunStore,
  seed: number,
  iterations?: number[],
): Promise<Generation> {
  const spec = store.plan.spec as unknown as ZsSpec;
  const g = spec.settings.generate;
  const all = keptIterations(spec);
  const kept = iterations ? all.filter((i) => iterations.includes(i)) : all;
  const units = zsUnits(spec);
  const inits = [];
  for (let r = 0; r < g.rounds; r++) inits.push(await readInit(store, spec, seed, r));
  const imageShape = inits[0].imageShape;
  const dim = imageShape.reduce((p, q) => p * q, 1);
  const level = levelOf(store.plan, "generate");
  const parts: { r: GenResult; xs: Float32Array[]; d: Float32Array; name: string }[] = [];
  for (let i = 0; i < units.generate.length; i++) {
    if (units.generate[i].seed !== seed) continue;
    const key = level.keys[i];
    const r = JSON.parse(await store.readText(key, "gen.json")) as GenResult;
    const m = r.ids.length;
    // Keep only the wanted snapshots of the file (k-major: all of a shard's samples per kept iteration).
    const x = kept.length > 0 ? f32Of(await store.readBytes(key, "x.f32")) : new Float32Array(0);
    const xs = kept.map((it) => x.slice(all.indexOf(it) * m * dim, (all.indexOf(it) + 1) * m * dim));
    const d = f32Of(await store.readBytes(key, "distances.f32"));
    parts.push({ r, xs, d, name: `generate[${i}] (${level.describe[i]})` });
  }
  const n = parts.reduce((s, p) => s + p.r.ids.length, 0);
  const snapshots = kept.map((iteration) => ({ iteration, x: new Float32Array(n * dim) }));
  const distances = Array.from({ length: g.iterations }, () => new Float32Array(n));
  let off = 0;
  for (const p of parts) {
    const m = p.r.ids.length;
    p.xs.forEach((x, j) => snapshots[j].x.set(x, off * dim));
    distances.forEach((d, it) => d.set(p.d.subarray(it * m, (it + 1) * m), off));
    off += m;
  }
  const sum = (f: (r: GenResult) => number[]) =>
    Array.from({ length: g.iterations }, (_, i) => parts.reduce((s, p) => s + f(p.r)[i], 0));
  return {
    imageShape,
    numClasses: spec.numClasses,
    y: Int32Array.from(parts.flatMap((p) => p.r.y)),
    ids: Int32Array.from(parts.flatMap((p) => p.r.ids)),
    round: Int32Array.from(parts.flatMap((p) => p.r.round)),
    origin: parts.flatMap((p) => p.r.origin),
    snapshots,
    distances,
    searchQueries: Int32Array.from(parts.flatMap((p) => p.r.searchQueries)),
    queries: sum((r) => r.queries),
    moved: sum((r) => r.moved),
    stepSum: sum((r) => r.stepSum),
    init: inits.map((x) => x.report),
    ledgers: [...inits.map((x) => x.ledger), ...parts.map((p) => p.r.ledger)],
    lost: [...inits.map((x) => x.lost), ...parts.map((p) => p.r.lost)],
    names: [...inits.map((_, r) => `init (seed ${seed}, round ${r})`), ...parts.map((p) => p.name)],
    seconds: inits.reduce((s, x) => s + x.seconds, 0) + parts.reduce((s, p) => s + p.r.seconds, 0),
    engine: inits[0].engine,
  };
}
