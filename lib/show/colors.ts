/**
 * One colour map for every figure: a categorical palette for series, and fixed colours for the
 * "paper" and "measured" sources so a reader sees the same colour for the same source in every
 * notebook, whatever order the rows come in.
 *
 * @module
 */

/** Categorical palette (Observable 10) used for series without a fixed colour. */
export const SERIES_COLORS: readonly string[] = [
  "#4269d0",
  "#efb118",
  "#ff725c",
  "#6cc5b0",
  "#3ca951",
  "#ff8ab7",
  "#a463f2",
  "#97bbf5",
  "#9c6b4e",
  "#9498a0",
];

/** Colour of a paper's number in every chart (grey: the reference). */
export const PAPER_COLOR = "#9498a0";
/** Colour of a number this kit measured in every chart. */
export const MEASURED_COLOR = "#4269d0";
/** Colour of reference lines such as chance level. */
export const REFERENCE_COLOR = "#888888";

/**
 * The fixed colour of a series name, if it has one: names starting with "paper" are the paper's,
 * names starting with "measured" are this kit's (e.g. `"measured (laptop)"`).
 */
export function fixedColor(name: unknown): string | undefined {
  const s = String(name).trim().toLowerCase();
  if (s.startsWith("paper")) return PAPER_COLOR;
  if (s.startsWith("measured")) return MEASURED_COLOR;
  return undefined;
}

/**
 * Colours for a categorical domain: fixed colours for paper/measured series, the palette in order
 * for the rest (skipping colours already taken by a fixed series).
 */
export function colorRange(domain: readonly unknown[]): string[] {
  const fixed = domain.map(fixedColor);
  const taken = new Set(fixed.filter((c): c is string => c !== undefined));
  const free = SERIES_COLORS.filter((c) => !taken.has(c));
  let k = 0;
  return fixed.map((c) => c ?? free[k++ % free.length]);
}
