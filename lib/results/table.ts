/**
 * Tables for notebooks: danfojs DataFrames that render as HTML tables in Jupyter, the standard
 * "paper vs measured" table, and Markdown for terminals and READMEs.
 *
 * @module
 */
import { DataFrame } from "danfojs";
import { DISPLAY, escapeHtml, type MediaBundle } from "../show/display.ts";
import { formatPaperValue, type PaperValue } from "./paper.ts";
import { formatSeeds } from "./seeds.ts";

/** A row of a table: column → value. */
export type TableRow = Record<string, unknown>;

/** Options for {@link table}, {@link withDisplay} and {@link toMarkdown}. */
export interface TableOptions {
  /** Columns and their order (default: union of the rows' keys, first-seen order). */
  columns?: string[];
  /** Decimals for non-integer numbers: one for all, or per column (default 3). */
  digits?: number | Record<string, number>;
  /** Caption shown above the table. */
  title?: string;
  /** Show at most this many rows in the rendered HTML/text (default 200); the frame keeps all. */
  maxRows?: number;
}

/** A danfojs DataFrame that renders itself in Jupyter (HTML table + text). */
export type DisplayFrame = DataFrame & { [DISPLAY](): MediaBundle };

/** Union of keys over rows, first-seen order. */
export function columnsOf(rows: TableRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function cellValue(v: unknown): string | number | boolean | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}

function digitsFor(opts: TableOptions, col: string): number {
  const d = opts.digits;
  if (typeof d === "number") return d;
  return d?.[col] ?? 3;
}

/** Format one cell for display: integers as is, other numbers with the column's decimals. */
export function formatCell(v: unknown, digits = 3): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "";
    return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  }
  return String(cellValue(v));
}

function grid(columns: string[], values: unknown[][], opts: TableOptions): string[][] {
  return values.map((r) => columns.map((c, j) => formatCell(r[j], digitsFor(opts, c))));
}

function isNumericColumn(values: unknown[][], j: number): boolean {
  let any = false;
  for (const r of values) {
    const v = r[j];
    if (v === null || v === undefined) continue;
    if (typeof v !== "number") return false;
    any = true;
  }
  return any;
}

/** HTML `<table>` of columns and row values. */
export function renderHtml(columns: string[], values: unknown[][], opts: TableOptions = {}): string {
  const max = opts.maxRows ?? 200;
  const shown = values.slice(0, max);
  const cells = grid(columns, shown, opts);
  const right = columns.map((_, j) => isNumericColumn(shown, j));
  const head = columns.map((c, j) =>
    `<th style="text-align:${right[j] ? "right" : "left"}">${escapeHtml(c)}</th>`
  )
    .join("");
  const body = cells.map((r) =>
    "<tr>" + r.map((s, j) =>
      `<td style="text-align:${right[j] ? "right" : "left"}">${escapeHtml(s)}</td>`
    ).join("") +
    "</tr>"
  ).join("\n");
  const more = values.length > max
    ? `<tr><td colspan="${columns.length}">… ${values.length - max} more rows</td></tr>`
    : "";
  const caption = opts.title
    ? `<caption style="text-align:left"><b>${escapeHtml(opts.title)}</b></caption>`
    : "";
  return `<table class="bkd-table">${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}${more}</tbody></table>`;
}

/** Plain-text table (aligned columns) of columns and row values. */
export function renderText(columns: string[], values: unknown[][], opts: TableOptions = {}): string {
  const max = opts.maxRows ?? 200;
  const shown = values.slice(0, max);
  const cells = grid(columns, shown, opts);
  const right = columns.map((_, j) => isNumericColumn(shown, j));
  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (right[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const lines = [
    columns.map(pad).join("  "),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.map((r) => r.map(pad).join("  ")),
  ];
  if (values.length > max) lines.push(`… ${values.length - max} more rows`);
  if (opts.title) lines.unshift(opts.title);
  return lines.map((l) => l.trimEnd()).join("\n");
}

/** Attach the Jupyter display method to any danfojs DataFrame (e.g. the result of a groupby). */
export function withDisplay(df: DataFrame, opts: TableOptions = {}): DisplayFrame {
  const frame = df as DisplayFrame;
  Object.defineProperty(frame, DISPLAY, {
    value: () => {
      const columns = frame.columns as string[];
      const values = frame.values as unknown[][];
      return {
        "text/html": renderHtml(columns, values, opts),
        "text/plain": renderText(columns, values, opts),
      };
    },
    enumerable: false,
    configurable: true,
  });
  return frame;
}

/**
 * Build a DataFrame from rows (missing cells become null, objects become JSON text) that renders
 * as an HTML table in Jupyter. Rows are given directly because danfojs' `readCSV` needs
 * XMLHttpRequest; parse files with papaparse first (`loadRunsCsv`).
 */
export function table(rows: TableRow[], opts: TableOptions = {}): DisplayFrame {
  const columns = opts.columns ?? columnsOf(rows);
  const values = rows.map((r) => columns.map((c) => cellValue(r[c])));
  const df = values.length === 0 ? new DataFrame([], { columns }) : new DataFrame(values, { columns });
  return withDisplay(df, opts);
}

/** Markdown table of rows (for terminals, logs and READMEs). */
export function toMarkdown(rows: TableRow[], opts: TableOptions = {}): string {
  const columns = opts.columns ?? columnsOf(rows);
  const values = rows.map((r) => columns.map((c) => r[c]));
  const cells = grid(columns, values, opts);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const right = columns.map((_, j) => isNumericColumn(values, j));
  const lines = [
    `| ${columns.map(esc).join(" | ")} |`,
    `| ${columns.map((_, j) => (right[j] ? "---:" : "---")).join(" | ")} |`,
    ...cells.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ];
  if (opts.title) lines.unshift(`**${esc(opts.title)}**`, "");
  return lines.join("\n");
}

/** A measured number: a mean in percent, with the spread over seeds when there were several. */
export interface Measured {
  /** Mean accuracy in percent. */
  mean: number;
  /** Standard deviation in percent over `n` runs. */
  std?: number;
  /** Number of runs (seeds). */
  n?: number;
}

/** One input row of {@link paperVsMeasured}. */
export interface PaperVsMeasuredRow {
  /** Method as shown. */
  method: string;
  /** Dataset. */
  dataset: string;
  /** Teacher → student, e.g. `"LeNet-5 → LeNet-5-half"`. */
  pair?: string;
  /** The paper's number (percent); omitted when the paper has none. */
  paper?: PaperValue | number;
  /** The kit's measured number (percent); omitted when not run yet. */
  measured?: Measured | number;
  /** Scale of the measurement (`smoke`, `laptop`, `paper`). */
  scale: string;
  /** Mark the paper number as unverified (table B). */
  unverified?: boolean;
  /** Free remark, e.g. the settings that differ from the paper's. */
  note?: string;
}

function asPaper(p: PaperValue | number | undefined): PaperValue | undefined {
  return typeof p === "number" ? { mean: p } : p;
}

function asMeasured(m: Measured | number | undefined): Measured | undefined {
  return typeof m === "number" ? { mean: m } : m;
}

/**
 * Format a measured value through {@link formatSeeds}: `97.31 ± 0.40 std (3 seeds)`, or
 * `93.45 (1 seed)` with no ± when there was one seed.
 */
export function formatMeasured(m: Measured | undefined, digits = 2): string {
  if (!m || !Number.isFinite(m.mean)) return "";
  return formatSeeds(m, { digits });
}

/**
 * The standard side-by-side table: method, dataset, teacher → student, paper, measured,
 * Δ (measured − paper, points), scale, note. Paper numbers marked unverified say so in the paper
 * column. All accuracies in percent.
 */
export function paperVsMeasured(rows: PaperVsMeasuredRow[], opts: { digits?: number; title?: string } = {}) {
  const digits = opts.digits ?? 2;
  const out = rows.map((r) => {
    const p = asPaper(r.paper);
    const m = asMeasured(r.measured);
    const delta = p && m && Number.isFinite(m.mean)
      ? Math.round((m.mean - p.mean) * 10 ** digits) / 10 ** digits
      : null;
    return {
      method: r.method,
      dataset: r.dataset,
      "teacher → student": r.pair ?? "",
      paper: p ? formatPaperValue(p) + (r.unverified ? " (unverified)" : "") : "",
      measured: formatMeasured(m, digits),
      "Δ": delta,
      scale: r.scale,
      note: r.note ?? "",
    };
  });
  return table(out, {
    columns: ["method", "dataset", "teacher → student", "paper", "measured", "Δ", "scale", "note"],
    digits,
    title: opts.title,
  });
}
