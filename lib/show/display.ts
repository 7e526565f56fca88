/**
 * Showing things: inline in the Deno Jupyter kernel, as text elsewhere.
 *
 * Any object with a `[Symbol.for("Jupyter.display")]()` method (see {@link Displayable}) renders with
 * the MIME bundle it returns; the helpers here build such objects.
 *
 * @module
 */
import { flattenObject } from "../util/flatten.ts";
import { inJupyter } from "./progress.ts";

/** The symbol Deno's kernel looks for to render an object (`Deno.jupyter.$display`). */
export const DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** A Jupyter MIME bundle: MIME type → data (strings; base64 for images). */
export type MediaBundle = Record<string, string | object>;

/** Something that renders itself in Jupyter. */
export interface Displayable {
  /** The MIME bundle to show. */
  [DISPLAY](): MediaBundle;
}

/** Wrap a fixed MIME bundle as a displayable object. */
export function displayable(bundle: MediaBundle): Displayable {
  return { [DISPLAY]: () => bundle };
}

/** True if `x` has a Jupyter display method. */
export function isDisplayable(x: unknown): x is Displayable {
  return typeof x === "object" && x !== null && typeof (x as Record<symbol, unknown>)[DISPLAY] === "function";
}

/** Escape text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The text/plain form of anything: the bundle's text, else `String`/JSON. */
export function toText(x: unknown): string {
  if (isDisplayable(x)) {
    const b = x[DISPLAY]();
    const t = b["text/plain"] ?? b["text/markdown"];
    if (typeof t === "string") return t;
    return `[${Object.keys(b).join(", ")}]`;
  }
  if (typeof x === "string") return x;
  try {
    return JSON.stringify(x, null, 2) ?? String(x);
  } catch {
    return String(x);
  }
}

/**
 * Show `x`: in the Jupyter kernel as a display output (its own bundle when it is displayable,
 * Deno's formatting otherwise); elsewhere its text form on stdout.
 */
export async function show(x: unknown): Promise<void> {
  if (inJupyter()) {
    const jup =
      (Deno as unknown as { jupyter: { display(o: unknown, opts: { raw: boolean }): Promise<void> } })
        .jupyter;
    if (isDisplayable(x)) await jup.display(x[DISPLAY](), { raw: true });
    else if (typeof x === "string") await jup.display({ "text/plain": x }, { raw: true });
    else await jup.display(x, { raw: false });
    return;
  }
  console.log(toText(x));
}

function joinTemplate(strings: TemplateStringsArray | string, values: unknown[]): string {
  if (typeof strings === "string") return strings;
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
}

/** Markdown, as a tagged template (`` md`# Title ${x}` ``) or a plain string. */
export function md(strings: TemplateStringsArray | string, ...values: unknown[]): Displayable {
  const text = joinTemplate(strings, values);
  return displayable({ "text/markdown": text, "text/plain": text });
}

/** HTML, as a tagged template or a plain string; the text form has the tags stripped. */
export function html(strings: TemplateStringsArray | string, ...values: unknown[]): Displayable {
  const markup = joinTemplate(strings, values);
  const plain = markup.replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(
    /&amp;/g,
    "&",
  );
  return displayable({ "text/html": markup, "text/plain": plain });
}

function formatValue(v: unknown): string {
  if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(6)).toString();
  return String(v);
}

/**
 * A two-column key/value table of a (nested) object, e.g. a config or a ledger snapshot. Nested keys
 * are dotted (`optimizer.lr`).
 */
export function keyValues(obj: Record<string, unknown>, opts: { title?: string } = {}): Displayable {
  const flat = Object.entries(flattenObject(obj));
  const width = Math.max(0, ...flat.map(([k]) => k.length));
  const lines = flat.map(([k, v]) => `${k.padEnd(width)}  ${formatValue(v)}`);
  if (opts.title) lines.unshift(opts.title);
  const rows = flat.map(([k, v]) =>
    `<tr><td style="text-align:left"><code>${escapeHtml(k)}</code></td>` +
    `<td style="text-align:left">${escapeHtml(formatValue(v))}</td></tr>`
  ).join("");
  const caption = opts.title
    ? `<caption style="text-align:left"><b>${escapeHtml(opts.title)}</b></caption>`
    : "";
  return displayable({
    "text/html": `<table>${caption}<tbody>${rows}</tbody></table>`,
    "text/plain": lines.join("\n"),
  });
}
