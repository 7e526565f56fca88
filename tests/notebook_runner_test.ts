/**
 * The headless notebook runner: outputs survive Deno's idle-before-output race, failures fail,
 * parameters are injected without touching the source, ANSI codes are stripped.
 * Notebooks are authored with tools/nb.ts into a temp dir and run through tools/run_notebook.py.
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildNotebook, type CellInput, writeNotebook } from "../tools/nb.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RUNNER = join(REPO, "tools", "run_notebook.py");
const PYTHON = Deno.env.get("BKD_PYTHON") ?? "/usr/bin/python3";

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
interface Cell {
  cell_type: string;
  source: string | string[];
  metadata: { tags?: string[] };
  outputs?: Output[];
}
interface Notebook {
  cells: Cell[];
  metadata: Record<string, Record<string, unknown>>;
}

const joined = (s: string | string[] | undefined) => Array.isArray(s) ? s.join("") : s ?? "";

/** Write `cells` to a temp notebook, run it, and return the exit status, stderr and result. */
async function runNotebook(dir: string, name: string, cells: CellInput[], extra: string[] = []) {
  const src = join(dir, `${name}.ipynb`);
  const out = join(dir, `${name}.out.ipynb`);
  await writeNotebook(src, cells);
  const r = await new Deno.Command(PYTHON, { args: [RUNNER, src, out, ...extra], stdin: "null" })
    .output();
  const nb = JSON.parse(await Deno.readTextFile(out)) as Notebook;
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr), nb, src };
}

Deno.test("nb.ts writes nbformat 4.5 with the deno-bkd kernelspec", () => {
  const nb = buildNotebook([{ md: "# t" }, { code: "let a = 1;\na", tags: ["parameters"] }]) as {
    nbformat: number;
    nbformat_minor: number;
    metadata: { kernelspec: { name: string }; language_info: { name: string } };
    cells: { id: string; source: string[]; outputs?: unknown[]; metadata: { tags?: string[] } }[];
  };
  assert.equal(nb.nbformat, 4);
  assert.equal(nb.nbformat_minor, 5);
  assert.equal(nb.metadata.kernelspec.name, "deno-bkd");
  assert.equal(nb.metadata.language_info.name, "typescript");
  assert.deepEqual(nb.cells[1].source, ["let a = 1;\n", "a"]);
  assert.deepEqual(nb.cells[1].outputs, []);
  assert.deepEqual(nb.cells[1].metadata.tags, ["parameters"]);
  assert.notEqual(nb.cells[0].id, nb.cells[1].id);
});

Deno.test("every cell keeps its outputs across 10 runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  // One cell per output kind; `expect` is the MIME type (or stream) that must appear in each.
  const cells: { code: string; expect: string }[] = [
    { code: 'console.log("hello from stdout")', expect: "stream" },
    { code: "6 * 7", expect: "text/plain" },
    { code: 'Deno.jupyter.display({ "text/plain": "raw bundle" }, { raw: true })', expect: "text/plain" },
    { code: "Deno.jupyter.md`**bold**`", expect: "text/markdown" },
    { code: "Deno.jupyter.html`<b>html</b>`", expect: "text/html" },
    { code: 'Deno.jupyter.svg`<svg xmlns="http://www.w3.org/2000/svg"></svg>`', expect: "image/svg+xml" },
  ];
  try {
    for (let run = 0; run < 10; run++) {
      const r = await runNotebook(dir, `outputs${run}`, cells.map(({ code }) => ({ code })));
      assert.equal(r.code, 0, r.stderr);
      r.nb.cells.forEach((cell, i) => {
        const kinds = (cell.outputs ?? []).flatMap((o) =>
          o.output_type === "stream" ? ["stream"] : Object.keys(o.data ?? {})
        );
        assert.ok(
          kinds.includes(cells[i].expect),
          `run ${run}, cell ${i}: got [${kinds}], want ${cells[i].expect}`,
        );
      });
      const text = JSON.stringify(r.nb.cells);
      assert.ok(text.includes("hello from stdout") && text.includes("42"), `run ${run}: values missing`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing cell fails the run and is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  try {
    const r = await runNotebook(dir, "fails", [
      { md: "# fails" },
      { code: "const fine = 1;" },
      { code: '// the bad one\nthrow new RangeError("boom-1234")' },
      { code: 'console.log("never runs")' },
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cell 2 failed/);
    assert.match(r.stderr, /\/\/ the bad one/); // source head
    assert.match(r.stderr, /RangeError: boom-1234/);
    assert.equal(r.nb.cells[3].outputs?.length, 0, "cells after the failure must not run");
    assert.equal(r.nb.metadata.bkd_execution.status, "failed");
    assert.equal(r.nb.metadata.bkd_execution.failed_cell, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parameters are injected after the parameters cell; source unchanged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  try {
    const cells: CellInput[] = [
      { code: 'let scale = "laptop";\nlet seed = 1;', tags: ["parameters"] },
      { code: "console.log(`scale=${scale} seed=${seed} ${typeof seed}`)" },
    ];
    const r = await runNotebook(dir, "params", cells, ["-p", "scale=smoke", "-p", "seed=2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.nb.cells[1].metadata.tags, ["injected-parameters"]);
    assert.match(joined(r.nb.cells[1].source), /scale = "smoke";/);
    assert.equal(joined(r.nb.cells[2].outputs?.[0]?.text), "scale=smoke seed=2 number\n");
    assert.ok(typeof r.nb.metadata.bkd_execution.wall_seconds === "number");
    // The source notebook is byte-for-byte what nb.ts wrote.
    assert.equal(await Deno.readTextFile(r.src), JSON.stringify(buildNotebook(cells), null, 1) + "\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ANSI escape codes are stripped from outputs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  try {
    const r = await runNotebook(dir, "ansi", [
      { code: 'console.log("\\x1b[31mred\\x1b[0m plain")' },
      { code: 'console.error("\\x1b[1;32mgreen\\x1b[0m")' },
      { code: '"\\x1b[4munderlined\\x1b[0m"' },
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = JSON.stringify(r.nb.cells.map((c) => c.outputs));
    assert.ok(!text.includes("\\u001b"), `escape left in ${text}`);
    assert.ok(text.includes("red plain") && text.includes("green") && text.includes("underlined"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notebooks.ts runs a notebook dir and names the output by scale", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  try {
    await writeNotebook(join(dir, "01_env.ipynb"), [
      { code: 'let scale = "laptop";', tags: ["parameters"] },
      { code: "console.log(`${scale}/${Deno.env.get('BKD_SCALE')}`)" },
    ]);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(REPO, "tools", "notebooks.ts"), "run", join(dir, "01_env.ipynb")]
        .concat(["--scale", "smoke", "--out", join(dir, "out")]),
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, stdout + new TextDecoder().decode(r.stderr));
    assert.match(stdout, /^ok .* 01_env\.ipynb/m);
    const nb = JSON.parse(await Deno.readTextFile(join(dir, "out", "01_env.smoke.ipynb"))) as Notebook;
    assert.equal(joined(nb.cells[2].outputs?.[0]?.text), "smoke/smoke\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the runner's status line shows the notebook, cell n/N, its first line and the cell's progress bar", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-nb-" });
  try {
    const progressTs = new URL("../lib/show/progress.ts", import.meta.url).href;
    const cells: CellInput[] = [
      { code: `import { createProgress } from ${JSON.stringify(progressTs)};` },
      {
        code: [
          "// fake training",
          'const p = createProgress({ label: "fake epoch", total: 3, unit: "batch" });',
          "for (let i = 1; i <= 3; i++) p.update(i);",
          'p.done("loss 0.123");',
          "await p.flush();",
        ].join("\n"),
      },
    ];
    // `tty` rendering into a pipe: every redraw is a carriage-return line we can read back.
    const r = await runNotebook(dir, "status", cells, ["--progress", "tty"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\r").map((l) => l.replaceAll("\x1b[K", ""));
    assert.ok(
      lines.some((l) => /^status\.ipynb {2}cell 1\/2 {2}\d+:\d\d {2}import \{ createProgress \}/.test(l)),
    );
    assert.ok(
      lines.some((l) =>
        /^status\.ipynb {2}cell 2\/2 {2}\d+:\d\d {2}\/\/ fake training {2}\| .*fake epoch .*loss 0\.123/.test(
          l,
        )
      ),
      JSON.stringify(lines),
    );
    assert.ok(
      r.stderr.endsWith("\r\x1b[K"),
      `the line is cleared at the end: ${JSON.stringify(r.stderr.slice(-40))}`,
    );
    // `off` draws nothing.
    const quiet = await runNotebook(dir, "quiet", cells, ["--progress", "off"]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.ok(!quiet.stderr.includes("cell 1/2"), quiet.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
