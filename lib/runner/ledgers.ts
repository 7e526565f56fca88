/**
 * Exact merging of per-unit ledgers in the reduce step, with the checks that make it trustworthy:
 * totals equal the per-sample sums, no sample is over its budget, and (for sharded labeling) no
 * sample was charged by two units.
 *
 * @module
 */
import { Ledger, type LedgerSnapshot, QUERY_KINDS, sumBySample } from "../oracle/ledger.ts";

/** Raised when merged ledgers break an accounting rule; the message names the sample and numbers. */
export class LedgerMergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LedgerMergeError";
  }
}

/** Options of {@link mergeLedgers}. */
export interface MergeOptions {
  /** Per-sample budget in images (all kinds); `undefined`: unlimited. */
  perSample?: number;
  /** Fail when one sample id (≥ 0) appears in more than one snapshot (disjoint shards). */
  disjoint?: boolean;
  /** Names of the snapshots, for error messages (default "unit 0", "unit 1", …). */
  names?: string[];
}

/** Merge snapshots into one, checking the rules in the module doc; throws {@link LedgerMergeError}. */
export function mergeLedgers(snapshots: LedgerSnapshot[], opts: MergeOptions = {}): LedgerSnapshot {
  const names = opts.names ?? snapshots.map((_, i) => `unit ${i}`);
  const owner = new Map<string, number>();
  const merged = new Ledger({ perSample: opts.perSample });
  snapshots.forEach((s, i) => {
    checkConsistent(s, names[i]);
    if (opts.disjoint) {
      for (const id of Object.keys(s.bySample)) {
        if (Number(id) < 0) continue;
        const prev = owner.get(id);
        if (prev !== undefined && prev !== i) {
          throw new LedgerMergeError(
            `sample ${id} was charged by both ${names[prev]} and ${names[i]}: shards overlap; ` +
              `the plan's sample ranges must be disjoint (rebuild the run store)`,
          );
        }
        owner.set(id, i);
      }
    }
    merged.merge(s);
  });
  const out = merged.snapshot();
  checkConsistent(out, "the merged ledger");
  if (opts.perSample !== undefined) {
    for (const [id, e] of Object.entries(out.bySample)) {
      if (Number(id) >= 0 && e.spent > opts.perSample) {
        throw new LedgerMergeError(
          `sample ${id} spent ${e.spent} queries, over its budget of ${opts.perSample}: ` +
            `the units did not share the budget; rerun its unit with the remaining budget`,
        );
      }
    }
  }
  return out;
}

/** Throw unless a snapshot's totals equal the sums of its per-sample and per-phase entries. */
export function checkConsistent(s: LedgerSnapshot, name = "ledger"): void {
  let spent = 0;
  for (const e of Object.values(s.bySample)) spent += e.spent;
  if (spent !== s.totals.spent) {
    throw new LedgerMergeError(`${name}: total spent ${s.totals.spent} ≠ per-sample sum ${spent}`);
  }
  for (const kind of QUERY_KINDS) {
    const bySample = sumBySample(s, kind);
    let byPhase = 0;
    for (const p of Object.values(s.byPhase)) byPhase += p.images[kind];
    if (bySample !== s.totals.images[kind] || byPhase !== s.totals.images[kind]) {
      throw new LedgerMergeError(
        `${name}: ${kind} images total ${s.totals.images[kind]} ≠ per-sample sum ${bySample} ` +
          `or per-phase sum ${byPhase}`,
      );
    }
  }
}

/**
 * The parts of a ledger that do not depend on how the samples were split into units: images and
 * spending per kind, phase and sample. Call counts are left out — a round of queries is one call per
 * unit, so three shards make three times the calls for the same images.
 */
export function splitInvariantView(s: LedgerSnapshot): unknown {
  const byPhase: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(s.byPhase)) byPhase[k] = { images: e.images, refused: e.refused };
  const bySample: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(s.bySample)) {
    bySample[k] = { images: e.images, refused: e.refused, spent: e.spent };
  }
  return { images: s.totals.images, spent: s.totals.spent, refused: s.totals.refused, byPhase, bySample };
}
