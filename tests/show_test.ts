import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import { createProgress, formatDuration, formatProgressLine } from "../lib/show/progress.ts";
import { DISPLAY, html, isDisplayable, keyValues, md } from "../lib/show/display.ts";
import {
  barChart,
  decisionField,
  gridOfFigures,
  groupedBarsWithErrors,
  heatmap,
  histogram,
  isoSegments,
  lineChart,
  saveFigure,
} from "../lib/show/plots.ts";
import { imageGrid } from "../lib/show/images.ts";
import { crc32, encodePng, PNG_SIGNATURE } from "../lib/show/png.ts";

const SVG_NS = 'xmlns="http://www.w3.org/2000/svg"';

/** Count `<tag` elements inside the (possibly faceted, nested) group of a Plot mark. */
function marksIn(svg: string, label: string, tag = "rect"): number {
  let count = 0;
  const start = new RegExp(`<g\\b[^>]*aria-label="${label}"[^>]*>`, "g");
  for (const m of svg.matchAll(start)) {
    let depth = 1;
    let i = m.index! + m[0].length;
    const token = /<g\b[^>]*>|<\/g>/g;
    token.lastIndex = i;
    let end = svg.length;
    for (let t = token.exec(svg); t; t = token.exec(svg)) {
      depth += t[0] === "</g>" ? -1 : 1;
      if (depth === 0) {
        end = t.index;
        break;
      }
    }
    const inner = svg.slice(i, end);
    count += (inner.match(new RegExp(`<${tag}\\b`, "g")) ?? []).length;
    i = end;
  }
  return count;
}

/** Every `<svg` start tag carries the SVG namespace. */
function allSvgTagsHaveXmlns(markup: string): boolean {
  const tags = markup.match(/<svg\b[^>]*>/g) ?? [];
  return tags.length > 0 && tags.every((t) => t.includes(SVG_NS));
}

Deno.test("progress: plain mode prints sparse lines for 1,000 updates", () => {
  const lines: string[] = [];
  let t = 0;
  const p = createProgress({
    label: "train",
    total: 1000,
    unit: "img",
    mode: "plain",
    write: (s) => lines.push(...s.split("\n").filter((l) => l !== "")),
    now: () => t,
  });
  for (let i = 1; i <= 1000; i++) {
    t += 5; // 5 ms per update, 5 s in all: no heartbeat lines
    p.update(i, `loss ${(1 / i).toFixed(3)}`);
  }
  p.done("acc 0.97");
  assert.ok(lines.length >= 5 && lines.length <= 12, `got ${lines.length} lines`);
  assert.match(lines[lines.length - 1], /100%.*acc 0\.97/);
  assert.ok(lines.every((l) => !l.includes("\r")));
});

Deno.test("progress: tty mode redraws one line with \\r, throttled", () => {
  const out: string[] = [];
  let t = 0;
  const p = createProgress({ label: "x", total: 100, mode: "tty", write: (s) => out.push(s), now: () => t });
  for (let i = 1; i <= 100; i++) {
    t += 10; // 10 ms apart: ≤ 10 redraws per simulated second
    p.update(i);
  }
  p.done();
  assert.ok(out.length <= 12, `got ${out.length} writes`);
  assert.ok(out.every((s) => s.startsWith("\r")));
  assert.equal(out.join("").split("\n").length, 2, "exactly one newline, at the end");
});

Deno.test("progress: off mode writes nothing; flush resolves outside Jupyter", async () => {
  const out: string[] = [];
  const p = createProgress({ label: "x", total: 10, mode: "off", write: (s) => out.push(s) });
  for (let i = 0; i < 10; i++) p.update(i);
  await p.flush();
  p.done("ok");
  assert.equal(out.length, 0);
});

Deno.test("progress: line format", () => {
  const line = formatProgressLine({
    label: "L",
    done: 50,
    total: 200,
    unit: "img",
    elapsedSec: 10,
    info: "i",
  });
  assert.match(line, /25%/);
  assert.match(line, /50\/200 img/);
  assert.match(line, /5\.0 img\/s/);
  assert.match(line, /ETA 30s/);
  assert.equal(formatDuration(125), "2m05s");
  assert.equal(formatDuration(3720), "1h02m");
});

Deno.test("display: md, html and keyValues bundles", () => {
  const m = md`# Hello ${1 + 1}`;
  assert.equal(m[DISPLAY]()["text/markdown"], "# Hello 2");
  const h = html("<b>x</b>");
  assert.equal(h[DISPLAY]()["text/plain"], "x");
  const kv = keyValues({ epochs: 3, optimizer: { kind: "adam", lr: 0.001 } });
  const b = kv[DISPLAY]();
  assert.equal((String(b["text/html"]).match(/<tr>/g) ?? []).length, 3);
  assert.match(String(b["text/plain"]), /optimizer\.lr\s+0\.001/);
  assert.ok(isDisplayable(kv));
});

Deno.test("plots: lineChart with series has HTML legend and a plain SVG variant", () => {
  const rows = [1, 2, 3].flatMap((e) => [
    { epoch: e, acc: 0.5 + e / 10, method: "DB3" },
    { epoch: e, acc: 0.4 + e / 10, method: "CAKE" },
  ]);
  const fig = lineChart(rows, { x: "epoch", y: "acc", series: "method", title: "acc" });
  assert.ok(fig.html?.includes("<figure"));
  assert.ok(allSvgTagsHaveXmlns(fig.svg));
  assert.ok(allSvgTagsHaveXmlns(fig.html!));
  assert.equal(marksIn(fig.svg, "line", "path"), 2);
  const bundle = fig[DISPLAY]();
  assert.ok("text/html" in bundle && "image/svg+xml" in bundle && "text/plain" in bundle);
  assert.ok(fig.svg.includes(">DB3<") && fig.svg.includes(">CAKE<"), "legend drawn in SVG too");
});

Deno.test("plots: plain line chart is SVG only", () => {
  const fig = lineChart({ a: [{ x: 1, y: 2 }, { x: 2, y: 3 }] }, {});
  const fig2 = lineChart([{ x: 1, y: 2 }, { x: 2, y: 3 }]);
  assert.equal(fig2.html, undefined);
  assert.ok(fig2.svg.startsWith(`<svg ${SVG_NS}`) || fig2.svg.includes(SVG_NS));
  assert.equal(Object.keys(fig2[DISPLAY]()).sort().join(","), "image/svg+xml,text/plain");
  assert.ok(fig.html !== undefined); // a named series gets a legend
});

Deno.test("plots: barChart draws one bar per row with a value", () => {
  const rows = [
    { method: "KD", source: "paper", acc: 98.8 },
    { method: "KD", source: "measured", acc: 97.0 },
    { method: "CAKE", source: "paper", acc: 98.4 },
    { method: "CAKE", source: "measured", acc: null },
    { method: "ZSDB3KD", source: "paper", acc: 96.5 },
  ];
  const fig = barChart(rows, { x: "method", y: "acc", group: "source" });
  assert.equal(marksIn(fig.svg, "bar"), 4);
  assert.ok(allSvgTagsHaveXmlns(fig.svg));
});

Deno.test("plots: groupedBarsWithErrors draws bars and whiskers", () => {
  const rows = [
    { method: "a", seedSet: "x", acc: 90, std: 1 },
    { method: "a", seedSet: "y", acc: 80, std: 2 },
    { method: "b", seedSet: "x", acc: 70 },
  ];
  const fig = groupedBarsWithErrors(rows, { x: "method", y: "acc", group: "seedSet" });
  assert.equal(marksIn(fig.svg, "bar"), 3);
  assert.equal(marksIn(fig.svg, "tick", "line"), 4); // two caps per whisker, rows with std only
});

Deno.test("plots: heatmap has one cell and one label per finite value", () => {
  const fig = heatmap({
    rows: ["MLP", "CNN"],
    cols: ["MLP", "CNN", "ViT"],
    values: [[97.7, 90.4, null], [63.4, 98.5, 11.9]],
  }, {
    legend: "acc",
    title: "t",
  });
  assert.equal(marksIn(fig.svg, "cell"), 5);
  assert.equal(marksIn(fig.svg, "text", "text"), 5);
  assert.ok(fig.svg.includes(">98.5<"));
  assert.ok(allSvgTagsHaveXmlns(fig.svg));
  assert.ok(fig.svg.includes("linearGradient"));
});

Deno.test("plots: histogram and decisionField render as SVG", () => {
  const h = histogram(Array.from({ length: 200 }, (_, i) => (i % 17) / 17), { bins: 10 });
  assert.ok(marksIn(h.svg, "rect") >= 5);
  const nx = 8;
  const ny = 6;
  const values = Float32Array.from({ length: nx * ny }, (_, k) => (k % nx) / (nx - 1));
  const f = decisionField({
    grid: { x0: -1, x1: 1, y0: -1, y1: 1, nx, ny },
    values,
    points: { x: [0, 0.5, -0.5], y: [0, 0.2, -0.2], labels: [0, 1, 1] },
    classNames: ["left", "right"],
  });
  assert.equal(marksIn(f.svg, "rect"), nx * ny);
  assert.equal(marksIn(f.svg, "dot", "circle"), 3);
  assert.equal(marksIn(f.svg, "link", "path"), ny - 1, "one iso-line segment per row of squares");
  assert.ok(f.svg.includes(">left<") && allSvgTagsHaveXmlns(f.svg));
});

Deno.test("plots: gridOfFigures nests figures and saveFigure writes files", async () => {
  const a = lineChart([{ x: 1, y: 1 }, { x: 2, y: 2 }], { width: 200, height: 150 });
  const b = barChart([{ method: "m", value: 1 }], { width: 220, height: 150 });
  const g = gridOfFigures([a, b, a, b], { cols: 2, titles: ["1", "2", "3", "4"] });
  assert.equal((g.svg.match(/<svg\b/g) ?? []).length, 5);
  assert.equal(g.width, 200 + 220 + 12);
  assert.ok(allSvgTagsHaveXmlns(g.svg));
  const dir = await Deno.makeTempDir();
  try {
    await saveFigure(g, `${dir}/sub/g.svg`);
    await saveFigure(g, `${dir}/g.html`);
    assert.match(await Deno.readTextFile(`${dir}/sub/g.svg`), /^<\?xml[\s\S]*<svg /);
    assert.match(await Deno.readTextFile(`${dir}/g.html`), /<!DOCTYPE html>/);
    await assert.rejects(() => saveFigure(g, `${dir}/g.pdf`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Chunk {
  type: string;
  data: Uint8Array;
  crc: number;
  crcInput: Uint8Array;
}

function readChunks(png: Uint8Array): Chunk[] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  let o = 8;
  while (o < png.length) {
    const len = v.getUint32(o);
    const type = new TextDecoder().decode(png.subarray(o + 4, o + 8));
    out.push({
      type,
      data: png.subarray(o + 8, o + 8 + len),
      crc: v.getUint32(o + 8 + len),
      crcInput: png.subarray(o + 4, o + 8 + len),
    });
    o += 12 + len;
  }
  return out;
}

function decodeGray(png: Uint8Array, channels: number): { w: number; h: number; pixels: Uint8Array } {
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const chunks = readChunks(png);
  assert.deepEqual(chunks.map((c) => c.type), ["IHDR", "IDAT", "IEND"]);
  for (const c of chunks) assert.equal(c.crc, zlib.crc32(c.crcInput) >>> 0, `CRC of ${c.type}`);
  const ih = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
  const w = ih.getUint32(0);
  const h = ih.getUint32(4);
  assert.equal(chunks[0].data[8], 8);
  assert.equal(chunks[0].data[9], channels === 1 ? 0 : 2);
  const raw = new Uint8Array(zlib.inflateSync(chunks[1].data));
  const stride = w * channels;
  assert.equal(raw.length, (stride + 1) * h);
  const pixels = new Uint8Array(stride * h);
  for (let y = 0; y < h; y++) {
    assert.equal(raw[y * (stride + 1)], 0, "filter type None");
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { w, h, pixels };
}

Deno.test("png: encoder output decodes to the same pixels (gray and RGB)", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const gray = Uint8Array.from({ length: 5 * 3 }, (_, i) => (i * 17) & 255);
  const g = decodeGray(encodePng(gray, 5, 3, 1), 1);
  assert.deepEqual([g.w, g.h], [5, 3]);
  assert.deepEqual(g.pixels, gray);
  const rgb = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => (i * 29) & 255);
  const c = decodeGray(encodePng(rgb, 4, 2, 3), 3);
  assert.deepEqual(c.pixels, rgb);
});

Deno.test("images: imageGrid lays out, clips and min-max normalises", () => {
  // two 2×2 gray images: one with values outside [0,1], one constant
  const x = Float32Array.from([-0.5, 0.25, 0.5, 1.5, 0.2, 0.2, 0.2, 0.2]);
  const grid = imageGrid(x, [2, 2, 2, 1], { cols: 2, scale: 1, pad: 0 });
  const d = decodeGray(grid.png, 1);
  assert.deepEqual([d.w, d.h], [4, 2]);
  assert.deepEqual([...d.pixels], [0, 64, 51, 51, 128, 255, 51, 51]);
  const mm = decodeGray(
    imageGrid(x, [2, 2, 2, 1], { cols: 2, scale: 1, pad: 0, normalize: "minmax" }).png,
    1,
  );
  assert.deepEqual([...mm.pixels.subarray(0, 2)], [0, 96]);
  assert.equal(mm.pixels[5], 255);
  const b = grid[DISPLAY]();
  assert.equal(typeof b["image/png"], "string");
  assert.deepEqual(Object.keys(b).sort(), ["image/png", "text/plain"]);
  assert.ok(grid.dataUri.startsWith("data:image/png;base64,"));
  assert.equal(atob(String(b["image/png"])).length, grid.png.length);
});

Deno.test("images: RGB grid with labels, scale and padding", () => {
  const n = 5;
  const x = new Float32Array(n * 3 * 3 * 3).fill(1);
  const grid = imageGrid(x, [n, 3, 3, 3], { cols: 3, scale: 2, pad: 1, labels: [0, 1, 2, 3, 4] });
  const d = decodeGray(grid.png, 3);
  // 3 cols × 6 px + 4 pads × 2 px; 2 rows × 6 px + 3 pads × 2 px
  assert.deepEqual([d.w, d.h], [26, 18]);
  assert.deepEqual(grid.grid, { rows: 2, cols: 3 });
  assert.equal((grid.svg.match(/<text\b/g) ?? []).length, 5);
  assert.ok("text/html" in grid[DISPLAY]());
  assert.ok(allSvgTagsHaveXmlns(grid.svg));
});

Deno.test("plots: isoSegments finds the level line of a linear field", () => {
  const grid = { x0: 0, x1: 4, y0: 0, y1: 2, nx: 4, ny: 2 };
  // value = x at cell centres 0.5, 1.5, 2.5, 3.5; level 2 lies between columns 1 and 2
  const values = [0.5, 1.5, 2.5, 3.5, 0.5, 1.5, 2.5, 3.5];
  const segs = isoSegments(values, grid, 2);
  assert.deepEqual(segs, [{ x1: 2, y1: 0.5, x2: 2, y2: 1.5 }]);
});
