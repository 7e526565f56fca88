/**
 * Exact query accounting for teacher oracles.
 *
 * A {@link Ledger} counts every image sent to a teacher, by kind (`label`, `probs`, `forward`,
 * `backward`), by phase (free-form names such as "bd.init", "bd.search", "mbd.grad", "mbd.line") and
 * by sample id. It also enforces budgets that are never exceeded: a per-sample budget (a default plus
 * per-id overrides) and a total budget. The unit of a budget is one image of one kind: a label query
 * costs 1, a forward+backward pass through a differentiable teacher costs 2 per image.
 *
 * Charging is all-or-nothing per sample within a request: if the images of sample s in one request
 * would take s past its budget (or the ledger past its total), every image of s in that request is
 * refused — not sent, not counted — and the other samples proceed. Totals therefore always equal the
 * sum of the per-sample entries. Images sent without a sample id are booked under {@link NO_SAMPLE}
 * (no per-sample budget applies to it, the total budget does).
 */

/** What the teacher was asked for, one unit per image. */
export type QueryKind = "label" | "probs" | "forward" | "backward";

/** All query kinds, in snapshot order. */
export const QUERY_KINDS: readonly QueryKind[] = ["label", "probs", "forward", "backward"];

/** Sample id under which untagged images are booked. */
export const NO_SAMPLE = -1;

/** Images per kind. */
export type KindCounts = Record<QueryKind, number>;

/** Counts for one phase: calls and images per kind, plus refusals. */
export interface PhaseEntry {
  /** Oracle calls that sent at least one image in this phase, per kind. */
  calls: KindCounts;
  /** Images sent, per kind. */
  images: KindCounts;
  /** Images refused because a budget would have been crossed. */
  refused: number;
}

/** Counts for one sample. */
export interface SampleEntry {
  /** Images sent for this sample, per kind. */
  images: KindCounts;
  /** Oracle calls that carried at least one image of this sample. */
  calls: number;
  /** Images of this sample refused (budget). */
  refused: number;
  /** Sum of `images` over kinds: what the per-sample budget is compared to. */
  spent: number;
}

/** Budgets in images (all kinds together). `undefined` means unlimited. */
export interface BudgetOptions {
  /** Default budget of every sample id ≥ 0. */
  perSample?: number;
  /** Budget over everything the ledger books. */
  total?: number;
}

/** Plain-JSON view of a ledger, saved with every run. */
export interface LedgerSnapshot {
  /** Images and calls per kind over all phases. `calls` counts oracle calls (not per sample). */
  totals: { calls: KindCounts; images: KindCounts; refused: number; spent: number };
  /** Per phase. */
  byPhase: Record<string, PhaseEntry>;
  /** Per sample id (as a string key; "-1" = untagged). */
  bySample: Record<string, SampleEntry>;
  /** Budgets in force when the snapshot was taken. */
  budget: { perSample: number | null; total: number | null; overrides: Record<string, number> };
}

/** One charge request: `n` images, optionally tagged with the sample each belongs to. */
export interface ChargeRequest {
  /** Kinds booked per image (e.g. ["forward", "backward"]); the cost per image is their number. */
  kinds: readonly QueryKind[];
  /** Phase name. */
  phase: string;
  /** Number of images. */
  n: number;
  /** Sample id of each image (length n), or omitted for untagged images. */
  sampleIds?: Int32Array;
}

function zeroKinds(): KindCounts {
  return { label: 0, probs: 0, forward: 0, backward: 0 };
}

/** Query ledger with budgets; see the module doc for the exact rules. */
export class Ledger {
  #totalsImages = zeroKinds();
  #totalsCalls = zeroKinds();
  #totalRefused = 0;
  #spent = 0;
  #phases = new Map<string, PhaseEntry>();
  #samples = new Map<number, SampleEntry>();
  #perSample: number | undefined;
  #total: number | undefined;
  #overrides = new Map<number, number>();

  /** A fresh ledger with the given budgets (unlimited by default). */
  constructor(budget: BudgetOptions = {}) {
    this.#perSample = budget.perSample;
    this.#total = budget.total;
  }

  /** Set (or with `undefined`, clear) the budget of one sample id. */
  setSampleBudget(id: number, budget: number | undefined): void {
    if (budget === undefined) this.#overrides.delete(id);
    else this.#overrides.set(id, budget);
  }

  /** Set the default per-sample budget and/or the total budget. */
  setBudget(budget: BudgetOptions): void {
    if ("perSample" in budget) this.#perSample = budget.perSample;
    if ("total" in budget) this.#total = budget.total;
  }

  /** Budget of a sample id (Infinity when unlimited). */
  budgetOf(id: number): number {
    if (id === NO_SAMPLE) return Infinity;
    return this.#overrides.get(id) ?? this.#perSample ?? Infinity;
  }

  /** Images (all kinds) already spent for a sample. */
  spentBy(id: number): number {
    return this.#samples.get(id)?.spent ?? 0;
  }

  /** What a sample may still spend (Infinity when unlimited). */
  remaining(id: number): number {
    return Math.max(0, Math.min(this.budgetOf(id) - this.spentBy(id), this.totalRemaining()));
  }

  /** What the whole ledger may still spend. */
  totalRemaining(): number {
    return this.#total === undefined ? Infinity : Math.max(0, this.#total - this.#spent);
  }

  /** Images of all kinds spent so far. */
  get spent(): number {
    return this.#spent;
  }

  /**
   * Book a request. Returns a per-image mask, 1 = refused (not to be sent). Samples are admitted in
   * order of first appearance in `sampleIds`; a sample whose images would cross its own budget or the
   * total budget is refused as a whole for this request.
   */
  charge(req: ChargeRequest): Uint8Array {
    const { kinds, phase, n, sampleIds } = req;
    const refused = new Uint8Array(n);
    if (n === 0) return refused;
    if (sampleIds && sampleIds.length !== n) {
      throw new RangeError(`ledger: ${sampleIds.length} sample ids for ${n} images`);
    }
    const cost = kinds.length;
    // Images per sample in this request, in order of first appearance.
    const counts = new Map<number, number>();
    if (sampleIds) {
      for (let i = 0; i < n; i++) counts.set(sampleIds[i], (counts.get(sampleIds[i]) ?? 0) + 1);
    } else counts.set(NO_SAMPLE, n);
    const denied = new Set<number>();
    let accepted = 0;
    let refusedImages = 0;
    let totalLeft = this.totalRemaining();
    for (const [id, k] of counts) {
      const need = k * cost;
      if (this.spentBy(id) + need > this.budgetOf(id) || need > totalLeft) {
        denied.add(id);
        refusedImages += k;
        continue;
      }
      totalLeft -= need;
      accepted += k;
      const e = this.#sample(id);
      for (const kind of kinds) e.images[kind] += k;
      e.spent += need;
      e.calls += 1;
    }
    for (const id of denied) this.#sample(id).refused += counts.get(id)!;
    if (denied.size > 0) {
      if (sampleIds) { for (let i = 0; i < n; i++) if (denied.has(sampleIds[i])) refused[i] = 1; }
      else refused.fill(1);
    }
    const p = this.#phase(phase);
    p.refused += refusedImages;
    this.#totalRefused += refusedImages;
    if (accepted > 0) {
      for (const kind of kinds) {
        p.images[kind] += accepted;
        p.calls[kind] += 1;
        this.#totalsImages[kind] += accepted;
        this.#totalsCalls[kind] += 1;
      }
      this.#spent += accepted * cost;
    }
    return refused;
  }

  /** Add another ledger's counts (e.g. a resumed chunk) into this one. Budgets are not changed. */
  merge(s: LedgerSnapshot): void {
    for (const kind of QUERY_KINDS) {
      this.#totalsImages[kind] += s.totals.images[kind];
      this.#totalsCalls[kind] += s.totals.calls[kind];
    }
    this.#totalRefused += s.totals.refused;
    this.#spent += s.totals.spent;
    for (const [name, e] of Object.entries(s.byPhase)) {
      const p = this.#phase(name);
      for (const kind of QUERY_KINDS) {
        p.images[kind] += e.images[kind];
        p.calls[kind] += e.calls[kind];
      }
      p.refused += e.refused;
    }
    for (const [key, e] of Object.entries(s.bySample)) {
      const t = this.#sample(Number(key));
      for (const kind of QUERY_KINDS) t.images[kind] += e.images[kind];
      t.calls += e.calls;
      t.refused += e.refused;
      t.spent += e.spent;
    }
  }

  /** Rebuild a ledger (counts and budgets) from a snapshot. */
  static fromSnapshot(s: LedgerSnapshot): Ledger {
    const l = new Ledger({ perSample: s.budget.perSample ?? undefined, total: s.budget.total ?? undefined });
    for (const [k, v] of Object.entries(s.budget.overrides)) l.setSampleBudget(Number(k), v);
    l.merge(s);
    return l;
  }

  /** Plain-JSON copy of every count. */
  snapshot(): LedgerSnapshot {
    const byPhase: Record<string, PhaseEntry> = {};
    for (const [k, e] of this.#phases) {
      byPhase[k] = { calls: { ...e.calls }, images: { ...e.images }, refused: e.refused };
    }
    const bySample: Record<string, SampleEntry> = {};
    const ids = [...this.#samples.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const e = this.#samples.get(id)!;
      bySample[String(id)] = { images: { ...e.images }, calls: e.calls, refused: e.refused, spent: e.spent };
    }
    const overrides: Record<string, number> = {};
    for (const [k, v] of this.#overrides) overrides[String(k)] = v;
    return {
      totals: {
        calls: { ...this.#totalsCalls },
        images: { ...this.#totalsImages },
        refused: this.#totalRefused,
        spent: this.#spent,
      },
      byPhase,
      bySample,
      budget: { perSample: this.#perSample ?? null, total: this.#total ?? null, overrides },
    };
  }

  #phase(name: string): PhaseEntry {
    let p = this.#phases.get(name);
    if (!p) {
      p = { calls: zeroKinds(), images: zeroKinds(), refused: 0 };
      this.#phases.set(name, p);
    }
    return p;
  }

  #sample(id: number): SampleEntry {
    let e = this.#samples.get(id);
    if (!e) {
      e = { images: zeroKinds(), calls: 0, refused: 0, spent: 0 };
      this.#samples.set(id, e);
    }
    return e;
  }
}

/** Images of one kind summed over a snapshot's per-sample entries (equals `totals.images[kind]`). */
export function sumBySample(s: LedgerSnapshot, kind: QueryKind): number {
  let t = 0;
  for (const e of Object.values(s.bySample)) t += e.images[kind];
  return t;
}
