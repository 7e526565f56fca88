/**
 * The summary rows of the report's index: for each row spec of a notebook (see `catalog.ts`), the
 * matching run records grouped by label and dataset, their metric as mean ± spread over seeds,
 * wall time and teacher queries summed, the paper number, and a verdict computed from the numbers.
 *
 * Verdict rule (also printed on the index page): the tolerance is
 * `max(2 × measured spread, paper ± spread, 1 point)`; within it the row **matches**; otherwise
 * it is **below** or **above** the paper, and at `smoke`/`laptop` scale the verdict says the
 * settings were reduced, so the gap is expected rather than a failed reproduction.
 *
 * @module
 */
import type { RunRecord } from "../results/record.ts";
import { formatSeeds, summarizeSeeds } from "../results/seeds.ts";
import type { PaperRef, RowSpec } from "./catalog.ts";
import type { LocatedRecord } from "./records.ts";

/** Mean and spread of one row, in percent. */
export interface Measured {
  /** Mean over the row's records. */
  mean: number;
  /** Sample standard deviation (n − 1) over seeds; `undefined` for a single value. */
  spread?: number;
  /** Number of values. */
  n: number;
}

/** How a measured row compares with its paper number. */
export interface Verdict {
  /** `match`, `below`, `above`, or `none` (no paper number). */
  kind: "match" | "below" | "above" | "none";
  /** The verdict as the table shows it. */
  text: string;
}

/** One row of the summary table. */
export interface SummaryRow {
  /** Row label. */
  label: string;
  /** Dataset of its records. */
  dataset: string;
  /** Metric key the numbers come from. */
  metric: string;
  /** Measured numbers (percent). */
  measured: Measured;
  /** Seeds of its records, ascending. */
  seeds: number[];
  /** Scale of its records. */
  scale: string;
  /** Wall time summed over its records, seconds. */
  wallTimeSec: number;
  /** Teacher queries summed over its records (ledger totals), a ledger shared by several records counted once. */
  queries?: number;
  /** The paper number, if any. */
  paper?: PaperRef;
  /** The verdict. */
  verdict: Verdict;
  /** True for ablation rows. */
  ablation: boolean;
  /** Heading text prefix of the notebook section (resolved to an anchor by the page). */
  section: string;
  /** The records it came from. */
  records: LocatedRecord[];
}

/** Mean and sample standard deviation over seeds (the kit's one seed summary, `summarizeSeeds`). */
export function meanSpread(values: number[]): Measured {
  const s = summarizeSeeds(values);
  return s.std === undefined ? { mean: s.mean, n: s.n } : { mean: s.mean, spread: s.std, n: s.n };
}

/**
 * Teacher queries a record's own method paid: `metrics.queries` / `metrics.paid`, else
 * `metrics.queriesPerSample` × the samples it labelled (DB3: the records of one table share a
 * cumulative ledger, so its total would count the other methods too), else the ledger's
 * `totals.spent` (summed over nested ledgers, e.g. generation + labeling).
 */
export function recordQueries(r: RunRecord): number | undefined {
  const m = r.metrics;
  const direct = m.queries ?? m.paid;
  if (typeof direct === "number") return direct;
  const samples = m.trainedOn ?? (typeof r.config.samples === "number" ? r.config.samples : undefined);
  if (typeof m.queriesPerSample === "number" && typeof samples === "number") {
    return Math.round(m.queriesPerSample * samples);
  }
  const spent = (l: unknown): number | undefined => {
    const t = (l as { totals?: { spent?: unknown } } | null)?.totals?.spent;
    return typeof t === "number" ? t : undefined;
  };
  const top = spent(r.ledger);
  if (top !== undefined) return top;
  if (r.ledger && typeof r.ledger === "object") {
    const parts = Object.values(r.ledger as Record<string, unknown>).map(spent).filter((x) =>
      x !== undefined
    );
    if (parts.length) return parts.reduce((a, b) => a + b, 0);
  }
  return undefined;
}

/** Tolerance of the verdict rule, in points. */
export function verdictTolerance(m: Measured, paper: PaperRef): number {
  return Math.max(2 * (m.spread ?? 0), paper.value.std ?? 0, 1);
}

/** The verdict for measured numbers against a paper number at a scale (rule in the module doc). */
export function verdict(m: Measured, paper: PaperRef | undefined, scale: string, ablation = false): Verdict {
  if (!paper) return { kind: "none", text: ablation ? "ablation: no paper number" : "no paper number" };
  const gap = m.mean - paper.value.mean;
  const tol = verdictTolerance(m, paper);
  const caveat = paper.unverified ? "; paper number unverified" : "";
  if (Math.abs(gap) <= tol) {
    return { kind: "match", text: `matches: |Δ| ${Math.abs(gap).toFixed(1)} ≤ ${tol.toFixed(1)}${caveat}` };
  }
  const kind = gap < 0 ? "below" : "above";
  const reduced = scale === "paper" ? "" : `; expected at ${scale} scale (reduced settings)`;
  return { kind, text: `${kind} by ${Math.abs(gap).toFixed(1)} points${reduced}${caveat}` };
}

/** Build the rows of one spec from a notebook's records, in order of first appearance. */
export function summaryRows(spec: RowSpec, records: LocatedRecord[]): SummaryRow[] {
  const groups = new Map<string, LocatedRecord[]>();
  for (const lr of records) {
    const r = lr.record;
    if (r.experiment !== spec.experiment || (spec.match && !spec.match(r))) continue;
    if (typeof r.metrics[spec.metric] !== "number" || !Number.isFinite(r.metrics[spec.metric])) continue;
    const key = `${spec.label(r)}\u0000${r.dataset}`;
    groups.set(key, [...(groups.get(key) ?? []), lr]);
  }
  const rows: SummaryRow[] = [];
  for (const group of groups.values()) {
    const first = group[0].record;
    const measured = meanSpread(group.map((g) => 100 * g.record.metrics[spec.metric]));
    // Student seeds trained over one labeling (records naming the same `config.labelSeed` and carrying
    // the same ledger) paid for it once; any other record paid its own queries.
    const seen = new Set<string>();
    const q = group.flatMap((g) => {
      const labelSeed = g.record.config?.labelSeed;
      const key = labelSeed !== undefined && g.record.ledger
        ? `label seed ${labelSeed} ${JSON.stringify(g.record.ledger)}`
        : g.record.id;
      if (seen.has(key)) return [];
      seen.add(key);
      return [recordQueries(g.record)];
    });
    const paper = spec.paper?.(first);
    const scale = first.scale;
    rows.push({
      label: spec.label(first),
      dataset: first.dataset,
      metric: spec.metric,
      measured,
      seeds: [...new Set(group.map((g) => g.record.seed))].sort((a, b) => a - b),
      scale,
      wallTimeSec: group.reduce((a, g) => a + g.record.wallTimeSec, 0),
      queries: q.every((x) => x !== undefined) ? q.reduce((a, b) => a! + b!, 0) : undefined,
      paper,
      verdict: verdict(measured, paper, scale, spec.ablation),
      ablation: spec.ablation ?? false,
      section: spec.section,
      records: group,
    });
  }
  return rows;
}

/** `97.0 ± 0.5` (no ± for a single value; the seed count has its own column). */
export function formatMeasured(m: Measured, digits = 1): string {
  return formatSeeds({ mean: m.mean, std: m.spread, n: m.n }, { digits, bare: true }).replace(" std", "");
}

/** Wall time as `42 s`, `12.5 min` or `1.2 h`. */
export function formatDuration(sec: number): string {
  if (sec < 120) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  if (sec < 7200) return `${(sec / 60).toFixed(1)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

/** Integer with thousands separators (`6,863,028`). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
