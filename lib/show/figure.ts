/**
 * The `Figure` value every plot and image grid returns: SVG text (always, with `xmlns`), optional
 * HTML (when the figure has an HTML legend), and a Jupyter display method.
 *
 * @module
 */
import { writeAtomic } from "../util/files.ts";
import { DISPLAY, type MediaBundle } from "./display.ts";

const SVG_NS = "http://www.w3.org/2000/svg";
const XLINK_NS = "http://www.w3.org/1999/xlink";

/** A rendered figure. */
export interface Figure {
  /** Standalone SVG document text (root has `xmlns`); always present. */
  svg: string;
  /** HTML form, when the figure carries HTML parts (e.g. a swatch legend); preferred in Jupyter. */
  html?: string;
  /** Pixel width of the SVG. */
  width: number;
  /** Pixel height of the SVG. */
  height: number;
  /** Extra MIME data added to the display bundle (e.g. `image/png` for image grids). */
  extra?: MediaBundle;
  /** Jupyter bundle: `text/html` (if any) + `image/svg+xml` (unless turned off) + extras + `text/plain`. */
  [DISPLAY](): MediaBundle;
}

/** Add `xmlns` (and `xmlns:xlink` when `xlink:` is used) to every `<svg` start tag that lacks it. */
export function withXmlns(markup: string): string {
  return markup.replace(/<svg\b([^>]*)>/g, (_m, attrs: string) => {
    let a = attrs;
    if (!/\sxmlns=/.test(a)) a = ` xmlns="${SVG_NS}"` + a;
    if (markup.includes("xlink:") && !/\sxmlns:xlink=/.test(a)) a = ` xmlns:xlink="${XLINK_NS}"` + a;
    return `<svg${a}>`;
  });
}

/** Read `width`/`height` (or the viewBox) from the root `<svg>` start tag. */
export function svgSize(svg: string): { width: number; height: number } {
  const tag = svg.match(/<svg\b[^>]*>/)?.[0] ?? "";
  const num = (name: string) => {
    const m = tag.match(new RegExp(`\\s${name}="([0-9.]+)`));
    return m ? Number(m[1]) : NaN;
  };
  let width = num("width");
  let height = num("height");
  const vb = tag.match(/viewBox="([^"]+)"/)?.[1].trim().split(/[\s,]+/).map(Number);
  if (!Number.isFinite(width) && vb) width = vb[2];
  if (!Number.isFinite(height) && vb) height = vb[3];
  return { width: Number.isFinite(width) ? width : 640, height: Number.isFinite(height) ? height : 400 };
}

/** Build a {@link Figure} from SVG text (made standalone with `xmlns`) and optional HTML. */
export function makeFigure(
  svg: string,
  opts: {
    html?: string;
    title?: string;
    extra?: MediaBundle;
    /** Put the SVG in the display bundle (default true; image grids show their PNG instead). */
    svgInBundle?: boolean;
  } = {},
): Figure {
  const s = withXmlns(svg);
  const { width, height } = svgSize(s);
  const html = opts.html === undefined ? undefined : withXmlns(opts.html);
  const text = `Figure${opts.title ? ` "${opts.title}"` : ""} (${Math.round(width)}×${Math.round(height)})`;
  return {
    svg: s,
    html,
    width,
    height,
    extra: opts.extra,
    [DISPLAY]: () => {
      const b: MediaBundle = { ...(opts.extra ?? {}), "text/plain": text };
      if (opts.svgInBundle !== false) b["image/svg+xml"] = s;
      if (html !== undefined) b["text/html"] = html;
      return b;
    },
  };
}

/**
 * Write a figure to disk: `.svg` writes the SVG; `.html` a small standalone page with the HTML form
 * (or the SVG); `.png` is only possible for image grids (their `image/png` data). Parent folders are
 * created; the write is atomic (temp file + rename).
 */
export async function saveFigure(fig: Figure, path: string): Promise<void> {
  const lower = path.toLowerCase();
  let data: string | Uint8Array;
  if (lower.endsWith(".svg")) {
    data = `<?xml version="1.0" encoding="UTF-8"?>\n${fig.svg}\n`;
  } else if (lower.endsWith(".html") || lower.endsWith(".htm")) {
    data = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n${
      fig.html ?? fig.svg
    }\n</body></html>\n`;
  } else if (lower.endsWith(".png") && typeof fig.extra?.["image/png"] === "string") {
    data = Uint8Array.from(atob(fig.extra["image/png"] as string), (c) => c.charCodeAt(0));
  } else {
    throw new Error(`saveFigure: ${path}: use a .svg or .html path (.png only for image grids)`);
  }
  await writeAtomic(path, data);
}
