/**
 * CSV through papaparse, typed for the kit: parse with a header row, unparse with a fixed column
 * list (missing cells empty).
 *
 * @module
 */
import Papa from "papaparse";

/** A parsed CSV row: column → cell (numbers and booleans typed when `dynamicTyping`). */
export type CsvRow = Record<string, string | number | boolean | null>;

interface PapaLike {
  parse(text: string, cfg: Record<string, unknown>): { data: CsvRow[]; meta: { fields?: string[] } };
  unparse(input: { fields: string[]; data: unknown[][] }, cfg?: Record<string, unknown>): string;
}

const papa = Papa as unknown as PapaLike;

/** Parse CSV text with a header row. `typed` (default true) turns numbers/booleans into values. */
export function parseCsv(
  text: string,
  opts: { typed?: boolean } = {},
): { columns: string[]; rows: CsvRow[] } {
  const res = papa.parse(text, { header: true, skipEmptyLines: true, dynamicTyping: opts.typed ?? true });
  return { columns: res.meta.fields ?? [], rows: res.data };
}

/** Turn rows into CSV text with exactly `columns` (in that order); missing cells are empty. */
export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const data = rows.map((r) =>
    columns.map((c) => {
      const v = r[c];
      return v === undefined || v === null ? "" : v;
    })
  );
  return papa.unparse({ fields: columns, data }, { newline: "\n" }) + "\n";
}

/** Union of column lists, keeping first-seen order. */
export function unionColumns(...lists: string[][]): string[] {
  const seen = new Set<string>();
  for (const l of lists) for (const c of l) seen.add(c);
  return [...seen];
}
