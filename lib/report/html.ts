/**
 * HTML building blocks shared by the report pages: escaping, stable anchor ids, the page shell
 * (inline stylesheet, optional local MathJax) and relative links.
 *
 * @module
 */
import { posix } from "node:path";

/** Escape text for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Remove ANSI colour / cursor codes (tracebacks and progress lines may carry them). */
export function stripAnsi(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

/** A lowercase, URL-safe anchor from text: `"2 · Accuracy vs τ"` → `"2-accuracy-vs-τ"`. */
export function slugify(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/<[^>]*>/g, "")
    .replace(/&[a-z]+;|&#\d+;/g, "")
    .replace(/[^\p{L}\p{N}]+/gu, "-")
    .replace(/^-+|-+$/g, "");
  return s || "section";
}

/** Hands out unique ids on one page: the second `"ledger"` becomes `"ledger-2"`. */
export class IdRegistry {
  #used = new Set<string>();
  /** Reserve `base` (or the first free `base-N`) and return it. */
  take(base: string): string {
    let id = base;
    for (let k = 2; this.#used.has(id); k++) id = `${base}-${k}`;
    this.#used.add(id);
    return id;
  }
}

/**
 * Prefix every `id="…"` in a fragment of inline SVG/HTML, and the references to them
 * (`url(#…)`, `href="#…"`, `xlink:href="#…"`), so two figures on one page that both define
 * `clipPath id="row0"` keep their own clip paths.
 */
export function namespaceIds(markup: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of markup.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]);
  if (ids.size === 0) return markup;
  const re = (id: string) => id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  let out = markup.replace(/(\sid=")([^"]+)(")/g, (_m, a, id, b) => `${a}${prefix}-${id}${b}`);
  for (const id of ids) {
    out = out
      .replace(new RegExp(`url\\(#${re(id)}\\)`, "g"), `url(#${prefix}-${id})`)
      .replace(new RegExp(`((?:xlink:)?href=")#${re(id)}"`, "g"), `$1#${prefix}-${id}"`);
  }
  return out;
}

/** Relative URL from the folder of page `fromFile` to `toFile` (both paths inside or beside the site). */
export function relativeHref(fromFile: string, toFile: string): string {
  const rel = posix.relative(posix.dirname(fromFile), toFile);
  return rel.split("/").map(encodeURIComponent).join("/");
}

/** Where MathJax sits inside the site, relative to the site root. */
export const MATHJAX_ENTRY = "mathjax/MathJax.js";

/** Options of {@link pageShell}. */
export interface ShellOptions {
  /** `<title>` text. */
  title: string;
  /** Body markup. */
  body: string;
  /** Path prefix from the page to the site root (`""` for the index, `"../"` one level down). */
  root: string;
  /** Load MathJax (only pages with maths need it). */
  maths: boolean;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d1f21; --muted: #5c6166; --line: #d8dde3; --soft: #f5f7f9; --link: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
a { color: var(--link); }
nav.crumbs { font-size: 13px; color: var(--muted); margin-bottom: 8px; }
h1 { font-size: 26px; margin: 8px 0 12px; } h2 { font-size: 21px; margin: 28px 0 8px; } h3 { font-size: 17px; }
.meta { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; font-size: 13px; }
.meta dt { font-weight: 600; float: left; clear: left; width: 150px; color: var(--muted); }
.meta dd { margin: 0 0 2px 160px; }
.cell { margin: 10px 0; }
.cell.markdown { padding: 0 2px; }
details.code > summary { cursor: pointer; font-size: 12px; color: var(--muted); user-select: none; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; line-height: 1.4; }
pre.stderr { background: #fff6f0; }
pre.error { background: #fff0f0; border-color: #e6b8b8; }
.output { margin: 6px 0 6px 0; overflow-x: auto; }
.output svg, .output img { max-width: 100%; height: auto; }
.output img.raster { image-rendering: pixelated; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary { width: 100%; }
table.summary td.verdict { min-width: 14em; }
table.summary tr.group th { background: #e9eef4; font-size: 14px; padding-top: 8px; }
table.summary td:first-child { min-width: 12em; }
table.summary td:nth-child(2), table.summary td:last-child, table.notebooks td:nth-child(3) { white-space: nowrap; }
.output.html div[style*="white-space:pre"] { white-space: pre-wrap !important; font-size: 12px; }
.v-match { color: #1a7f37; } .v-below, .v-above { color: #b35900; } .v-none { color: var(--muted); }
.rule { font-size: 13px; color: var(--muted); }
.muted { color: var(--muted); }
`.trim();

/** A complete HTML page with the report's stylesheet (and MathJax from the site's own copy when asked). */
export function pageShell(o: ShellOptions): string {
  const mathjax = o.maths
    ? `<script type="text/x-mathjax-config">MathJax.Hub.Config({ tex2jax: { inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], ` +
      `processEscapes: true }, showMathMenu: false, messageStyle: "none" });</script>\n` +
      `<script src="${o.root}${MATHJAX_ENTRY}?config=TeX-AMS_SVG"></script>\n`
    : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(o.title)}</title>
<style>
${STYLE}
</style>
${mathjax}</head>
<body>
<main id="top">
${o.body}
</main>
</body>
</html>
`;
}
