/**
 * Image grids: NHWC float images → one PNG (encoded here), displayable inline and embeddable in SVG
 * or HTML through a data URI.
 *
 * @module
 */
import { escapeHtml } from "./display.ts";
import { type Figure, makeFigure } from "./figure.ts";
import { encodePng, toBase64 } from "./png.ts";

/** Options for {@link imageGrid}. */
export interface ImageGridOptions {
  /** Grid rows (default: enough for `cols`). */
  rows?: number;
  /** Grid columns (default: `min(n, 10)`, or `ceil(n / rows)` when `rows` is given). */
  cols?: number;
  /** A short label per image (e.g. the teacher's class), drawn under the tile in the SVG/HTML form. */
  labels?: ArrayLike<string | number>;
  /** A longer caption per image, drawn after the label. */
  captions?: ArrayLike<string>;
  /** Integer upscale factor in the PNG (default: tiles become at least 56 px high). */
  scale?: number;
  /** `"clip"` (default): clamp to [0,1]; `"minmax"`: stretch each image to its own min..max. */
  normalize?: "clip" | "minmax";
  /** Pixels of padding between tiles, in source pixels before scaling (default 1). */
  pad?: number;
  /** Padding grey level in [0,1] (default 0.5). */
  padValue?: number;
  /** Show at most this many images (default: all that fit the grid). */
  limit?: number;
}

/** An image grid: the PNG bytes plus a {@link Figure} view (SVG with the PNG and text labels). */
export interface ImageGrid extends Figure {
  /** PNG file bytes of the grid (no text). */
  png: Uint8Array;
  /** `data:image/png;base64,...` URI of {@link png}. */
  dataUri: string;
  /** Rows and columns of tiles. */
  grid: { rows: number; cols: number };
  /** PNG pixel size (the SVG adds room for labels). */
  pngSize: { width: number; height: number };
}

/**
 * Lay out `n` images of `shape` `[n, h, w, c]` (c = 1 or 3, values nominally in [0,1]) as a grid
 * and encode it as a PNG (grayscale for c = 1, RGB for c = 3). Values outside [0,1] are clipped,
 * or stretched per image with `normalize: "minmax"` (useful for CAKE samples, which live in the
 * teacher's normalised input space).
 */
export function imageGrid(images: Float32Array, shape: number[], opts: ImageGridOptions = {}): ImageGrid {
  if (shape.length !== 4) throw new Error(`imageGrid: shape must be [n,h,w,c], got [${shape}]`);
  const [n0, h, w, c] = shape;
  if (c !== 1 && c !== 3) throw new Error(`imageGrid: 1 or 3 channels supported, got ${c}`);
  if (images.length < n0 * h * w * c) throw new Error(`imageGrid: data shorter than shape [${shape}]`);
  let cols = opts.cols ??
    (opts.rows ? Math.ceil(Math.min(n0, opts.limit ?? n0) / opts.rows) : Math.min(n0, 10));
  cols = Math.max(1, cols);
  const rows = Math.max(1, opts.rows ?? Math.ceil(Math.min(n0, opts.limit ?? n0) / cols));
  const n = Math.min(n0, rows * cols, opts.limit ?? Infinity);
  const scale = Math.max(1, Math.round(opts.scale ?? Math.ceil(56 / h)));
  const pad = opts.pad ?? 1;
  const padByte = Math.round(255 * Math.min(1, Math.max(0, opts.padValue ?? 0.5)));
  const tileW = w * scale;
  const tileH = h * scale;
  const padPx = pad * scale;
  const width = cols * tileW + (cols + 1) * padPx;
  const height = rows * tileH + (rows + 1) * padPx;
  const pix = new Uint8Array(width * height * c).fill(padByte);
  const per = h * w * c;
  for (let k = 0; k < n; k++) {
    const img = images.subarray(k * per, (k + 1) * per);
    let lo = 0;
    let hi = 1;
    if (opts.normalize === "minmax") {
      lo = Infinity;
      hi = -Infinity;
      for (const v of img) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (!(hi > lo)) hi = lo + 1;
    }
    const span = hi - lo;
    const r0 = Math.floor(k / cols) * (tileH + padPx) + padPx;
    const c0 = (k % cols) * (tileW + padPx) + padPx;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          const v = (img[(y * w + x) * c + ch] - lo) / span;
          const b = Number.isNaN(v) ? 0 : Math.round(255 * Math.min(1, Math.max(0, v)));
          for (let dy = 0; dy < scale; dy++) {
            const row = (r0 + y * scale + dy) * width;
            for (let dx = 0; dx < scale; dx++) pix[(row + c0 + x * scale + dx) * c + ch] = b;
          }
        }
      }
    }
  }
  const png = encodePng(pix, width, height, c as 1 | 3);
  const b64 = toBase64(png);
  const dataUri = `data:image/png;base64,${b64}`;

  const texts: string[] = [];
  for (let k = 0; k < n; k++) {
    const parts = [];
    if (opts.labels && k < opts.labels.length) parts.push(String(opts.labels[k]));
    if (opts.captions && k < opts.captions.length) parts.push(String(opts.captions[k]));
    texts.push(parts.join(" · "));
  }
  const hasText = texts.some((t) => t !== "");
  const textH = hasText ? 14 : 0;
  const svgH = height + rows * textH;
  let body = "";
  if (!hasText) {
    body = `<image href="${dataUri}" x="0" y="0" width="${width}" height="${height}" ` +
      `style="image-rendering:pixelated"/>`;
  } else {
    // One <image> per grid row so each row of labels sits right under its tiles.
    const bandH = tileH + padPx;
    for (let r = 0; r < rows; r++) {
      const y = r * (bandH + textH);
      const clipId = `row${r}`;
      body +=
        `<clipPath id="${clipId}"><rect x="0" y="${y}" width="${width}" height="${
          bandH + padPx
        }"/></clipPath>` +
        `<image href="${dataUri}" x="0" y="${y - r * bandH}" width="${width}" height="${height}" ` +
        `clip-path="url(#${clipId})" style="image-rendering:pixelated"/>`;
      for (let k = r * cols; k < Math.min(n, (r + 1) * cols); k++) {
        const cx = (k % cols) * (tileW + padPx) + padPx + tileW / 2;
        body += `<text x="${cx}" y="${y + bandH + padPx + 10}" text-anchor="middle">${
          escapeHtml(texts[k])
        }</text>`;
      }
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${svgH}" ` +
    `viewBox="0 0 ${width} ${svgH}" font-family="system-ui, sans-serif" font-size="10">` +
    `<rect width="100%" height="100%" fill="white"/>${body}</svg>`;
  const extra = { "image/png": b64 };
  const fig = makeFigure(svg, {
    html: hasText ? svg : undefined,
    extra,
    svgInBundle: false, // the PNG is the output; the SVG (PNG inside + labels) only for composition
    title: `${n} images ${h}×${w}×${c}`,
  });
  return { ...fig, png, dataUri, grid: { rows, cols }, pngSize: { width, height } };
}

/** Wrap any Figure-like image as an `<img>` tag for HTML (data URI). */
export function imgTag(grid: ImageGrid, opts: { alt?: string } = {}): string {
  return `<img src="${grid.dataUri}" width="${grid.pngSize.width}" height="${grid.pngSize.height}" ` +
    `alt="${escapeHtml(opts.alt ?? "image grid")}" style="image-rendering:pixelated"/>`;
}

/** Re-export for callers that only deal with images. */
export type { Figure };
