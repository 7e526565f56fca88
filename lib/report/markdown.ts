/**
 * Markdown → HTML for notebook cells and `text/markdown` outputs (GitHub-flavoured, via `marked`),
 * with TeX maths left intact for MathJax and every heading given a stable anchor id.
 *
 * @module
 */
import { Marked, type Tokens } from "marked";
import { esc, type IdRegistry, slugify } from "./html.ts";

/** A heading found while rendering, with the anchor id it got. */
export interface Heading {
  /** Plain text of the heading. */
  text: string;
  /** Anchor id on the page. */
  id: string;
  /** 1 for `#`, 2 for `##`, … */
  depth: number;
}

/** Result of {@link renderMarkdown}. */
export interface RenderedMarkdown {
  /** The HTML. */
  html: string;
  /** Headings in order. */
  headings: Heading[];
  /** True when the text holds TeX maths (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`). */
  maths: boolean;
}

// Display maths first, then inline `$…$` (not `\$`, not empty, not starting/ending with a space).
const MATH_RE = /\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\]|\\\([\s\S]+?\\\)|(?<![\\$])\$(?![\s$])[^$\n]+?(?<!\s)\$/g;
const PLACEHOLDER_RE = /MATHSLOT(\d+)X/g;

/** Pull maths out before markdown sees it (so `_` and `*` inside TeX stay TeX). */
function protectMaths(text: string): { text: string; slots: string[] } {
  const slots: string[] = [];
  const out = text.replace(MATH_RE, (m) => {
    slots.push(m);
    return `MATHSLOT${slots.length - 1}X`;
  });
  return { text: out, slots };
}

function plainText(html: string): string {
  return html.replace(/<[^>]*>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'");
}

/**
 * Render markdown. Headings get ids from `ids` (unique on the page, derived from their text, so
 * the same notebook always gives the same anchors).
 */
export function renderMarkdown(text: string, ids: IdRegistry): RenderedMarkdown {
  const { text: guarded, slots } = protectMaths(text);
  const headings: Heading[] = [];
  const marked = new Marked({ gfm: true, async: false });
  marked.use({
    renderer: {
      heading(this: { parser: { parseInline(t: Tokens.Generic[]): string } }, token: Tokens.Heading) {
        const inner = this.parser.parseInline(token.tokens);
        const plain = plainText(inner.replace(PLACEHOLDER_RE, (_m, i) => slots[Number(i)]));
        const id = ids.take(slugify(plain));
        headings.push({ text: plain, id, depth: token.depth });
        return `<h${token.depth} id="${esc(id)}">${inner}</h${token.depth}>\n`;
      },
    },
  });
  const html = (marked.parse(guarded) as string).replace(PLACEHOLDER_RE, (_m, i) => esc(slots[Number(i)]));
  return { html, headings, maths: slots.length > 0 };
}

/** True when plain text holds TeX maths a page should typeset. */
export function hasMaths(text: string): boolean {
  return new RegExp(MATH_RE.source).test(text);
}
