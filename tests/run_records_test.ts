/**
 * Run-record provenance and retirement against real git repositories, real subprocesses and real
 * files: one commit and execution id per process, a dirty tree flagged, no NaN metrics, and
 * superseded records moved out of the current tables with a README line.
 */
import assert from "node:assert/strict";
import { loadRuns, loadRunsCsv, type RunRecord, saveRun, startRun } from "../lib/results/record.ts";
import { supersedeRuns } from "../lib/results/supersede.ts";

const REPO = new URL("..", import.meta.url).pathname;
const RECORD_TS = new URL("../lib/results/record.ts", import.meta.url).href;

async function sh(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text.trim();
}

/** A throwaway git repository with one committed file. */
async function tempRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-git-" });
  const git = (...a: string[]) =>
    sh("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...a], { cwd: dir });
  await git("init", "-q");
  await Deno.writeTextFile(`${dir}/a.txt`, "one\n");
  await git("add", "a.txt");
  await git("commit", "-qm", "first");
  return dir;
}

/**
 * In a child process whose git is pointed at `repo`: start a run, commit a change, start a second run,
 * and print both records. With `dirty`, a tracked file is changed before the first run.
 */
async function recordsFromChild(repo: string, dirty: boolean): Promise<RunRecord[]> {
  const code = `
    import { startRun } from "${RECORD_TS}";
    const git = (...a) => new Deno.Command("git", { args: ["-c", "user.name=t", "-c", "user.email=t@t", ...a] }).outputSync();
    ${dirty ? `Deno.writeTextFileSync("${repo}/a.txt", "changed\\n");` : ""}
    const start = { experiment: "t", method: "m", dataset: "d", scale: "smoke", seed: 1, config: {} };
    const a = startRun(start).finish({ acc: 0.5 });
    Deno.writeTextFileSync("${repo}/b.txt", "two\\n");
    git("add", "b.txt");
    git("commit", "-qm", "second");
    const b = startRun({ ...start, seed: 2 }).finish({ acc: 0.6, best: NaN });
    console.log(JSON.stringify([a, b]));
  `;
  const env = {
    GIT_DIR: `${repo}/.git`,
    GIT_WORK_TREE: repo,
    BKD_NOTEBOOK: "99_test.ipynb",
  };
  const out = await sh(Deno.execPath(), ["eval", "--quiet", code], { cwd: REPO, env });
  return JSON.parse(out.split("\n").at(-1)!) as RunRecord[];
}

Deno.test("records: one commit and one execution id per process, even when a commit lands mid-run", async () => {
  const repo = await tempRepo();
  try {
    const first = await sh("git", ["rev-parse", "HEAD"], { cwd: repo });
    const [a, b] = await recordsFromChild(repo, false);
    const now = await sh("git", ["rev-parse", "HEAD"], { cwd: repo });
    assert.notEqual(now, first, "the child committed between the runs");
    assert.equal(a.gitCommit, first);
    assert.equal(b.gitCommit, first, "the second record keeps the execution's commit");
    assert.equal(a.gitDirty, false);
    assert.equal(a.warnings, undefined);
    assert.ok(a.execution && b.execution);
    assert.equal(a.execution.id, b.execution.id);
    assert.equal(a.execution.notebook, "99_test.ipynb");
    // NaN metrics are left out and named in a note.
    assert.deepEqual(b.metrics, { acc: 0.6 });
    assert.ok(b.notes?.some((n) => n.includes("best = NaN")));
    // Another process is another execution.
    const [c] = await recordsFromChild(repo, false);
    assert.notEqual(c.execution!.id, a.execution.id);
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

Deno.test("records: a dirty work tree is recorded with a warning", async () => {
  const repo = await tempRepo();
  try {
    const [a, b] = await recordsFromChild(repo, true);
    assert.equal(a.gitDirty, true);
    assert.equal(b.gitDirty, true);
    assert.match(a.warnings?.[0] ?? "", /uncommitted changes to tracked files/);
    assert.match(a.warnings?.[0] ?? "", /commit first and rerun/);
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});

Deno.test("records: superseded runs leave the current tables and stay as marked evidence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-runs-" });
  try {
    const ids: string[] = [];
    for (const seed of [1, 2, 3]) {
      const rec = startRun({ experiment: "zs", method: "m", dataset: "d", scale: "laptop", seed, config: {} })
        .finish({ acc: seed / 10, best: NaN });
      await saveRun(rec, { dir });
      ids.push(rec.id);
    }
    assert.ok(!(await Deno.readTextFile(`${dir}/zs.csv`)).includes("NaN"), "no NaN in the CSV");
    await assert.rejects(
      supersedeRuns("zs", [ids[0], "no-such-id"], { dir, reason: "r" }),
      /no record no-such-id\.json/,
    );
    assert.equal((await loadRuns("zs", { dir })).length, 3, "a failed call moves nothing");
    const r = await supersedeRuns("zs", ids.slice(0, 2), {
      dir,
      reason: "200 samples per class; the notebook now uses 50",
      by: "execution X",
      date: "2026-12-03",
    });
    assert.deepEqual(r.moved, ids.slice(0, 2));
    const current = await loadRuns("zs", { dir });
    assert.deepEqual(current.map((x) => x.id), [ids[2]]);
    assert.deepEqual((await loadRunsCsv("zs", { dir })).rows.map((x) => x.id), [ids[2]]);
    const old = await loadRuns("zs", { dir: `${dir}/superseded` });
    assert.equal(old.length, 0, "superseded records are skipped by default");
    const kept = await loadRuns("zs", { dir: `${dir}/superseded`, includeSuperseded: true });
    assert.deepEqual(kept.map((x) => x.id).sort(), ids.slice(0, 2).sort());
    assert.ok(
      kept.every((x) => x.status === "superseded" && x.supersededBy?.includes("replaced by execution X")),
    );
    assert.equal((await loadRunsCsv("zs", { dir: `${dir}/superseded` })).rows.length, 2);
    const readme = await Deno.readTextFile(`${dir}/superseded/README.md`);
    assert.match(readme, /^# Superseded run records/);
    assert.ok(readme.includes("- 2026-12-03 · `zs` · 2 record(s) · 200 samples per class"));
    await assert.rejects(supersedeRuns("zs", [ids[2]], { dir, reason: " " }), /give a reason/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
