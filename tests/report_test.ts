/**
 * The static report (lib/report, tools/report.ts), end to end: three notebooks are executed at smoke
 * scale through the real runner (the quickstart with a researcher's markdown note and maths added,
 * DB3 MNIST as is, and a small notebook marked to leave the report), the report is built twice by
 * the real command and compared byte for byte, then its index and a notebook page are opened in
 * Debian's headless Chromium over the DevTools protocol and served by a real HTTP server on
 * 127.0.0.1: no console errors or failed requests, every figure has a size, the summary table has
 * rows, every link resolves, the maths is typeset.
 *
 * Needs `chromium` and `libjs-mathjax` (installed by tools/setup.sh).
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeNotebook } from "../tools/nb.ts";
import { IdRegistry, namespaceIds, slugify } from "../lib/report/html.ts";
import { renderMarkdown } from "../lib/report/markdown.ts";
import { compactSvgNumbers } from "../lib/report/outputs.ts";
import { AssetStore } from "../lib/report/assets.ts";
import { rasterizeRectGrids } from "../lib/report/raster.ts";
import { buildSite } from "../lib/report/site.ts";
import { meanSpread, recordQueries, verdict } from "../lib/report/summary.ts";
import type { RunRecord } from "../lib/results/record.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = join(REPO, "results");
const SMOKE_RUNS = join(RESULTS, "smoke", "runs");
const CHROMIUM = Deno.env.get("BKD_CHROMIUM") ?? "/usr/bin/chromium";
const NOTE = "Researcher note: the soft-label student should beat the hard-label one";

// ---------------------------------------------------------------------------------------------
// Small pure parts

Deno.test("report: slugs and ids are stable and unique on a page", () => {
  assert.equal(slugify("2 · Accuracy vs query budget"), "2-accuracy-vs-query-budget");
  assert.equal(slugify("Temperature τ"), "temperature-τ");
  const ids = new IdRegistry();
  assert.deepEqual([ids.take("ledger"), ids.take("ledger"), ids.take("ledger")], [
    "ledger",
    "ledger-2",
    "ledger-3",
  ]);
});

Deno.test("report: ids inside a figure get a prefix, with their references", () => {
  const svg =
    `<svg><clipPath id="row0"><rect/></clipPath><image clip-path="url(#row0)"/><use href="#row0"/></svg>`;
  const out = namespaceIds(svg, "c3o1");
  assert.equal(
    out,
    `<svg><clipPath id="c3o1-row0"><rect/></clipPath><image clip-path="url(#c3o1-row0)"/><use href="#c3o1-row0"/></svg>`,
  );
});

Deno.test("report: long decimals shrink inside SVG tags only", () => {
  assert.equal(
    compactSvgNumbers(`<rect x="41.66666666666668" y="2"/><text>0.123456789</text>`),
    `<rect x="41.666" y="2"/><text>0.123456789</text>`,
  );
});

Deno.test("report: a decision field's rect grid becomes one PNG of the same place and pixels", () => {
  const rects: string[] = [];
  for (let r = 0; r < 20; r++) {
    for (let c = 0; c < 25; c++) {
      rects.push(
        `<rect fill="rgb(${c * 10},${r * 12},7)" height="1.75" width="1.6666666666666785" ` +
          `y="${10 + r * 1.75}" x="${40 + c * 1.6666666666666667}" />`,
      );
    }
  }
  const group = `<g shape-rendering="crispEdges" aria-label="rect">${rects.join("")}</g>`;
  const assets = new AssetStore();
  const out = rasterizeRectGrids(`<svg>${group}<circle r="1"/></svg>`, assets, "");
  const [path, png] = [...assets.files][0];
  assert.equal(
    out,
    `<svg><image href="${path}" x="40" y="10" width="41.667" height="35" preserveAspectRatio="none" ` +
      `style="image-rendering:pixelated"/><circle r="1"/></svg>`,
  );
  const view = new DataView(png.buffer, png.byteOffset);
  assert.deepEqual([view.getUint32(16), view.getUint32(20)], [25, 20], "one pixel per rect");
  // A rect with any other attribute (a stroke, a title) keeps the group as SVG.
  const odd = group.replace(`<rect fill`, `<rect stroke="red" fill`);
  assert.equal(rasterizeRectGrids(odd, new AssetStore(), ""), odd);
  // A grid with a hole is not a full grid.
  const holed = group.replace(rects[7], "");
  assert.equal(rasterizeRectGrids(holed, new AssetStore(), ""), holed);
});

Deno.test("report: markdown keeps TeX for MathJax and gives headings anchors", () => {
  const r = renderMarkdown(
    "## Loss *terms*\n\nKD uses $\\tau_{kd} = 20$ and $$\\frac{a_1}{b_2}$$.",
    new IdRegistry(),
  );
  assert.equal(r.maths, true);
  assert.deepEqual(r.headings, [{ text: "Loss terms", id: "loss-terms", depth: 2 }]);
  assert.match(r.html, /\$\\tau_\{kd\} = 20\$/); // underscores not turned into <em>
  assert.match(r.html, /\$\$\\frac\{a_1\}\{b_2\}\$\$/);
  assert.equal(renderMarkdown("costs 5 dollars", new IdRegistry()).maths, false);
});

Deno.test("report: verdict rule from the numbers", () => {
  const paper = { value: { mean: 98.4, std: 0.18 }, source: "t" };
  assert.equal(verdict(meanSpread([98.0]), paper, "paper").kind, "match"); // within 1 point
  const below = verdict(meanSpread([93.45]), paper, "laptop");
  assert.equal(below.kind, "below");
  assert.match(below.text, /below by 5\.0 points; expected at laptop scale/);
  // A wide spread over seeds widens the tolerance: 2 × 3.0 > |95 − 98.4|.
  assert.equal(verdict(meanSpread([92, 95, 98]), paper, "paper").kind, "match");
  assert.equal(verdict(meanSpread([50]), undefined, "laptop", true).text, "ablation: no paper number");
  const m = meanSpread([1, 2, 3]);
  assert.equal(m.mean, 2);
  assert.equal(m.spread, 1);
  assert.equal(meanSpread([4]).spread, undefined);
});

Deno.test("report: teacher queries are the row's own method's, not a shared cumulative ledger", () => {
  const base = { config: { samples: 400 }, ledger: { totals: { spent: 6_863_028 } } } as unknown as RunRecord;
  assert.equal(recordQueries({ ...base, metrics: { queriesPerSample: 2178.0225, trainedOn: 400 } }), 871_209);
  assert.equal(recordQueries({ ...base, metrics: { queries: 5 } }), 5);
  assert.equal(recordQueries({ ...base, metrics: {} }), 6_863_028);
  const nested = { generation: { totals: { spent: 10 } }, labeling: { totals: { spent: 5 } } };
  assert.equal(recordQueries({ config: {}, metrics: {}, ledger: nested } as unknown as RunRecord), 15);
});

// ---------------------------------------------------------------------------------------------
// End to end

async function run(cmd: string, args: string[], cwd = REPO): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${out}`);
  return out;
}

/** Every file under `dir`, relative, sorted, with its bytes. */
async function snapshot(dir: string, rel = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const names: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) names.push(e.name);
  for (const n of names.sort()) {
    const r = rel ? `${rel}/${n}` : n;
    const st = await Deno.stat(join(dir, r));
    if (st.isDirectory) { for (const [k, v] of await snapshot(dir, r)) out.set(k, v); }
    else out.set(r, await Deno.readFile(join(dir, r)));
  }
  return out;
}

/** The quickstart, importing the kit by absolute URL (so it runs from a temp folder), with a note added. */
async function annotatedQuickstart(dest: string): Promise<void> {
  const nb = JSON.parse(await Deno.readTextFile(join(REPO, "notebooks", "00_quickstart.ipynb")));
  const libUrl = pathToFileURL(join(REPO, "lib")).href;
  for (const c of nb.cells) {
    if (c.cell_type !== "code") continue;
    const src = Array.isArray(c.source) ? c.source.join("") : c.source;
    c.source = src.replaceAll(`"../lib/`, `"${libUrl}/`);
  }
  nb.cells.splice(2, 0, {
    cell_type: "markdown",
    id: "researcher-note",
    metadata: {},
    source:
      `### ${NOTE}\n\nWith soft targets at $\\tau = 1$ the student sees $$p_k = \\frac{e^{z_k}}{\\sum_j e^{z_j}}$$ ` +
      "instead of one-hot labels.",
  });
  await Deno.writeTextFile(dest, JSON.stringify(nb, null, 1));
}

// --- a minimal DevTools protocol client over Deno's WebSocket ---------------------------------

interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
}

class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #waiters: { method: string; resolve: (e: CdpEvent) => void }[] = [];
  events: CdpEvent[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${JSON.stringify(msg.error)})`));
        else p?.resolve(msg.result);
      } else {
        const ev = { method: msg.method, params: msg.params ?? {} };
        this.events.push(ev);
        const i = this.#waiters.findIndex((w) => w.method === ev.method);
        if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(ev);
      }
    };
  }

  static open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    return new Promise((res, rej) => {
      ws.onopen = () => res(new Cdp(ws));
      ws.onerror = () => rej(new Error(`cannot open the DevTools socket ${url}`));
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) =>
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
  }

  once(method: string): Promise<CdpEvent> {
    return new Promise((resolve) => this.#waiters.push({ method, resolve }));
  }

  /** Evaluate an expression in the page (promises awaited) and return its JSON value. */
  async eval<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`page script failed: ${JSON.stringify(r.exceptionDetails)}`);
    return (r.result as { value: T }).value;
  }

  close(): Promise<void> {
    return new Promise((res) => {
      if (this.#ws.readyState === WebSocket.CLOSED) return res();
      this.#ws.onclose = () => res();
      this.#ws.close();
    });
  }
}

/** Wait for a condition, polling; `what` names it in the error if it never comes. */
async function waitFor<T>(what: string, f: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** What is wrong on a loaded page, from the events Chromium sent. */
function pageProblems(events: CdpEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const p = e.params as Record<string, Record<string, unknown> & { [k: string]: unknown }>;
    if (e.method === "Runtime.consoleAPICalled" && p.type as unknown === "error") {
      out.push(`console.error: ${JSON.stringify(p.args)}`);
    } else if (e.method === "Runtime.exceptionThrown") {
      out.push(`exception: ${JSON.stringify(p.exceptionDetails)}`);
    } else if (e.method === "Log.entryAdded" && p.entry.level === "error") {
      out.push(`log: ${p.entry.text} ${p.entry.url ?? ""}`);
    } else if (e.method === "Network.loadingFailed") {
      out.push(`request failed: ${p.errorText as unknown as string} (${p.requestId as unknown as string})`);
    } else if (e.method === "Network.responseReceived" && Number(p.response.status) >= 400) {
      out.push(`HTTP ${p.response.status}: ${p.response.url}`);
    }
  }
  return out;
}

const MIME: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript",
  json: "application/json",
  csv: "text/csv",
  png: "image/png",
  svg: "image/svg+xml",
};

Deno.test({
  name: "report: smoke notebooks → deterministic site, checked in headless Chromium",
  // The runner, the report command and Chromium are real subprocesses; they are awaited and killed below.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await Deno.mkdir(join(RESULTS, "smoke"), { recursive: true });
    const tmp = await Deno.makeTempDir({ dir: join(RESULTS, "smoke"), prefix: "report-test-" });
    try {
      const src = join(tmp, "src");
      const executed = join(tmp, "notebooks");
      await Deno.mkdir(src, { recursive: true });
      await annotatedQuickstart(join(src, "00_quickstart.ipynb"));
      const hidden = join(src, "98_private_scratch.ipynb");
      await writeNotebook(hidden, [
        { md: "# Private scratch\n\nnot for sharing" },
        { code: 'let scale = "smoke";', tags: ["parameters"] }, // the runner always passes scale
        { code: "1 + 1" },
      ]);
      const h = JSON.parse(await Deno.readTextFile(hidden));
      h.metadata.boundary_kd = { report: false };
      await Deno.writeTextFile(hidden, JSON.stringify(h, null, 1));

      await t.step("execute three notebooks at smoke scale through the runner", async () => {
        await run(Deno.execPath(), [
          "run",
          "-A",
          "tools/notebooks.ts",
          "run",
          join(src, "00_quickstart.ipynb"),
          join(REPO, "notebooks", "10_db3_mnist.ipynb"),
          hidden,
          "--scale",
          "smoke",
          "--out",
          executed,
        ]);
        const names = [...Deno.readDirSync(executed)].map((e) => e.name).sort();
        assert.deepEqual(names, [
          "00_quickstart.smoke.ipynb",
          "10_db3_mnist.smoke.ipynb",
          "98_private_scratch.smoke.ipynb",
        ]);
      });

      const siteA = join(tmp, "site-a");
      const siteB = join(tmp, "site-b");
      const build = (out: string) =>
        run(Deno.execPath(), [
          "run",
          "-A",
          "tools/report.ts",
          "--scale",
          "smoke",
          "--notebooks",
          executed,
          "--runs",
          SMOKE_RUNS,
          "--out",
          out,
        ]);

      await t.step("the report command builds the same folder twice, byte for byte", async () => {
        const log = await build(siteA);
        assert.match(log, /2 notebook pages/);
        assert.match(log, /left out by their metadata: 98_private_scratch/);
        await build(siteB);
        await build(siteB); // rebuilding over an earlier report replaces it
        const a = await snapshot(siteA);
        const b = await snapshot(siteB);
        assert.deepEqual([...a.keys()], [...b.keys()]);
        for (const [k, v] of a) {
          assert.ok(b.get(k)!.length === v.length && b.get(k)!.every((x, i) => x === v[i]), k);
        }
        assert.ok(a.has("mathjax/MathJax.js"), "the page with maths brings its own MathJax");
        assert.ok(
          ![...a.keys()].some((k) => k.includes("98_private_scratch")),
          "the notebook marked out has no page",
        );
        const index = new TextDecoder().decode(a.get("index.html"));
        assert.ok(!index.includes("private"), "the index does not mention the notebook marked out");
        assert.ok(!index.includes(REPO), "no absolute paths in the site");
      });

      await t.step("a researcher's note stays where it was written", async () => {
        const page = await Deno.readTextFile(join(siteA, "00_quickstart.html"));
        const nb = JSON.parse(await Deno.readTextFile(join(executed, "00_quickstart.smoke.ipynb")));
        const srcNb = JSON.parse(await Deno.readTextFile(join(src, "00_quickstart.ipynb")));
        const text = (c: { source: string | string[] }) =>
          Array.isArray(c.source) ? c.source.join("") : c.source;
        const k = nb.cells.findIndex((c: { source: string | string[] }) => text(c).includes(NOTE));
        assert.ok(k > 0, "the executed copy keeps the note");
        assert.equal(text(nb.cells[k + 1]), text(srcNb.cells[3]), "same cell after it as in the source");
        const before = page.indexOf(`id="cell-${k - 1}"`);
        const note = page.indexOf(NOTE);
        const after = page.indexOf(`id="cell-${k + 1}"`);
        assert.ok(before > 0 && before < note && note < after, `note between cells ${k - 1} and ${k + 1}`);
        assert.ok(page.includes(String.raw`$\tau = 1$`), "TeX left for MathJax");
      });

      await t.step("one named notebook, and a clear error for one never executed", async () => {
        const one = await buildSite({
          notebooksDir: executed,
          runsDir: SMOKE_RUNS,
          outDir: join(tmp, "site-one"),
          scale: "smoke",
          names: ["10_db3_mnist"],
        });
        assert.deepEqual(one.pages, ["10_db3_mnist"]);
        assert.deepEqual([...one.files.keys()].filter((k) => k.endsWith(".html")).sort(), [
          "10_db3_mnist.html",
          "index.html",
        ]);
        assert.ok(one.rows >= 5, `CE, KD, SD, BD and MBD rows (${one.rows})`);
        await assert.rejects(
          buildSite({
            notebooksDir: executed,
            runsDir: SMOKE_RUNS,
            outDir: tmp,
            scale: "smoke",
            names: ["13_db3_ablations"],
          }),
          /no executed smoke copy of 13_db3_ablations .*tools\/notebooks\.ts run notebooks\/13_db3_ablations\.ipynb --scale smoke/,
        );
      });

      await t.step("a non-report folder is never overwritten", async () => {
        const other = join(tmp, "precious");
        await Deno.mkdir(other);
        await Deno.writeTextFile(join(other, "notes.txt"), "mine");
        await assert.rejects(build(other), /not empty and holds no \.report-site marker/);
        assert.equal(await Deno.readTextFile(join(other, "notes.txt")), "mine");
      });

      await t.step("index and a notebook page in headless Chromium", async () => {
        // Serve results/ so the site's relative links to results/smoke/runs resolve as on disk.
        const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
          const path = resolve(RESULTS, "." + decodeURIComponent(new URL(req.url).pathname));
          if (!path.startsWith(RESULTS + "/")) return new Response("outside", { status: 403 });
          try {
            const body = await Deno.readFile(path);
            const ext = path.split(".").pop() ?? "";
            return new Response(body, {
              headers: { "content-type": MIME[ext] ?? "application/octet-stream" },
            });
          } catch {
            return new Response("not found", { status: 404 });
          }
        });
        const base = `http://127.0.0.1:${server.addr.port}/${relative(RESULTS, siteA)}/`;
        const profile = join(tmp, "chromium-profile");
        await Deno.stat(CHROMIUM).catch(() => {
          throw new Error(
            `no Chromium at ${CHROMIUM}: run \`bash tools/setup.sh\` (installs Debian's chromium) or set BKD_CHROMIUM`,
          );
        });
        const chrome = new Deno.Command(CHROMIUM, {
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            `--user-data-dir=${profile}`,
            "--remote-debugging-port=0",
            "--window-size=1280,2000",
            "about:blank",
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        let cdp: Cdp | undefined;
        try {
          const port = await waitFor("Chromium's DevToolsActivePort file", async () => {
            const text = await Deno.readTextFile(join(profile, "DevToolsActivePort"));
            return text.split("\n")[0].trim() || undefined;
          });
          const target = await waitFor("a page target", async () => {
            const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
            return (list as { type: string; webSocketDebuggerUrl: string }[]).find((x) => x.type === "page");
          });
          cdp = await Cdp.open(target.webSocketDebuggerUrl);
          for (const d of ["Page", "Runtime", "Log", "Network"]) await cdp.send(`${d}.enable`);

          const open = async (page: string) => {
            cdp!.events = [];
            const loaded = cdp!.once("Page.loadEventFired");
            await cdp!.send("Page.navigate", { url: base + page });
            let timer: ReturnType<typeof setTimeout> | undefined;
            const stuck = new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`${page} never fired its load event`)), 120_000);
            });
            await Promise.race([loaded, stuck]).finally(() => clearTimeout(timer));
            // MathJax typesets after load; wait for its queue to drain when the page has it.
            await cdp!.eval(`window.MathJax ? new Promise((r) => MathJax.Hub.Queue(() => r(true))) : true`);
          };

          const checkLinks = async (page: string) => {
            const links = await cdp!.eval<string[]>(
              `[...document.querySelectorAll("a[href]")].map((a) => a.href)`,
            );
            assert.ok(links.length > 0, `${page} has links`);
            const texts = new Map<string, string>();
            for (const href of new Set(links)) {
              const u = new URL(href);
              assert.equal(u.origin, new URL(base).origin, `${page}: link leaves the site: ${href}`);
              const doc = u.href.replace(/#.*$/, "");
              if (!texts.has(doc)) {
                const res = await fetch(doc);
                assert.equal(res.status, 200, `${page}: broken link ${href}`);
                texts.set(doc, await res.text());
              }
              if (u.hash) {
                const id = decodeURIComponent(u.hash.slice(1));
                assert.ok(
                  texts.get(doc)!.includes(`id="${id}"`),
                  `${page}: anchor ${u.hash} missing in ${doc}`,
                );
              }
            }
            return links;
          };

          const checkFigures = async (page: string) => {
            const figs = await cdp!.eval<{ tag: string; w: number; h: number; ok: boolean }[]>(`
              [...document.querySelectorAll(".output svg, .output img")]
                .filter((el) => el.tagName === "IMG" || el.parentElement.closest("svg") === null)
                .map((el) => { const r = el.getBoundingClientRect();
                  return { tag: el.tagName, w: r.width, h: r.height,
                           ok: el.tagName !== "IMG" || (el.complete && el.naturalWidth > 0) }; })`);
            for (const f of figs) {
              assert.ok(f.w > 0 && f.h > 0 && f.ok, `${page}: invisible ${f.tag} ${JSON.stringify(f)}`);
            }
            return figs.length;
          };

          // Index
          await open("index.html");
          assert.deepEqual(pageProblems(cdp.events), [], "index.html loads cleanly");
          const rows = await cdp.eval<number>(
            `document.querySelectorAll("table.summary tbody tr:not(.group)").length`,
          );
          assert.ok(rows >= 8, `summary table has the quickstart and DB3 MNIST rows (${rows})`);
          const indexLinks = await checkLinks("index.html");
          assert.ok(
            indexLinks.some((h) => /smoke\/runs\/db3-mnist\/.+\.json$/.test(h)),
            "rows link to their JSON records",
          );
          assert.ok(indexLinks.some((h) => /smoke\/runs\/db3-mnist\.csv$/.test(h)), "rows link to their CSV");
          assert.ok(
            indexLinks.some((h) => /10_db3_mnist\.html#paper-vs-measured$/.test(h)),
            "rows link to the section",
          );

          // The annotated quickstart page: figures, maths, links.
          await open("00_quickstart.html");
          assert.deepEqual(pageProblems(cdp.events), [], "00_quickstart.html loads cleanly");
          const figures = await checkFigures("00_quickstart.html");
          assert.ok(figures >= 2, `quickstart shows its figures (${figures})`);
          const typeset = await cdp.eval<number>(
            `document.querySelectorAll(".MathJax_SVG, .MathJax_SVG_Display").length`,
          );
          assert.ok(typeset >= 2, `the note's maths is typeset by the local MathJax (${typeset})`);
          await checkLinks("00_quickstart.html");

          await open("10_db3_mnist.html");
          assert.deepEqual(pageProblems(cdp.events), [], "10_db3_mnist.html loads cleanly");
          assert.ok((await checkFigures("10_db3_mnist.html")) >= 1);
          await checkLinks("10_db3_mnist.html");

          await cdp.send("Browser.close").catch(() => {});
        } finally {
          await cdp?.close();
          try {
            chrome.kill("SIGKILL");
          } catch { /* already gone after Browser.close */ }
          await chrome.status;
          await server.shutdown();
        }
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
