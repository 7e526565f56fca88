/**
 * One code-cell output → HTML for a report page. A display bundle shows its richest form, in the
 * order Jupyter uses (HTML, SVG, PNG/JPEG, markdown, LaTeX, plain text); embedded images move to
 * content-addressed asset files; ids inside inline SVG/HTML get a per-output prefix so figures on
 * one page never share clip paths.
 *
 * @module
 */
import type { AssetStore } from "./assets.ts";
import { esc, type IdRegistry, namespaceIds, stripAnsi } from "./html.ts";
import { hasMaths, renderMarkdown } from "./markdown.ts";
import { type NbOutput, nbText } from "./notebook.ts";
import { rasterizeRectGrids } from "./raster.ts";

/** What rendering an output needs from its page. */
export interface OutputContext {
  /** Where images go. */
  assets: AssetStore;
  /** Page-wide ids (headings inside markdown outputs). */
  ids: IdRegistry;
  /** Prefix for ids inside this output (unique on the page, e.g. `c12o1`). */
  idPrefix: string;
  /** Path from the page to the site root. */
  root: string;
}

/** Rendered output. */
export interface RenderedOutput {
  /** HTML of the output (`""` when there is nothing to show). */
  html: string;
  /** True when it holds TeX maths. */
  maths: boolean;
}

/** MIME types in the order a page prefers them. */
export const MIME_ORDER: readonly string[] = [
  "text/html",
  "image/svg+xml",
  "image/png",
  "image/jpeg",
  "text/markdown",
  "text/latex",
  "text/plain",
];

/**
 * Shorten long decimals inside SVG tags (`x="41.66666666666668"` → `x="41.666"`): a thousandth of
 * a pixel is invisible and Observable Plot's raster-like fields shrink by about a third. Text
 * between tags is left alone.
 */
export function compactSvgNumbers(svg: string): string {
  return svg.replace(/<[^>]+>/g, (tag) => tag.replace(/(\d\.\d{3})\d+/g, "$1"));
}

function dataString(v: string | string[] | object): string {
  return typeof v === "string" || Array.isArray(v) ? nbText(v as string | string[]) : JSON.stringify(v);
}

/** Pick the MIME type a bundle is shown as. */
export function chooseMime(data: Record<string, unknown>): string | undefined {
  return MIME_ORDER.find((m) => m in data) ?? Object.keys(data).sort()[0];
}

function inlineMarkup(markup: string, ctx: OutputContext): string {
  let m = ctx.assets.externalizeDataUris(markup, ctx.root);
  if (/<svg\b/i.test(m)) m = compactSvgNumbers(rasterizeRectGrids(m, ctx.assets, ctx.root));
  return namespaceIds(m, ctx.idPrefix);
}

/** Render one output. */
export function renderOutput(o: NbOutput, ctx: OutputContext): RenderedOutput {
  if (o.output_type === "stream") {
    const text = stripAnsi(nbText(o.text));
    if (text === "") return { html: "", maths: false };
    const cls = o.name === "stderr" ? "stderr" : "stdout";
    return { html: `<pre class="output ${cls}">${esc(text)}</pre>`, maths: false };
  }
  if (o.output_type === "error") {
    const tb = stripAnsi((o.traceback ?? []).join("\n")) || `${o.ename ?? "Error"}: ${o.evalue ?? ""}`;
    return { html: `<pre class="output error">${esc(tb)}</pre>`, maths: false };
  }
  const data = o.data ?? {};
  const mime = chooseMime(data);
  if (mime === undefined) return { html: "", maths: false };
  const raw = dataString(data[mime] as string | string[] | object);
  switch (mime) {
    case "text/html":
      return { html: `<div class="output html">${inlineMarkup(raw, ctx)}</div>`, maths: hasMaths(raw) };
    case "image/svg+xml": {
      const svg = raw.replace(/^\s*<\?xml[^>]*>\s*/, "");
      return { html: `<div class="output svg">${inlineMarkup(svg, ctx)}</div>`, maths: false };
    }
    case "image/png":
    case "image/jpeg": {
      const path = ctx.assets.addBase64(mime, raw);
      const alt = dataString((data["text/plain"] ?? "image") as string | string[]);
      return {
        html: `<div class="output image"><img class="raster" src="${ctx.root}${path}" alt="${
          esc(alt)
        }"></div>`,
        maths: false,
      };
    }
    case "text/markdown": {
      const r = renderMarkdown(raw, ctx.ids);
      return { html: `<div class="output markdown">${r.html}</div>`, maths: r.maths };
    }
    case "text/latex":
      return { html: `<div class="output latex">${esc(raw)}</div>`, maths: true };
    default:
      return { html: `<pre class="output text">${esc(stripAnsi(raw))}</pre>`, maths: false };
  }
}
