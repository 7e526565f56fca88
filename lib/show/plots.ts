/**
 * Plots for notebooks: Observable Plot rendered on a linkedom document into {@link Figure}s.
 *
 * Every figure has a standalone SVG (root `xmlns`, title and legend drawn in SVG). Plots whose legend
 * Observable Plot renders as HTML swatches also carry that HTML `<figure>`, which Jupyter prefers.
 * Plot's canvas-based pieces (raster mark, ramp legends) do not work without a canvas, so continuous
 * colour legends and decision fields are drawn here in plain SVG.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { escapeHtml } from "./display.ts";
import { colorRange, REFERENCE_COLOR, SERIES_COLORS } from "./colors.ts";
import { type Figure, makeFigure, saveFigure, svgSize } from "./figure.ts";

export { type Figure, saveFigure };

/** A data row for the chart helpers. */
export type Row = Record<string, unknown>;

/** Options shared by all charts. */
export interface ChartOptions {
  /** Title drawn above the plot. */
  title?: string;
  /** Pixel width (default 640). */
  width?: number;
  /** Pixel height of the plot area including axes (default 360). */
  height?: number;
  /** Axis labels. */
  xLabel?: string;
  /** Axis labels. */
  yLabel?: string;
  /**
   * Draw a dashed "chance" line at this y value (e.g. `100 / K` percent for K classes), so a reader
   * sees how far above guessing a number is.
   */
  chance?: number;
}

/** The dashed chance line and its label, when `chance` is set. */
function chanceMarks(opts: ChartOptions): Plot.Markish[] {
  if (opts.chance === undefined || !Number.isFinite(opts.chance)) return [];
  const c = opts.chance;
  return [
    Plot.ruleY([c], { stroke: REFERENCE_COLOR, strokeDasharray: "6,4", ariaLabel: "chance" }),
    Plot.text([c], {
      y: (d: number) => d,
      frameAnchor: "left",
      text: () => `chance ${fmtNum(c, 1)}`,
      dy: -6,
      dx: 4,
      fill: "#555",
      ariaLabel: "chance label",
    }),
  ];
}

/** A legend drawn in SVG by {@link composeSvg}. */
export type LegendSpec =
  | { kind: "swatch"; items: { label: string; color: string }[] }
  | { kind: "ramp"; label?: string; domain: [number, number]; colors: string[]; digits?: number };

/** The bits of a (linkedom) DOM element used here; Deno's type library has no DOM. */
interface DomElement {
  tagName: string;
  outerHTML: string;
  children: ArrayLike<DomElement>;
}

type PlotElement = DomElement & { scale(name: string): Record<string, unknown> | undefined };
type PlotDocument = Plot.PlotOptions["document"];

let doc: PlotDocument | undefined;
function plotDocument(): PlotDocument {
  doc ??= (parseHTML("<!DOCTYPE html><html><head></head><body></body></html>") as unknown as {
    document: PlotDocument;
  }).document;
  return doc;
}

/** Run `Plot.plot` on the linkedom document and turn the result into a {@link Figure}. */
export function renderPlot(options: Plot.PlotOptions, opts: { title?: string } = {}): Figure {
  const el = Plot.plot({ ...options, document: plotDocument() }) as unknown as PlotElement;
  const tag = el.tagName.toLowerCase();
  if (tag === "svg") {
    const main = el.outerHTML;
    if (!opts.title) return makeFigure(main, { title: opts.title });
    return makeFigure(composeSvg(main, { title: opts.title }), { title: opts.title });
  }
  // A <figure>: HTML swatch legend (and maybe title) around the plot's SVG.
  const svgs = Array.from(el.children).filter((c) => c.tagName.toLowerCase() === "svg");
  const main = svgs[svgs.length - 1]?.outerHTML ?? "";
  const legend = legendFromScale(el.scale("color"));
  const svg = composeSvg(main, { title: opts.title, legend });
  const titleHtml = opts.title
    ? `<div style="font:bold 14px system-ui,sans-serif;margin:0 0 4px 0">${escapeHtml(opts.title)}</div>`
    : "";
  return makeFigure(svg, { html: `<div>${titleHtml}${el.outerHTML}</div>`, title: opts.title });
}

function legendFromScale(scale: Record<string, unknown> | undefined): LegendSpec | undefined {
  if (!scale) return undefined;
  const domain = (scale.domain ?? []) as unknown[];
  const apply = scale.apply as ((v: unknown) => string) | undefined;
  if (!apply) return undefined;
  if (scale.type === "ordinal" || scale.type === "categorical") {
    return { kind: "swatch", items: domain.map((d) => ({ label: String(d), color: apply(d) })) };
  }
  const [lo, hi] = [Number(domain[0]), Number(domain[domain.length - 1])];
  return { kind: "ramp", domain: [lo, hi], colors: rampStops(apply, lo, hi) };
}

function rampStops(apply: (v: number) => string, lo: number, hi: number, n = 11): string[] {
  return Array.from({ length: n }, (_, i) => apply(lo + ((hi - lo) * i) / (n - 1)));
}

function fmtNum(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return "";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

let gradientCounter = 0;

/** SVG markup of a legend at (0,0) and its height; swatches wrap to fit `width`. */
export function legendSvg(legend: LegendSpec, width: number): { markup: string; height: number } {
  if (legend.kind === "swatch") {
    let x = 0;
    let y = 0;
    let out = "";
    for (const it of legend.items) {
      const w = 15 + 6 + it.label.length * 6.5 + 14;
      if (x > 0 && x + w > width) {
        x = 0;
        y += 20;
      }
      out += `<rect x="${x}" y="${y + 2}" width="15" height="15" fill="${escapeHtml(it.color)}"/>` +
        `<text x="${x + 21}" y="${y + 13}">${escapeHtml(it.label)}</text>`;
      x += w;
    }
    return { markup: out, height: y + 22 };
  }
  const id = `bkd-ramp-${gradientCounter++}`;
  const end = (v: number) => (legend.digits === undefined ? fmtNum(v) : v.toFixed(legend.digits));
  const stops = legend.colors.map((c, i) =>
    `<stop offset="${((100 * i) / Math.max(1, legend.colors.length - 1)).toFixed(1)}%" stop-color="${c}"/>`
  ).join("");
  const w = Math.min(240, width);
  const label = legend.label
    ? `<text x="0" y="10" font-weight="bold">${escapeHtml(legend.label)}</text>`
    : "";
  const y0 = legend.label ? 14 : 0;
  return {
    markup: `<defs><linearGradient id="${id}">${stops}</linearGradient></defs>${label}` +
      `<rect x="0" y="${y0}" width="${w}" height="10" fill="url(#${id})"/>` +
      `<text x="0" y="${y0 + 22}">${end(legend.domain[0])}</text>` +
      `<text x="${w}" y="${y0 + 22}" text-anchor="end">${end(legend.domain[1])}</text>`,
    height: y0 + 28,
  };
}

/**
 * Stack a title and a legend above an SVG plot, returning one standalone SVG (the plot is nested as
 * an inner `<svg>` so its own viewBox and styles stay intact).
 */
export function composeSvg(mainSvg: string, opts: { title?: string; legend?: LegendSpec } = {}): string {
  const { width, height } = svgSize(mainSvg);
  let y = 0;
  let head = "";
  if (opts.title) {
    head += `<text x="0" y="16" font-size="14" font-weight="bold">${escapeHtml(opts.title)}</text>`;
    y += 24;
  }
  if (opts.legend) {
    const l = legendSvg(opts.legend, width);
    head += `<g transform="translate(0,${y})">${l.markup}</g>`;
    y += l.height + 4;
  }
  const inner = mainSvg.replace(/<svg\b/, `<svg x="0" y="${y}"`);
  const h = y + height;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" ` +
    `font-family="system-ui, sans-serif" font-size="10" fill="currentColor">` +
    `<rect width="100%" height="100%" fill="white"/>${head}${inner}</svg>`;
}

function base(opts: ChartOptions): Plot.PlotOptions {
  return {
    width: opts.width ?? 640,
    height: opts.height ?? 360,
    style: { background: "white" },
  };
}

/** Options for {@link lineChart}. */
export interface LineChartOptions extends ChartOptions {
  /** Field of the x value (default `"x"`, e.g. `"epoch"` or `"queries"`). */
  x?: string;
  /** Field of the y value (default `"y"`, e.g. `"acc"`). */
  y?: string;
  /** Field naming the series (default `"series"`); one line and colour per series. */
  series?: string;
  /** Draw dots at the data points (default true when there are ≤ 60 points). */
  dots?: boolean;
  /** Fixed y range, e.g. `[0, 1]`. */
  yDomain?: [number, number];
  /** Log-scale x (e.g. queries). */
  logX?: boolean;
  /** Horizontal reference lines, e.g. a paper number: `{y: 0.984, label: "paper"}`. */
  refs?: { y: number; label?: string }[];
}

/**
 * Curves such as accuracy vs epoch or vs queries. `data` is rows (`{epoch, acc, method}` with the
 * field names in options) or a map `series name → [{x, y}]`.
 */
export function lineChart(
  data: Row[] | Record<string, { x: number; y: number }[]>,
  opts: LineChartOptions = {},
) {
  let rows: Row[];
  let x = opts.x ?? "x";
  let y = opts.y ?? "y";
  let series: string | undefined = opts.series ?? "series";
  if (!Array.isArray(data)) {
    rows = Object.entries(data).flatMap(([name, pts]) => pts.map((p) => ({ x: p.x, y: p.y, series: name })));
    x = "x";
    y = "y";
    series = "series";
  } else rows = data;
  if (!rows.some((r) => series! in r)) series = undefined;
  const dots = opts.dots ?? rows.length <= 60;
  const marks: Plot.Markish[] = [];
  for (const ref of opts.refs ?? []) {
    marks.push(Plot.ruleY([ref.y], { stroke: "#888", strokeDasharray: "4,3" }));
    if (ref.label) {
      marks.push(
        Plot.text([ref], { y: "y", frameAnchor: "right", text: () => ref.label, dy: -6, fill: "#666" }),
      );
    }
  }
  marks.push(...chanceMarks(opts));
  marks.push(
    Plot.line(rows, { x, y, stroke: series ?? SERIES_COLORS[0], marker: dots ? "circle" : undefined }),
  );
  const domain = series ? firstSeen(rows, series) : [];
  return renderPlot({
    ...base(opts),
    grid: true,
    x: { label: opts.xLabel ?? x, type: opts.logX ? "log" : undefined },
    y: { label: opts.yLabel ?? y, domain: opts.yDomain },
    color: series ? { legend: true, range: colorRange(domain), domain } : undefined,
    marks,
  }, { title: opts.title });
}

/** Options for {@link barChart} and {@link groupedBarsWithErrors}. */
export interface BarChartOptions extends ChartOptions {
  /** Field with the category on the x axis (default `"method"`). */
  x?: string;
  /** Field with the bar height (default `"value"`). */
  y?: string;
  /** Field splitting each category into side-by-side bars, e.g. `"source"` = paper/measured. */
  group?: string;
  /** Fixed y range. */
  yDomain?: [number, number];
  /** Print the value above each bar with this many decimals (default 1; `false` for none). */
  labels?: number | false;
}

function firstSeen(rows: Row[], field: string): unknown[] {
  return [...new Set(rows.map((r) => r[field]))];
}

/** Approximate width in pixels of `text` at `fontSize` (system-ui averages ≈ 0.6 em per character). */
export function textWidth(text: string, fontSize = 10): number {
  return [...text].length * fontSize * 0.6;
}

/** How the category labels under a bar chart are drawn so that neighbours never overlap. */
export interface TickLayout {
  /** Rotation of the tick labels in degrees (0 = horizontal, negative = rising to the right). */
  rotate: number;
  /** Bottom margin that fits the (rotated) labels and the axis label. */
  marginBottom: number;
  /** Labels as drawn (long ones shortened with an ellipsis). */
  labels: string[];
  /** Horizontal pixels per category. */
  band: number;
}

const TICK_FONT = 10;
const TICK_LINE = 12; // pixels between the baselines of two rotated labels that just touch
const MAX_TICK_CHARS = 30;

/** Shorten a tick label to at most {@link MAX_TICK_CHARS} characters. */
function shortLabel(s: string): string {
  const chars = [...s];
  return chars.length <= MAX_TICK_CHARS ? s : chars.slice(0, MAX_TICK_CHARS - 1).join("") + "…";
}

/**
 * Choose the rotation of category tick labels for `n` categories across `plotWidth` pixels: horizontal
 * when the widest label fits its band, otherwise the smallest of 30°, 60°, 90° at which rotated
 * neighbours are at least one text line apart (band × sin θ ≥ line height).
 */
export function tickLayout(labels: readonly string[], plotWidth: number): TickLayout {
  const shown = labels.map(shortLabel);
  const band = plotWidth / Math.max(1, shown.length);
  const widest = Math.max(0, ...shown.map((l) => textWidth(l, TICK_FONT)));
  if (widest <= band * 0.9) return { rotate: 0, marginBottom: 40, labels: shown, band };
  const angle = [30, 60, 90].find((a) => band * Math.sin((a * Math.PI) / 180) >= TICK_LINE) ?? 90;
  const drop = widest * Math.sin((angle * Math.PI) / 180) + TICK_FONT;
  return { rotate: -angle, marginBottom: Math.ceil(drop + 30), labels: shown, band };
}

const MARGIN_LEFT = 40;
const MARGIN_RIGHT = 20;

function barMarks(rows: Row[], opts: BarChartOptions, err?: string): Plot.PlotOptions {
  const x = opts.x ?? "method";
  const y = opts.y ?? "value";
  const g = opts.group;
  const digits = opts.labels === false ? undefined : opts.labels ?? 1;
  const grouped = g !== undefined;
  const pos = grouped ? { fx: x, x: g } : { x };
  const fill = grouped ? g : SERIES_COLORS[0];
  const marks: Plot.Markish[] = [
    Plot.barY(rows, { ...pos, y, fill }),
    Plot.ruleY([0]),
    ...chanceMarks(opts),
  ];
  if (err) {
    const lo = (d: Row) => Number(d[y]) - (Number(d[err]) || 0);
    const hi = (d: Row) => Number(d[y]) + (Number(d[err]) || 0);
    // No whisker where there is no spread (one seed): a zero-length whisker would read as "± 0".
    const withErr = rows.filter((d) =>
      d[err] !== null && d[err] !== undefined && Number.isFinite(Number(d[err]))
    );
    marks.push(Plot.ruleX(withErr, { ...pos, y1: lo, y2: hi, stroke: "#333" }));
    marks.push(Plot.tickY(withErr, { ...pos, y: lo, stroke: "#333" }));
    marks.push(Plot.tickY(withErr, { ...pos, y: hi, stroke: "#333" }));
  }
  if (digits !== undefined) {
    const top = (d: Row) => Number(d[y]) + (err ? Number(d[err]) || 0 : 0);
    marks.push(
      Plot.text(rows, {
        ...pos,
        y: top,
        text: (d: Row) => fmtNum(Number(d[y]), digits),
        dy: -6,
        fontSize: 9,
      }),
    );
  }
  // Keep the input order of categories and groups (Plot sorts them otherwise).
  const cats = firstSeen(rows, x);
  const groups = grouped ? firstSeen(rows, g) : [];
  const width = opts.width ?? 640;
  const layout = tickLayout(cats.map(String), width - MARGIN_LEFT - MARGIN_RIGHT);
  const short = new Map(cats.map((c, i) => [String(c), layout.labels[i]]));
  const axis = {
    label: opts.xLabel ?? x,
    tickRotate: layout.rotate,
    tickFormat: (c: unknown) => short.get(String(c)) ?? String(c),
  };
  return {
    ...base(opts),
    marginLeft: MARGIN_LEFT,
    marginRight: MARGIN_RIGHT,
    marginBottom: layout.marginBottom,
    height: (opts.height ?? 360) + Math.max(0, layout.marginBottom - 40),
    fx: grouped ? { ...axis, padding: 0.15, domain: cats, axis: "bottom" } : undefined,
    x: grouped ? { axis: null, padding: 0.05, domain: groups } : { ...axis, padding: 0.2, domain: cats },
    y: { label: opts.yLabel ?? y, grid: true, domain: opts.yDomain },
    color: grouped ? { legend: true, range: colorRange(groups), domain: groups } : undefined,
    marks,
  };
}

/**
 * Bars per category, optionally grouped: e.g. paper vs measured accuracy per method with
 * `{x: "method", y: "acc", group: "source"}`. Rows with a missing value draw no bar.
 */
export function barChart(rows: Row[], opts: BarChartOptions = {}): Figure {
  const y = opts.y ?? "value";
  const kept = rows.filter((r) => r[y] !== null && r[y] !== undefined && Number.isFinite(Number(r[y])));
  return renderPlot(barMarks(kept, opts), { title: opts.title });
}

/** Grouped bars of means with ±`err` whiskers (default field `"std"`), e.g. accuracy over seeds. */
export function groupedBarsWithErrors(rows: Row[], opts: BarChartOptions & { err?: string } = {}): Figure {
  const y = opts.y ?? "value";
  const kept = rows.filter((r) => r[y] !== null && r[y] !== undefined && Number.isFinite(Number(r[y])));
  return renderPlot(barMarks(kept, opts, opts.err ?? "std"), { title: opts.title });
}

/** A labelled matrix for {@link heatmap}; `null`/NaN cells stay empty. */
export interface Matrix {
  /** Row names (y axis), e.g. teachers. */
  rows: string[];
  /** Column names (x axis), e.g. students. */
  cols: string[];
  /** `values[i][j]` for row i, column j. */
  values: (number | null | undefined)[][];
}

/** Options for {@link heatmap}. */
export interface HeatmapOptions extends ChartOptions {
  /** Decimals of the printed values (default 1). */
  digits?: number;
  /** Observable Plot colour scheme (default `"blues"`). */
  scheme?: string;
  /** Colour domain (default: data min..max). */
  domain?: [number, number];
  /** Draw a colour ramp legend (in SVG) with this label. */
  legend?: string;
}

/** A matrix as coloured cells with the values printed in them (e.g. teacher × student accuracy). */
export function heatmap(m: Matrix, opts: HeatmapOptions = {}): Figure {
  const cells: { r: string; c: string; v: number }[] = [];
  m.rows.forEach((r, i) =>
    m.cols.forEach((c, j) => {
      const v = m.values[i]?.[j];
      if (v !== null && v !== undefined && Number.isFinite(v)) cells.push({ r, c, v });
    })
  );
  const vs = cells.map((d) => d.v);
  const domain = opts.domain ?? [Math.min(...vs), Math.max(...vs)];
  const mid = (domain[0] + domain[1]) / 2;
  const options: Plot.PlotOptions = {
    width: opts.width ?? Math.max(320, 90 + 64 * m.cols.length),
    height: opts.height ?? Math.max(200, 70 + 36 * m.rows.length),
    marginLeft: 90,
    marginBottom: 40,
    style: { background: "white" },
    x: { label: opts.xLabel ?? null, domain: m.cols, axis: "bottom" },
    y: { label: opts.yLabel ?? null, domain: m.rows },
    color: { type: "linear", scheme: (opts.scheme ?? "blues") as Plot.ColorScheme, domain },
    marks: [
      Plot.cell(cells, { x: "c", y: "r", fill: "v", inset: 0.5 }),
      Plot.text(cells, {
        x: "c",
        y: "r",
        text: (d: { v: number }) => d.v.toFixed(opts.digits ?? 1),
        fill: (d: { v: number }) => (d.v > mid ? "white" : "black"),
      }),
    ],
  };
  const el = Plot.plot({ ...options, document: plotDocument() }) as unknown as PlotElement;
  const scale = el.scale("color");
  const legend: LegendSpec | undefined = opts.legend && scale
    ? {
      kind: "ramp",
      label: opts.legend,
      domain,
      colors: rampStops(scale.apply as (v: number) => string, domain[0], domain[1]),
      digits: opts.digits ?? 1,
    }
    : undefined;
  const main = el.outerHTML;
  const svg = opts.title || legend ? composeSvg(main, { title: opts.title, legend }) : main;
  return makeFigure(svg, { title: opts.title });
}

/** Options for {@link histogram}. */
export interface HistogramOptions extends ChartOptions {
  /** Number of equal-width bins over the range of all values (default 30). */
  bins?: number;
  /** Field of the value when `data` is rows (default `"value"`). */
  x?: string;
  /**
   * Field splitting the data into overlaid histograms: every group is counted in the same bins and
   * drawn from the same zero baseline, semi-transparent with an outline (never stacked).
   */
  group?: string;
}

/** One bin of one group of {@link histogramBins}. */
export interface HistogramBin {
  /** Group name (`""` without groups). */
  group: string;
  /** Left edge. */
  x1: number;
  /** Right edge. */
  x2: number;
  /** Values in [x1, x2) (the last bin includes its right edge). */
  count: number;
}

/**
 * Count values into `bins` equal-width bins over the range of all values, separately per group, so
 * that every group's counts refer to the same bins. Non-finite values are skipped.
 */
export function histogramBins(
  values: readonly { value: number; group: string }[],
  bins = 30,
): HistogramBin[] {
  const finite = values.filter((v) => Number.isFinite(v.value));
  if (finite.length === 0) return [];
  let lo = Infinity, hi = -Infinity;
  for (const v of finite) [lo, hi] = [Math.min(lo, v.value), Math.max(hi, v.value)];
  const n = Math.max(1, Math.floor(bins));
  const step = hi > lo ? (hi - lo) / n : 1;
  const groups = [...new Set(finite.map((v) => v.group))];
  const counts = new Map(groups.map((g) => [g, new Array<number>(n).fill(0)]));
  for (const v of finite) counts.get(v.group)![Math.min(n - 1, Math.floor((v.value - lo) / step))]++;
  return groups.flatMap((group) =>
    counts.get(group)!.map((count, i) => ({ group, x1: lo + i * step, x2: lo + (i + 1) * step, count }))
  );
}

/**
 * A histogram of numbers (or of a field of rows, optionally per group). Groups are overlaid: each is
 * counted in the same bins and drawn from zero, so a bar's top is that group's count.
 */
export function histogram(data: ArrayLike<number> | Row[], opts: HistogramOptions = {}): Figure {
  const isRows = Array.isArray(data) && data.length > 0 && typeof data[0] === "object";
  const x = opts.x ?? "value";
  const rows: Row[] = isRows ? data as Row[] : Array.from(data as ArrayLike<number>, (v) => ({ [x]: v }));
  const g = isRows ? opts.group : undefined;
  const binned = histogramBins(
    rows.map((r) => ({ value: Number(r[x]), group: g ? String(r[g]) : "" })),
    opts.bins ?? 30,
  );
  const groups = g ? [...new Set(binned.map((b) => b.group))] : [];
  const drawn = binned.filter((b) => b.count > 0);
  return renderPlot({
    ...base(opts),
    x: { label: opts.xLabel ?? x },
    y: { label: opts.yLabel ?? "count", grid: true },
    color: g ? { legend: true, range: colorRange(groups), domain: groups } : undefined,
    marks: [
      // Plot.rect with explicit y1 = 0 never stacks: every group starts at the same baseline.
      Plot.rect(drawn, {
        x1: "x1",
        x2: "x2",
        y1: () => 0,
        y2: "count",
        fill: g ? "group" : SERIES_COLORS[0],
        fillOpacity: g ? 0.35 : 1,
        stroke: g ? "group" : undefined,
        strokeWidth: 1.2,
        insetLeft: 0.5,
        insetRight: 0.5,
        ariaLabel: "histogram bar",
      }),
      Plot.ruleY([0]),
      ...chanceMarks(opts),
    ],
  }, { title: opts.title });
}

/** A regular grid over the plane: `nx` × `ny` cells covering [x0,x1] × [y0,y1]. */
export interface GridSpec {
  /** Left edge. */
  x0: number;
  /** Right edge. */
  x1: number;
  /** Bottom edge. */
  y0: number;
  /** Top edge. */
  y1: number;
  /** Cells along x. */
  nx: number;
  /** Cells along y. */
  ny: number;
}

/** Input of {@link decisionField}. */
export interface DecisionFieldInput {
  /** The grid the values are given on. */
  grid: GridSpec;
  /** Class-0 probability per cell, row-major `ny × nx`, row 0 at `y0`, column 0 at `x0`. */
  values: ArrayLike<number>;
  /** Points drawn on top: coordinates and class labels. */
  points?: { x: ArrayLike<number>; y: ArrayLike<number>; labels: ArrayLike<number> };
  /** Names of the classes for the legend (default `class 0`, `class 1`, …). */
  classNames?: string[];
}

/** Options for {@link decisionField}. */
export interface DecisionFieldOptions extends ChartOptions {
  /** Draw the iso-line at this probability (default 0.5; `null` for none). */
  boundary?: number | null;
  /** Legend label of the background (default `"P(class 0)"`). */
  fieldLabel?: string;
  /** Dot radius (default 3). */
  r?: number;
  /** Draw the legend (default true; a grid of fields draws one shared legend instead). */
  legend?: boolean;
}

/** How many of the input's points lie outside the drawn square of its grid. */
export function pointsOutside(input: DecisionFieldInput): { outside: number; total: number } {
  const p = input.points;
  if (!p) return { outside: 0, total: 0 };
  const { x0, x1, y0, y1 } = input.grid;
  let outside = 0;
  for (let k = 0; k < p.labels.length; k++) {
    const [x, y] = [p.x[k], p.y[k]];
    if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1)) outside++;
  }
  return { outside, total: p.labels.length };
}

/** The swatch legend of {@link decisionField}: one swatch per class, then the field's two ends. */
export function decisionFieldLegend(
  classes: readonly number[],
  classNames: readonly string[] = [],
  fieldLabel = "P(class 0)",
): LegendSpec {
  const [c0, c1] = [SERIES_COLORS[0], SERIES_COLORS[1]];
  const items = [...classes].sort((a, b) => a - b).map((c) => ({
    label: classNames[c] ?? `class ${c}`,
    color: SERIES_COLORS[c % SERIES_COLORS.length],
  }));
  items.push({ label: `${fieldLabel} high`, color: fieldColor(1, c0, c1) });
  items.push({ label: `${fieldLabel} low`, color: fieldColor(0, c0, c1) });
  return { kind: "swatch", items };
}

function hexRgb(h: string): [number, number, number] {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Background colour for probability p of class 0: class-1 colour → white → class-0 colour. */
function fieldColor(p: number, c0: string, c1: string): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(p) ? p : 0.5));
  const [a, w] = t >= 0.5 ? [hexRgb(c0), (t - 0.5) * 2] : [hexRgb(c1), (0.5 - t) * 2];
  const mix = (k: number) => Math.round(255 + (a[k] - 255) * w * 0.55);
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/** A line segment of an iso-line. */
export interface Segment {
  /** Start x. */
  x1: number;
  /** Start y. */
  y1: number;
  /** End x. */
  x2: number;
  /** End y. */
  y2: number;
}

/**
 * Marching squares: the segments where the field (sampled at the cell centres of `grid`) crosses
 * `level`. Only the iso-line itself is returned, not the outline of the region.
 */
export function isoSegments(values: ArrayLike<number>, grid: GridSpec, level: number): Segment[] {
  const { nx, ny } = grid;
  const dx = (grid.x1 - grid.x0) / nx;
  const dy = (grid.y1 - grid.y0) / ny;
  const px = (j: number) => grid.x0 + (j + 0.5) * dx;
  const py = (i: number) => grid.y0 + (i + 0.5) * dy;
  const at = (i: number, j: number) => values[i * nx + j] - level;
  const out: Segment[] = [];
  const cross = (a: number, b: number) => a / (a - b); // fraction along an edge where the sign flips
  for (let i = 0; i + 1 < ny; i++) {
    for (let j = 0; j + 1 < nx; j++) {
      const v = [at(i, j), at(i, j + 1), at(i + 1, j + 1), at(i + 1, j)]; // corners counter-clockwise
      if (v.some((x) => !Number.isFinite(x))) continue;
      const corners: [number, number][] = [[px(j), py(i)], [px(j + 1), py(i)], [px(j + 1), py(i + 1)], [
        px(j),
        py(i + 1),
      ]];
      const pts: [number, number][] = [];
      for (let e = 0; e < 4; e++) {
        const a = v[e];
        const b = v[(e + 1) % 4];
        if ((a < 0) !== (b < 0)) {
          const t = cross(a, b);
          const [xa, ya] = corners[e];
          const [xb, yb] = corners[(e + 1) % 4];
          pts.push([xa + t * (xb - xa), ya + t * (yb - ya)]);
        }
      }
      if (pts.length === 2) out.push({ x1: pts[0][0], y1: pts[0][1], x2: pts[1][0], y2: pts[1][1] });
      else if (pts.length === 4) {
        // saddle: pair crossings so that the centre's side stays connected
        const centre = (v[0] + v[1] + v[2] + v[3]) / 4;
        const [p0, p1, p2, p3] = (centre < 0) === (v[0] < 0) ? [pts[0], pts[1], pts[2], pts[3]] : [
          pts[0],
          pts[3],
          pts[2],
          pts[1],
        ];
        out.push({ x1: p0[0], y1: p0[1], x2: p1[0], y2: p1[1] });
        out.push({ x1: p2[0], y1: p2[1], x2: p3[0], y2: p3[1] });
      }
    }
  }
  return out;
}

/**
 * A 2-D decision field: the background shows the class-0 probability on a grid (drawn as cells,
 * with the `boundary` iso-line), labelled points on top. Colours and legend are drawn in SVG, so
 * the result is a plain SVG figure.
 */
export function decisionField(input: DecisionFieldInput, opts: DecisionFieldOptions = {}): Figure {
  const { grid, values } = input;
  if (values.length < grid.nx * grid.ny) throw new Error("decisionField: values shorter than nx*ny");
  const dx = (grid.x1 - grid.x0) / grid.nx;
  const dy = (grid.y1 - grid.y0) / grid.ny;
  const c0 = SERIES_COLORS[0];
  const c1 = SERIES_COLORS[1];
  const cells = Array.from({ length: grid.nx * grid.ny }, (_, k) => {
    const i = Math.floor(k / grid.nx);
    const j = k % grid.nx;
    const x = grid.x0 + j * dx;
    const y = grid.y0 + i * dy;
    return { x1: x, x2: x + dx, y1: y, y2: y + dy, fill: fieldColor(values[k], c0, c1) };
  });
  const marks: Plot.Markish[] = [
    Plot.rect(cells, { x1: "x1", x2: "x2", y1: "y1", y2: "y2", fill: "fill", shapeRendering: "crispEdges" }),
  ];
  const boundary = opts.boundary === undefined ? 0.5 : opts.boundary;
  if (boundary !== null) {
    const segs = isoSegments(values, grid, boundary);
    marks.push(Plot.link(segs, { x1: "x1", y1: "y1", x2: "x2", y2: "y2", stroke: "#222", strokeWidth: 1.5 }));
  }
  const classes = new Set<number>();
  if (input.points) {
    const { x, y, labels } = input.points;
    const pts = Array.from({ length: labels.length }, (_, k) => {
      classes.add(labels[k]);
      return { x: x[k], y: y[k], fill: SERIES_COLORS[labels[k] % SERIES_COLORS.length] };
    });
    marks.push(
      Plot.dot(pts, { x: "x", y: "y", fill: "fill", stroke: "white", strokeWidth: 0.7, r: opts.r ?? 3 }),
    );
  }
  const el = Plot.plot({
    width: opts.width ?? 420,
    height: opts.height ?? 380,
    style: { background: "white" },
    x: { domain: [grid.x0, grid.x1], label: opts.xLabel ?? null },
    y: { domain: [grid.y0, grid.y1], label: opts.yLabel ?? null },
    color: { type: "identity" },
    marks,
    document: plotDocument(),
  }) as unknown as DomElement;
  const legend = opts.legend === false
    ? undefined
    : decisionFieldLegend([...classes], input.classNames, opts.fieldLabel);
  return makeFigure(composeSvg(el.outerHTML, { title: opts.title, legend }), { title: opts.title });
}

/** Options for {@link gridOfFigures}. */
export interface GridOptions {
  /** Figures per row (default: all in one row, at most 3). */
  cols?: number;
  /** Pixels between figures (default 12). */
  gap?: number;
  /** A caption over each figure. */
  titles?: string[];
  /** A title over the whole grid. */
  title?: string;
  /** One legend for the whole grid, drawn once under the title (give the panels none). */
  legend?: LegendSpec;
}

/**
 * Lay figures out in a grid (e.g. the 3×3 Figure 1): one SVG with each figure's SVG nested at its
 * cell, and an HTML table that keeps each figure's HTML form (legends) when it has one.
 */
export function gridOfFigures(figs: Figure[], opts: GridOptions = {}): Figure {
  const cols = Math.max(1, opts.cols ?? Math.min(3, figs.length));
  const gap = opts.gap ?? 12;
  const rows = Math.ceil(figs.length / cols);
  const capH = opts.titles ? 18 : 0;
  const colW = Array.from(
    { length: cols },
    (_, c) => Math.max(0, ...figs.filter((_, i) => i % cols === c).map((f) => f.width)),
  );
  const rowH = Array.from(
    { length: rows },
    (_, r) => capH + Math.max(0, ...figs.slice(r * cols, (r + 1) * cols).map((f) => f.height)),
  );
  const width = colW.reduce((a, b) => a + b, 0) + gap * (cols - 1);
  const legend = opts.legend ? legendSvg(opts.legend, width) : undefined;
  const titleH = opts.title ? 26 : 0;
  const top = titleH + (legend ? legend.height + 6 : 0);
  const height = top + rowH.reduce((a, b) => a + b, 0) + gap * (rows - 1);
  let body = opts.title
    ? `<text x="0" y="17" font-size="15" font-weight="bold">${escapeHtml(opts.title)}</text>`
    : "";
  if (legend) body += `<g transform="translate(0,${titleH})">${legend.markup}</g>`;
  let cells = "";
  figs.forEach((f, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const x = colW.slice(0, c).reduce((a, b) => a + b, 0) + gap * c;
    const y = top + rowH.slice(0, r).reduce((a, b) => a + b, 0) + gap * r;
    const cap = opts.titles?.[i];
    if (cap) body += `<text x="${x}" y="${y + 13}" font-size="12">${escapeHtml(cap)}</text>`;
    body += f.svg.replace(/^<svg\b/, `<svg x="${x}" y="${y + capH}"`);
    if (c === 0) cells += "<tr>";
    const capHtml = cap ? `<div style="font:12px system-ui,sans-serif">${escapeHtml(cap)}</div>` : "";
    cells += `<td style="vertical-align:top;padding:${gap / 2}px">${capHtml}${f.html ?? f.svg}</td>`;
    if (c === cols - 1 || i === figs.length - 1) cells += "</tr>";
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="10">` +
    `<rect width="100%" height="100%" fill="white"/>${body}</svg>`;
  const anyHtml = figs.some((f) => f.html !== undefined);
  const titleHtml =
    (opts.title ? `<div style="font:bold 15px system-ui,sans-serif">${escapeHtml(opts.title)}</div>` : "") +
    (legend
      ? `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${legend.height}" ` +
        `font-family="system-ui, sans-serif" font-size="10">${legend.markup}</svg>`
      : "");
  return makeFigure(svg, {
    html: anyHtml
      ? `<div>${titleHtml}<table style="border-collapse:collapse">${cells}</table></div>`
      : undefined,
    title: opts.title,
  });
}
