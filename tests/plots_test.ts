/**
 * Every plot helper rendered on fixed data, and the SVG's structure checked: overlaid histogram
 * groups share one baseline, category tick labels do not overlap at the default width, one legend
 * per figure, the chance line where asked, and fixed paper/measured colours.
 */
import assert from "node:assert/strict";
import { parseHTML } from "linkedom";
import {
  barChart,
  decisionField,
  type DecisionFieldInput,
  gridOfFigures,
  groupedBarsWithErrors,
  heatmap,
  histogram,
  histogramBins,
  lineChart,
  pointsOutside,
  textWidth,
  tickLayout,
} from "../lib/show/plots.ts";
import { colorRange, MEASURED_COLOR, PAPER_COLOR, SERIES_COLORS } from "../lib/show/colors.ts";
import { figureOneGrid, outsideNote, teacherFigure, twoMoonsBars } from "../lib/views/cake.ts";
import type { TwoMoonsFigureResult } from "../lib/views/cake_results.ts";
import { distanceRows } from "../lib/views/zeroshot.ts";
import type { PseudoSet } from "../lib/zeroshot/generate.ts";

/** The bits of a linkedom element the checks use. */
interface El {
  tagName: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelectorAll(sel: string): ArrayLike<El>;
  parentNode: El | null;
}

function parseSvg(svg: string): El {
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const { document } = parseHTML(`<!DOCTYPE html><html><body>${svg}</body></html>`) as unknown as {
    document: { querySelector(sel: string): El | null };
  };
  const root = document.querySelector("svg");
  assert.ok(root, "no <svg> root");
  return root;
}

function all(root: El, sel: string): El[] {
  return Array.from(root.querySelectorAll(sel));
}

/** `translate(x,y) rotate(a)` of a tick label, plus the translate of a facet's wrapping `<g>`. */
function placement(el: El): { x: number; y: number; rotate: number } {
  const shift = (e: El | null) => {
    const m = (e?.getAttribute("transform") ?? "").match(/translate\(([-\d.e]+),\s*([-\d.e]+)\)/);
    return { x: Number(m?.[1] ?? 0), y: Number(m?.[2] ?? 0) };
  };
  const own = shift(el);
  const facet = el.parentNode && el.parentNode.getAttribute("aria-label") === null
    ? shift(el.parentNode)
    : { x: 0, y: 0 };
  const r = (el.getAttribute("transform") ?? "").match(/rotate\(([-\d.e]+)\)/);
  return { x: own.x + facet.x, y: own.y + facet.y, rotate: Number(r?.[1] ?? 0) };
}

/**
 * Assert that neighbouring tick labels do not overlap: horizontal labels need half their widths on
 * each side; labels rotated by θ are parallel, so they need their baselines one text line apart
 * (horizontal spacing × sin θ ≥ font size).
 */
function assertTicksApart(labels: El[], fontSize = 10): void {
  assert.ok(labels.length >= 2, "expected several tick labels");
  const ps = labels.map((l) => ({ ...placement(l), text: l.textContent ?? "" })).sort((a, b) => a.x - b.x);
  for (let i = 1; i < ps.length; i++) {
    const [a, b] = [ps[i - 1], ps[i]];
    const dx = b.x - a.x;
    assert.equal(a.rotate, b.rotate, "all tick labels rotate alike");
    if (a.rotate === 0) {
      const need = (textWidth(a.text, fontSize) + textWidth(b.text, fontSize)) / 2;
      assert.ok(dx >= need, `"${a.text}" and "${b.text}" overlap: ${dx.toFixed(1)} px apart, need ${need}`);
    } else {
      const gap = dx * Math.sin((Math.abs(a.rotate) * Math.PI) / 180);
      assert.ok(gap >= fontSize, `rotated "${a.text}" and "${b.text}" are ${gap.toFixed(1)} px apart`);
    }
  }
}

/** Fill colours of the swatches of composeSvg's legend (rects 15×15). */
function swatches(root: El): { label: string; color: string }[] {
  return all(root, "rect").filter((r) =>
    r.getAttribute("width") === "15" && r.getAttribute("height") === "15"
  )
    .map((r) => {
      const x = Number(r.getAttribute("x"));
      const y = Number(r.getAttribute("y"));
      const text = all(r.parentNode!, "text").find((t) =>
        Number(t.getAttribute("x")) === x + 21 && Number(t.getAttribute("y")) === y + 11
      );
      return { label: text?.textContent ?? "", color: r.getAttribute("fill") ?? "" };
    });
}

const ABLATION_LABELS = [
  "full (all terms)",
  "no contrastive term",
  "no TV prior",
  "no noise on the samples",
  "LAKE (logits only)",
  "noise magnitude ×0.1",
  "noise magnitude ×10",
];

Deno.test("plots: overlaid histogram groups are counted in the same bins and share one baseline", () => {
  // Group "iteration 0" has 8 values in [0, 1), "iteration 10" has 3 of them in the same bins.
  const rows = [
    ...[0.1, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9].map((v) => ({ d: v, when: "iteration 0" })),
    ...[0.1, 0.15, 0.9].map((v) => ({ d: v, when: "iteration 10" })),
  ];
  const bins = histogramBins(rows.map((r) => ({ value: r.d, group: r.when })), 4);
  const count = (g: string) => bins.filter((b) => b.group === g).map((b) => b.count);
  assert.deepEqual(count("iteration 0"), [4, 0, 2, 2]);
  assert.deepEqual(count("iteration 10"), [2, 0, 0, 1]);
  const f = histogram(rows, { x: "d", group: "when", bins: 4 });
  const root = parseSvg(f.svg);
  const inner = all(root, "svg")[0];
  const bars = all(inner, 'g[aria-label="rect"] rect');
  assert.equal(bars.length, 5, "one bar per non-empty (group, bin)");
  const zero = all(inner, 'g[aria-label="rule"] line').map((l) => Number(l.getAttribute("y1")));
  assert.equal(zero.length, 1);
  const heightPerCount = new Set<string>();
  const byColor = new Map<string, number[]>();
  for (const b of bars) {
    const bottom = Number(b.getAttribute("y")) + Number(b.getAttribute("height"));
    assert.ok(Math.abs(bottom - zero[0]) < 1e-6, `bar bottom ${bottom} is not the zero line ${zero[0]}`);
    const fill = b.getAttribute("fill")!;
    byColor.set(fill, [...(byColor.get(fill) ?? []), Number(b.getAttribute("height"))]);
  }
  // Each bar's height is its own group's count (not the sum of groups): heights ∝ counts.
  const [c0, c1] = colorRange(["iteration 0", "iteration 10"]);
  const h0 = byColor.get(c0)!, h1 = byColor.get(c1)!;
  assert.deepEqual(h0.map((h) => h / h0[0]), [1, 0.5, 0.5]);
  assert.deepEqual(h1.map((h) => h / h0[0]), [0.5, 0.25]);
  for (const h of [...h0, ...h1]) heightPerCount.add((h / (h0[0] / 4)).toFixed(6));
  assert.deepEqual([...heightPerCount].sort(), ["1.000000", "2.000000", "4.000000"]);
  assert.equal(swatches(root).length, 2, "one legend with two groups");
  // The histogram without groups still draws one series.
  const plain = parseSvg(histogram([1, 2, 2, 3], { bins: 3 }).svg);
  assert.equal(all(plain, 'g[aria-label="rect"] rect').length, 3);
});

Deno.test("plots: distance histogram rows use the text's iteration numbers (0 = raw noise)", () => {
  const set = {
    distances: [Float32Array.of(1, 2, NaN), Float32Array.of(0.5), Float32Array.of(0.25, 0.3)],
  } as unknown as PseudoSet;
  const rows = distanceRows(set);
  assert.deepEqual(rows.map((r) => r.when), [
    "iteration 0 (raw noise)",
    "iteration 0 (raw noise)",
    "iteration 2",
    "iteration 2",
  ]);
});

Deno.test("plots: category tick labels do not overlap at the default width", () => {
  const rows = ABLATION_LABELS.map((method, i) => ({ method, value: 40 + i }));
  for (const fig of [barChart(rows), barChart(rows.slice(0, 3))]) {
    const root = parseSvg(fig.svg);
    assertTicksApart(all(root, 'g[aria-label="x-axis tick label"] text'));
  }
  // Grouped bars put the categories on the facet axis.
  const grouped = ABLATION_LABELS.flatMap((variant, i) => [
    { variant, dataset: "two-moons", value: 90 - i, std: 1 },
    { variant, dataset: "MNIST", value: 80 - i, std: 2 },
  ]);
  const root = parseSvg(groupedBarsWithErrors(grouped, { x: "variant", group: "dataset" }).svg);
  assertTicksApart(all(root, 'g[aria-label="fx-axis tick label"] text'));
  // The layout rule itself: short labels stay horizontal, long ones rotate until one line apart.
  assert.equal(tickLayout(["a", "b", "c"], 600).rotate, 0);
  const tight = tickLayout(ABLATION_LABELS, 580);
  assert.ok(tight.rotate < 0);
  assert.ok(tight.band * Math.sin((-tight.rotate * Math.PI) / 180) >= 12);
  assert.ok(tickLayout(["x".repeat(80)], 600).labels[0].length <= 30, "very long labels are shortened");
});

Deno.test("plots: chance line drawn where asked, not elsewhere", () => {
  const rows = [{ method: "SD", value: 23 }, { method: "BD", value: 15 }];
  const withChance = parseSvg(barChart(rows, { chance: 10 }).svg);
  const dashed = all(withChance, 'g[stroke-dasharray="6,4"] line');
  assert.equal(dashed.length, 1);
  const y10 = Number(dashed[0].getAttribute("y1"));
  const zero = Number(all(withChance, 'g[aria-label="rule"] line')[0].getAttribute("y1"));
  assert.ok(y10 < zero, "chance line above the zero line");
  assert.ok(all(withChance, "text").some((t) => t.textContent === "chance 10"));
  const without = parseSvg(barChart(rows).svg);
  assert.equal(all(without, 'g[stroke-dasharray="6,4"]').length, 0);
  const line = parseSvg(lineChart({ a: [{ x: 0, y: 20 }, { x: 1, y: 30 }] }, { chance: 10 }).svg);
  assert.ok(all(line, "text").some((t) => t.textContent === "chance 10"));
});

Deno.test("plots: paper and measured keep their colours whatever the row order", () => {
  assert.deepEqual(colorRange(["measured (laptop)", "paper (table B, unverified)"]), [
    MEASURED_COLOR,
    PAPER_COLOR,
  ]);
  assert.deepEqual(colorRange(["paper", "measured (smoke)", "other"]), [
    PAPER_COLOR,
    MEASURED_COLOR,
    SERIES_COLORS.find((c) => c !== PAPER_COLOR && c !== MEASURED_COLOR),
  ]);
  const fillsOf = (rows: { method: string; source: string; value: number }[]) => {
    const root = parseSvg(barChart(rows, { x: "method", group: "source" }).svg);
    const out = new Map<string, string>();
    for (const s of swatches(root)) out.set(s.label, s.color);
    return out;
  };
  const a = fillsOf([
    { method: "SD", source: "measured (laptop)", value: 20 },
    { method: "SD", source: "paper", value: 78 },
  ]);
  const b = fillsOf([
    { method: "SD", source: "paper", value: 78 },
    { method: "SD", source: "measured (laptop)", value: 20 },
  ]);
  assert.equal(a.get("paper"), PAPER_COLOR);
  assert.equal(b.get("paper"), PAPER_COLOR);
  assert.equal(a.get("measured (laptop)"), MEASURED_COLOR);
  assert.equal(b.get("measured (laptop)"), MEASURED_COLOR);
});

function field(points?: DecisionFieldInput["points"]): DecisionFieldInput {
  const grid = { x0: -1, x1: 1, y0: -1, y1: 1, nx: 4, ny: 4 };
  const values = Float32Array.from({ length: 16 }, (_, k) => (k % 4) / 3);
  return { grid, values, points };
}

Deno.test("plots: a grid of decision fields draws its legend once and counts samples outside the square", () => {
  const inside = { x: Float32Array.of(0, 0.5), y: Float32Array.of(0, -0.5), labels: Int32Array.of(0, 1) };
  const far = { x: Float32Array.of(40, -50, 0), y: Float32Array.of(0, 9, 0), labels: Int32Array.of(0, 1, 1) };
  assert.deepEqual(pointsOutside(field(far)), { outside: 2, total: 3 });
  assert.equal(outsideNote(field(far)), " (2/3 outside)");
  assert.equal(outsideNote(field(inside)), "");
  const method = (name: "naive" | "generator" | "cake", pts: typeof inside) => ({
    method: name,
    accuracy: 0.5,
    field: field(),
    points: pts,
    meanRadius: 1,
    synthSeconds: 0,
    teacherForward: 0,
    teacherBackward: 0,
    record: {},
  });
  const allFar = { x: Float32Array.of(40, 50), y: Float32Array.of(40, 50), labels: Int32Array.of(0, 1) };
  const result = {
    seeds: [{
      seed: 1,
      teacherAccuracy: 1,
      teacherField: field(inside),
      methods: [method("naive", inside), method("generator", allFar), method("cake", inside)],
    }],
  } as unknown as TwoMoonsFigureResult;
  const fig = figureOneGrid(result, 0, 160, 4);
  const root = parseSvg(fig.svg);
  const labels = all(root, "text").map((t) => t.textContent);
  assert.equal(labels.filter((t) => t === "class 0").length, 1, "legend drawn once in the SVG");
  if (fig.html !== undefined) {
    assert.equal(fig.html.split(">class 0<").length - 1, 1, "legend drawn once in the HTML");
  }
  assert.ok(labels.includes("generator: samples (all 2 outside)"));
  assert.ok(labels.includes("naive CE: samples on teacher"));
  const teacher = parseSvg(teacherFigure(result, 0, 200, 4).svg);
  assert.equal(swatches(teacher).length, 4, "a lone teacher field keeps its legend");
  // A single field still carries its own legend unless told otherwise.
  assert.equal(swatches(parseSvg(decisionField(field(inside)).svg)).length, 4);
  assert.equal(swatches(parseSvg(decisionField(field(inside), { legend: false }).svg)).length, 0);
});

Deno.test("plots: line chart, heatmap and a plain grid render one legend each", () => {
  const line = lineChart([
    { x: 1, y: 10, series: "paper" },
    { x: 2, y: 12, series: "paper" },
    { x: 1, y: 8, series: "measured (laptop)" },
    { x: 2, y: 9, series: "measured (laptop)" },
  ]);
  const lroot = parseSvg(line.svg);
  const sw = swatches(lroot);
  assert.deepEqual(sw.map((s) => s.label), ["paper", "measured (laptop)"]);
  assert.deepEqual(sw.map((s) => s.color), [PAPER_COLOR, MEASURED_COLOR]);
  const strokes = all(lroot, 'g[aria-label="line"] path').map((p) => p.getAttribute("stroke"));
  assert.deepEqual(strokes.sort(), [MEASURED_COLOR, PAPER_COLOR].sort());
  const hm = heatmap({ rows: ["a", "b"], cols: ["x", "y"], values: [[1, 2], [3, null]] }, { legend: "acc" });
  const hroot = parseSvg(hm.svg);
  assert.equal(all(hroot, "linearGradient").length, 1);
  assert.equal(all(hroot, 'g[aria-label="cell"] rect').length, 3);
  const grid = gridOfFigures([barChart([{ method: "a", value: 1 }]), hm], {
    cols: 2,
    titles: ["bars", "map"],
  });
  const groot = parseSvg(grid.svg);
  assert.equal(all(groot, "linearGradient").length, 1);
  assert.equal(all(groot, ":scope > svg").length + all(groot, "svg").length >= 2, true);
});

Deno.test("plots: one seed draws no whisker (no fake ± 0), several seeds draw one per bar", () => {
  const summary = [
    { method: "cake", mean: 0.9, std: 0, values: [0.9] },
    { method: "naive", mean: 0.8, std: 0, values: [0.8] },
  ];
  const one = twoMoonsBars({ summary } as unknown as Parameters<typeof twoMoonsBars>[0]);
  assert.ok(one.every((r) => r.std === undefined));
  const root1 = parseSvg(groupedBarsWithErrors(one, { x: "method" }).svg);
  assert.equal(all(root1, 'g[aria-label="rule"] line').length, 1, "only the zero line");
  const three = twoMoonsBars(
    {
      summary: summary.map((x) => ({ ...x, std: 0.01, values: [x.mean - 0.01, x.mean, x.mean + 0.01] })),
    } as unknown as Parameters<typeof twoMoonsBars>[0],
  );
  const root3 = parseSvg(groupedBarsWithErrors(three, { x: "method" }).svg);
  assert.equal(all(root3, 'g[aria-label="rule"] line').length, 1 + 2, "zero line and two whiskers");
});
