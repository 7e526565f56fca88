/**
 * Shrink raster-like SVG: Observable Plot draws a decision field as thousands of equal `<rect>`s on
 * a regular grid (`<g shape-rendering="crispEdges" aria-label="rect">`, ≈ 40,000 rects, 3 MB per
 * figure). Such a group becomes one pixelated PNG `<image>` of the same place and size — the same
 * picture at ≈ 1/50 of the bytes. Anything that is not a full regular grid of plain filled rects is
 * left as it is.
 *
 * @module
 */
import { encodePng } from "../show/png.ts";
import type { AssetStore } from "./assets.ts";

const GROUP_RE = /<g shape-rendering="crispEdges" aria-label="rect">((?:\s*<rect\b[^>]*\/>)+)\s*<\/g>/g;
/** Fewer rects than this are not worth a PNG. */
export const MIN_GRID_RECTS = 400;

interface Cell {
  x: number;
  y: number;
  w: number;
  h: number;
  rgb: [number, number, number];
}

function parseFill(fill: string): [number, number, number] | undefined {
  const m = fill.match(/^rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  const h = fill.match(/^#([0-9a-f]{6})$/i);
  if (h) return [0, 2, 4].map((i) => parseInt(h[1].slice(i, i + 2), 16)) as [number, number, number];
  return undefined;
}

function parseRect(tag: string): Cell | undefined {
  const attrs: Record<string, string> = {};
  for (const m of tag.matchAll(/([a-z-]+)="([^"]*)"/g)) attrs[m[1]] = m[2];
  const keys = Object.keys(attrs).sort().join(",");
  if (keys !== "fill,height,width,x,y") return undefined; // opacity, stroke, title …: keep as SVG
  const rgb = parseFill(attrs.fill);
  const [x, y, w, h] = ["x", "y", "width", "height"].map((k) => Number(attrs[k]));
  if (!rgb || ![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0) return undefined;
  return { x, y, w, h, rgb };
}

/** One group of rects → an `<image>` tag, or `undefined` when it is not a full regular grid. */
function gridToImage(rects: string, assets: AssetStore, root: string): string | undefined {
  const tags = rects.match(/<rect\b[^>]*\/>/g) ?? [];
  if (tags.length < MIN_GRID_RECTS) return undefined;
  const cells: Cell[] = [];
  for (const t of tags) {
    const c = parseRect(t);
    if (!c) return undefined;
    cells.push(c);
  }
  const w = cells[0].w;
  const h = cells[0].h;
  const x0 = Math.min(...cells.map((c) => c.x));
  const y0 = Math.min(...cells.map((c) => c.y));
  const eps = 0.01;
  let cols = 0;
  let rows = 0;
  const at: { col: number; row: number; rgb: Cell["rgb"] }[] = [];
  for (const c of cells) {
    if (Math.abs(c.w - w) > eps || Math.abs(c.h - h) > eps) return undefined;
    const col = Math.round((c.x - x0) / w);
    const row = Math.round((c.y - y0) / h);
    if (Math.abs(x0 + col * w - c.x) > eps || Math.abs(y0 + row * h - c.y) > eps) return undefined;
    cols = Math.max(cols, col + 1);
    rows = Math.max(rows, row + 1);
    at.push({ col, row, rgb: c.rgb });
  }
  if (cols * rows !== cells.length) return undefined;
  const pix = new Uint8Array(cols * rows * 3);
  const seen = new Uint8Array(cols * rows);
  for (const a of at) {
    const i = a.row * cols + a.col;
    if (seen[i]) return undefined; // two rects on one cell: not a plain grid
    seen[i] = 1;
    pix.set(a.rgb, 3 * i);
  }
  const path = assets.add(encodePng(pix, cols, rows, 3), "png");
  const num = (v: number) => String(Math.round(v * 1000) / 1000);
  return `<image href="${root}${path}" x="${num(x0)}" y="${num(y0)}" width="${num(cols * w)}" ` +
    `height="${num(rows * h)}" preserveAspectRatio="none" style="image-rendering:pixelated"/>`;
}

/** Replace every rect grid in `svg` by a PNG image stored in `assets` (see module doc). */
export function rasterizeRectGrids(svg: string, assets: AssetStore, root: string): string {
  return svg.replace(GROUP_RE, (whole, rects: string) => gridToImage(rects, assets, root) ?? whole);
}
