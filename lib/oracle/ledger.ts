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
 *
 * Charge before asking: {@link Ledger.reserve} admits a request and books it as spent before the
 * teacher is asked, {@link Ledger.settle} records the answer, {@link Ledger.release} takes back images
 * that were never answered. With a journal attached ({@link Ledger.attachJournal}, see `journal.ts`)
 * every reservation is on disk before the images are sent, so a killed run's ledger is rebuilt on
 * resume with everything the teacher may have answered, and budgets hold across restarts. Budgets and
 * image counts must be non-negative integers (a `NaN` budget is an error, not "no budget").
 */
import {
  type JournalRecord,
  LedgerJournal,
  parseJournal,
  readBytes,
  readJournal,
  type ReleaseRecord,
  type ReserveRecord,
  type SampleCounts,
  type SettleRecord,
} from "./journal.ts";

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

/** Budgets in images (all kinds together). `undefined` (or `Infinity`) means unlimited. */
export interface BudgetOptions {
  /** Default budget of every sample id ≥ 0. */
  perSample?: number;
  /** Budget over everything the ledger books. */
  total?: number;
}

/** Plain-JSON view of a ledger, saved with every run. */
export interface LedgerSnapshot {
  /**
   * Images and calls per kind over all phases. `calls` counts oracle calls (not per sample).
   * `reservedUnsettled` (present when > 0): images reserved before a kill whose answer was never
   * recorded — counted in `spent` and `images` because the teacher may have answered them.
   */
  totals: {
    calls: KindCounts;
    images: KindCounts;
    refused: number;
    spent: number;
    reservedUnsettled?: number;
  };
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

/** An admitted request whose answer is still due: settle it when answered, release what never was. */
export interface Reservation {
  /** Per-image mask, 1 = refused (not to be sent). */
  refused: Uint8Array;
  /** Ticket to pass to {@link Ledger.settle} / {@link Ledger.release}. */
  ticket: string;
  /** Images admitted. */
  admitted: number;
}

/** Raised for a budget or image count that is not a number of images. */
export class LedgerInputError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "LedgerInputError";
  }
}

function checkBudget(what: string, v: number | undefined): number | undefined {
  if (v === undefined || v === Infinity) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new LedgerInputError(
      `ledger: ${what} budget ${v} is not a number of images. Pass a non-negative integer, or leave it ` +
        `undefined (or Infinity) for no budget.`,
    );
  }
  return v;
}

function zeroKinds(): KindCounts {
  return { label: 0, probs: 0, forward: 0, backward: 0 };
}

/** Per-process prefix of ticket ids (several processes may append to one journal). */
const TICKET_PREFIX = `${Deno.pid.toString(36)}-${crypto.randomUUID().slice(0, 6)}`;
let ticketCounter = 0;
let ledgerCounter = 0;

/** An admitted, not yet fully settled reservation. */
interface OpenTicket {
  phase: string;
  kinds: QueryKind[];
  /** Images not yet settled or released. */
  open: number;
  /** Admitted images per sample still booked. */
  perSample: Map<number, number>;
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
  #open = new Map<string, OpenTicket>();
  /** Reserved-unsettled images carried in by {@link merge} (no open ticket of this ledger). */
  #carriedUnsettled = 0;
  #journal: LedgerJournal | null = null;
  /** Ticket prefix of this ledger (unique across processes and ledgers). */
  readonly #prefix = `${TICKET_PREFIX}-${(ledgerCounter++).toString(36)}`;

  /** A fresh ledger with the given budgets (unlimited by default). */
  constructor(budget: BudgetOptions = {}) {
    this.#perSample = checkBudget("per-sample", budget.perSample);
    this.#total = checkBudget("total", budget.total);
  }

  /** Set (or with `undefined`, clear) the budget of one sample id. */
  setSampleBudget(id: number, budget: number | undefined): void {
    const b = checkBudget(`sample ${id}'s`, budget);
    if (b === undefined) this.#overrides.delete(id);
    else this.#overrides.set(id, b);
  }

  /** Set the default per-sample budget and/or the total budget. */
  setBudget(budget: BudgetOptions): void {
    if ("perSample" in budget) this.#perSample = checkBudget("per-sample", budget.perSample);
    if ("total" in budget) this.#total = checkBudget("total", budget.total);
  }

  /** Budget of a sample id (Infinity when unlimited). */
  budgetOf(id: number): number {
    if (id === NO_SAMPLE) return Infinity;
    return this.#overrides.get(id) ?? this.#perSample ?? Infinity;
  }

  /** Whether a total budget is set. */
  get hasTotalBudget(): boolean {
    return this.#total !== undefined;
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

  /** Images of all kinds spent so far (reserved images included). */
  get spent(): number {
    return this.#spent;
  }

  /** Images reserved and neither settled nor released (in flight, or lost in a kill). */
  get reservedUnsettled(): number {
    let s = this.#carriedUnsettled;
    for (const t of this.#open.values()) s += t.open;
    return s;
  }

  /**
   * Book a request whose answer is used at once (reserve and settle in one step). Returns a per-image
   * mask, 1 = refused (not to be sent). See {@link reserve} for the admission rule.
   */
  charge(req: ChargeRequest): Uint8Array {
    const r = this.reserve(req);
    this.settle(r.ticket, r.admitted);
    return r.refused;
  }

  /**
   * Admit a request before the teacher is asked. Samples are admitted in order of first appearance in
   * `sampleIds`; a sample whose images would cross its own budget or the total budget is refused as a
   * whole for this request. The admitted images count as spent at once; with a journal attached the
   * reservation is on disk (fsync'd) before this returns. Call {@link settle} once they are answered.
   */
  reserve(req: ChargeRequest): Reservation {
    const { kinds, phase, n, sampleIds } = req;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new LedgerInputError(
        `ledger: ${n} images in phase ${phase} is not an image count. Pass a non-negative integer.`,
      );
    }
    const refused = new Uint8Array(n);
    const ticket = `${this.#prefix}-${(ticketCounter++).toString(36)}`;
    if (n === 0) return { refused, ticket, admitted: 0 };
    if (sampleIds && sampleIds.length !== n) {
      throw new LedgerInputError(`ledger: ${sampleIds.length} sample ids for ${n} images`);
    }
    const cost = kinds.length;
    // Images per sample in this request, in order of first appearance.
    const counts = new Map<number, number>();
    if (sampleIds) {
      for (let i = 0; i < n; i++) counts.set(sampleIds[i], (counts.get(sampleIds[i]) ?? 0) + 1);
    } else counts.set(NO_SAMPLE, n);
    const ok: SampleCounts = [], no: SampleCounts = [];
    let totalLeft = this.totalRemaining();
    for (const [id, k] of counts) {
      const need = k * cost;
      if (this.spentBy(id) + need > this.budgetOf(id) || need > totalLeft) {
        no.push([id, k]);
        continue;
      }
      totalLeft -= need;
      ok.push([id, k]);
    }
    if (no.length > 0) {
      const denied = new Set(no.map(([id]) => id));
      if (sampleIds) { for (let i = 0; i < n; i++) if (denied.has(sampleIds[i])) refused[i] = 1; }
      else refused.fill(1);
    }
    const rec: ReserveRecord = { t: "r", id: ticket, phase, kinds: [...kinds], ok, no };
    // Durable before the images can be sent (refusals are journaled too, lazily).
    if (ok.length > 0 || no.length > 0) this.#journal?.append(rec, ok.length > 0);
    this.#applyReserve(rec);
    let admitted = 0;
    for (const [, k] of ok) admitted += k;
    return { refused, ticket, admitted };
  }

  /** Record that `n` images of a reservation were answered (default: all still open). */
  settle(ticket: string, n?: number): void {
    const t = this.#open.get(ticket);
    if (!t) return;
    const m = Math.min(t.open, n ?? t.open);
    if (m <= 0) return;
    const rec: SettleRecord = { t: "s", id: ticket, n: m };
    this.#journal?.append(rec, false);
    this.#applySettle(rec);
  }

  /**
   * Take back images of a reservation that were never answered (a failed remote batch): `sampleIds`
   * lists the sample id of each released image (omitted: untagged images, `n` of them).
   */
  release(ticket: string, sampleIds: Int32Array | undefined, n: number): void {
    const t = this.#open.get(ticket);
    if (!t || n <= 0) return;
    const counts = new Map<number, number>();
    if (sampleIds) {
      for (let i = 0; i < n; i++) {
        counts.set(sampleIds[i], (counts.get(sampleIds[i]) ?? 0) + 1);
      }
    } else counts.set(NO_SAMPLE, n);
    const rec: ReleaseRecord = { t: "x", id: ticket, counts: [...counts] };
    this.#journal?.append(rec, true);
    this.#applyRelease(rec);
  }

  /**
   * Attach a write-ahead journal at `path` (see `journal.ts`): the journal's records are replayed into
   * this ledger (a resumed run continues with its counts and budgets), and every later reservation is
   * appended before the teacher is asked. Returns the number of records replayed.
   */
  attachJournal(path: string): number {
    if (this.#journal) throw new Error(`ledger: a journal is already attached (${this.#journal.path})`);
    const bytes = readBytes(path);
    const { records, end } = parseJournal(bytes, path, 0);
    for (const r of records) this.#apply(r);
    // A record a crash cut short was never durable (its images were never sent): drop it, so the
    // next append starts on a fresh line.
    if (end < bytes.length) Deno.truncateSync(path, end);
    this.#journal = LedgerJournal.open(path);
    return records.length;
  }

  /** Close the attached journal (if any); later charges are kept in memory only. */
  detachJournal(): void {
    this.#journal?.close();
    this.#journal = null;
  }

  /** The counts a journal file holds, as a snapshot (budgets unlimited). Throws on a corrupt file. */
  static replay(path: string): LedgerSnapshot {
    const l = new Ledger();
    for (const r of readJournal(path)) l.#apply(r);
    return l.snapshot();
  }

  #apply(r: JournalRecord) {
    if (r.t === "r") this.#applyReserve(r);
    else if (r.t === "s") this.#applySettle(r);
    else this.#applyRelease(r);
  }

  #applyReserve(r: ReserveRecord) {
    const kinds = r.kinds as QueryKind[];
    const cost = kinds.length;
    const p = this.#phase(r.phase);
    let accepted = 0, refusedImages = 0;
    const perSample = new Map<number, number>();
    for (const [id, k] of r.ok) {
      const e = this.#sample(id);
      for (const kind of kinds) e.images[kind] += k;
      e.spent += k * cost;
      e.calls += 1;
      accepted += k;
      perSample.set(id, k);
    }
    for (const [id, k] of r.no) {
      this.#sample(id).refused += k;
      refusedImages += k;
    }
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
      this.#open.set(r.id, { phase: r.phase, kinds, open: accepted, perSample });
    }
  }

  #applySettle(r: SettleRecord) {
    const t = this.#open.get(r.id);
    if (!t) return;
    t.open -= Math.min(t.open, r.n);
    if (t.open === 0) this.#open.delete(r.id);
  }

  #applyRelease(r: ReleaseRecord) {
    const t = this.#open.get(r.id);
    if (!t) return;
    const cost = t.kinds.length;
    const p = this.#phase(t.phase);
    let m = 0;
    for (const [id, k0] of r.counts) {
      const held = t.perSample.get(id) ?? 0;
      const k = Math.min(k0, held);
      if (k === 0) continue;
      const e = this.#sample(id);
      for (const kind of t.kinds) e.images[kind] -= k;
      e.spent -= k * cost;
      if (held === k) {
        e.calls -= 1;
        t.perSample.delete(id);
      } else t.perSample.set(id, held - k);
      m += k;
    }
    m = Math.min(m, t.open);
    for (const kind of t.kinds) {
      p.images[kind] -= m;
      this.#totalsImages[kind] -= m;
    }
    this.#spent -= m * cost;
    t.open -= m;
    if (t.perSample.size === 0) {
      for (const kind of t.kinds) {
        p.calls[kind] -= 1;
        this.#totalsCalls[kind] -= 1;
      }
    }
    if (t.open === 0) this.#open.delete(r.id);
  }

  /** Add another ledger's counts (e.g. a resumed chunk) into this one. Budgets are not changed. */
  merge(s: LedgerSnapshot): void {
    this.#carriedUnsettled += s.totals.reservedUnsettled ?? 0;
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
    const unsettled = this.reservedUnsettled;
    return {
      totals: {
        calls: { ...this.#totalsCalls },
        images: { ...this.#totalsImages },
        refused: this.#totalRefused,
        spent: this.#spent,
        ...(unsettled > 0 ? { reservedUnsettled: unsettled } : {}),
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
