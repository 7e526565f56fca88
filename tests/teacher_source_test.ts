/**
 * Teacher sources (lib/experiments/teacher_source.ts, open_teacher.ts): the string forms a notebook
 * parameter takes, the access check (a label endpoint refused for probs / logits+grad before anything
 * is asked), and the README's promise — notebook 10's DB3 driver rerun on a teacher folder and on an
 * HTTP endpoint gives the distances and labels of the in-process kit teacher with the same weights.
 * The teacher is trained and exported by the test; the endpoint is the kit's real label server
 * (`tools/serve.ts`) on 127.0.0.1, stopped by its pid.
 */
import { spawnServer } from "../lib/remote/spawn.ts";
import assert from "node:assert/strict";
import { runDb3Table } from "../lib/experiments/db3.ts";
import { runZeroShotNotebook } from "../lib/experiments/zs_collect.ts";
import { db3LabelPlan, db3LabelSpec } from "../lib/experiments/db3_label_spec.ts";
import { type Db3LabelResult, readDb3LabelResult } from "../lib/experiments/db3_label_units.ts";
import { familyOf } from "../lib/experiments/families.ts";
import { runInProcess } from "../lib/runner/executors/in_process.ts";
import { RunStore } from "../lib/runner/store.ts";
import { openTeacher, resolveTeacher } from "../lib/experiments/open_teacher.ts";
import {
  parseTeacherSource,
  recordableSource,
  requireAccess,
  TeacherAccessError,
  type TeacherSource,
} from "../lib/experiments/teacher_source.ts";
import { saveTeacherFolder } from "../lib/teachers/load.ts";
import { db3Spec } from "../lib/experiments/db3_plan.ts";
import { db3AblationSpec } from "../lib/experiments/db3_ablations.ts";
import { getTeacher } from "../lib/train/teachers.ts";
import { InputError } from "../lib/util/checks.ts";

const D = { dataset: "mnist" as const, scale: "smoke" as const, seed: 3 };

Deno.test("teacher source: string forms of the notebook parameter", () => {
  assert.deepEqual(parseTeacherSource(undefined, D), {
    kind: "recipe",
    dataset: "mnist",
    scale: "smoke",
    seed: 3,
  });
  assert.deepEqual(parseTeacherSource("recipe", D), parseTeacherSource("", D));
  assert.deepEqual(parseTeacherSource("fmnist:db3-lenet5-half:laptop:7", D), {
    kind: "recipe",
    dataset: "fmnist",
    model: "db3-lenet5-half",
    scale: "laptop",
    seed: 7,
  });
  assert.deepEqual(parseTeacherSource("cifar10::paper", D), {
    kind: "recipe",
    dataset: "cifar10",
    scale: "paper",
    seed: 3,
  });
  assert.deepEqual(parseTeacherSource("/models/my-lenet/", D), { kind: "folder", path: "/models/my-lenet" });
  assert.deepEqual(parseTeacherSource("http://10.0.0.5:8080/v2/models/lenet", D), {
    kind: "http",
    url: "http://10.0.0.5:8080",
    protocol: "kserve-v2",
    model: "lenet",
  });
  assert.deepEqual(parseTeacherSource("https://host/serving/v1/models/net/versions/2", D), {
    kind: "http",
    url: "https://host/serving",
    protocol: "tf-serving",
    model: "net",
    version: "2",
  });
  assert.throws(
    () => parseTeacherSource("http://host:8080/predict", D),
    (e: Error) => e instanceof InputError && /v2\/models\/NAME/.test(e.message),
  );
  assert.throws(() => parseTeacherSource("mnist:db3-lenet5:huge", D), /huge/);
  assert.throws(
    () => parseTeacherSource({ kind: "http", url: "http://h", protocol: "grpc", model: "m" } as never, D),
    /kserve-v2/,
  );
  const obj: TeacherSource = { kind: "folder", path: "/t", adapter: { layout: "NCHW", range: [0, 255] } };
  assert.deepEqual(parseTeacherSource(obj, D), obj);
});

Deno.test("teacher source: a label endpoint is refused for probs and logits+grad before anything is asked", async () => {
  // Port 9 (discard) on loopback: nothing listens; the refusal must come before any request.
  const http = parseTeacherSource("http://127.0.0.1:9/v2/models/t", D);
  requireAccess(http, "label", "DB3");
  assert.throws(
    () => requireAccess(http, "probs", "standard KD"),
    (e: Error) =>
      e instanceof TeacherAccessError && /standard KD needs "probs"/.test(e.message) &&
      /teacher folder/.test(e.message),
  );
  await assert.rejects(
    openTeacher(http, {
      need: "logits+grad",
      method: "CAKE",
      expect: { inputShape: [28, 28, 1], numClasses: 10 },
    }),
    (e: Error) => e instanceof TeacherAccessError && /CAKE needs "logits\+grad"/.test(e.message),
  );
  await assert.rejects(
    runDb3Table({ dataset: "mnist", scale: "smoke", seed: 1, methods: ["kd"], teacher: http, save: false }),
    (e: Error) => e instanceof TeacherAccessError && /KD/.test(e.message),
  );
  for (const need of ["label", "probs", "logits+grad"] as const) {
    requireAccess({ kind: "folder", path: "/t" }, need, "x");
    requireAccess({ kind: "recipe", dataset: "mnist" }, need, "x");
  }
  const withToken = recordableSource({ ...http, token: "s3cret" } as TeacherSource);
  assert.ok(!JSON.stringify(withToken).includes("s3cret"));
});

Deno.test({
  name:
    "teacher source: notebook 10's DB3 driver (folder, endpoint), notebook 30's ZSDB3KD driver and the runner's db3-label spec match the recipe teacher",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bkd-teacher-source-" });
    const before = Deno.env.get("BKD_TEACHER_DIR");
    Deno.env.set("BKD_TEACHER_DIR", `${tmp}/teachers`);
    try {
      // The test's own teacher: the smoke recipe, trained into a temporary cache, exported as TF.js.
      const kit = await getTeacher({ dataset: "mnist", scale: "smoke", seed: 1 });
      const folder = `${tmp}/tfjs-teacher`;
      await saveTeacherFolder(kit.model, folder);
      // "pool": the kit's wasm/tfjs arithmetic, as the folder (in-process tfjs) and the server use.
      const run = (teacher?: string) =>
        runDb3Table({
          dataset: "mnist",
          scale: "smoke",
          seed: 1,
          methods: ["ce", "bd"],
          save: false,
          cacheDir: false,
          engine: "pool",
          ...(teacher ? { teacher } : {}),
        });
      const recipe = await run();
      const fromFolder = await run(folder);
      // ZSDB3KD (notebook 30's driver) from pure noise: the recipe teacher and the same weights over HTTP.
      const zs = (teacher?: string) =>
        runZeroShotNotebook("30", "smoke", {
          seeds: [1],
          cache: false,
          save: false,
          engine: "pool",
          teacher,
        });
      const zsRecipe = await zs();
      // The runner's db3-label spec (3 shards, in process) on the same three sources.
      let stores = 0;
      const runner = async (teacher?: string): Promise<Db3LabelResult> => {
        const spec = db3LabelSpec({ dataset: "mnist", scale: "smoke", seed: 1, engine: "pool", teacher });
        const { fingerprint } = await resolveTeacher(spec);
        const store = await RunStore.create(`${tmp}/store-${stores++}`, db3LabelPlan(spec, fingerprint));
        await runInProcess(store, familyOf(store.plan.family));
        return await readDb3LabelResult(store);
      };
      const rnRecipe = await runner(), rnFolder = await runner(folder);
      const server = await spawnServer({ teacher: folder, args: ["--protocol", "kserve-v2", "--port", "0"] });
      let fromHttp, zsHttp, rnHttp;
      try {
        fromHttp = await run(`${server.url}/v2/models/teacher`);
        zsHttp = await zs(`${server.url}/v2/models/teacher`);
        rnHttp = await runner(`${server.url}/v2/models/teacher`);
      } finally {
        await server.close(); // SIGTERM by pid, then wait for the exit
      }
      await assert.rejects(
        fetch(`${server.url}/v2/models/teacher`),
        "the server is still answering after kill",
      );

      const bd = recipe.distances.bd!;
      assert.ok(bd.distances.length > 0 && bd.distances.some((v) => Number.isFinite(v) && v > 0));
      for (const other of [fromFolder, fromHttp]) {
        const d = other.distances.bd!;
        assert.deepEqual(Array.from(d.teacherLabels), Array.from(bd.teacherLabels), other.teacher.source);
        assert.deepEqual(Array.from(d.distances), Array.from(bd.distances), other.teacher.source);
        assert.equal(d.ledger!.totals.images.label, bd.ledger!.totals.images.label, other.teacher.source);
      }
      assert.match(fromFolder.teacher.source, /model folder/);
      assert.match(fromHttp.teacher.source, /kserve-v2 endpoint .* \(labels only\)/);
      assert.equal(
        fromHttp.records[0].config.oracleEngine && (fromHttp.records[0].config.oracleEngine as {
          engine: string;
        }).engine,
        "http",
      );
      // The teacher's test accuracy, measured through labels for the two sources the kit did not train.
      assert.equal(fromFolder.rows[0].testAcc, fromHttp.rows[0].testAcc);
      assert.ok(fromFolder.rows[0].testAcc > 0.1);

      // Same pseudo samples, same soft labels, same query counts.
      const last = (r: typeof zsRecipe) => r.runs[0].set.snapshots.at(-1)!.x;
      assert.ok(last(zsRecipe).length > 0);
      assert.deepEqual(Array.from(last(zsHttp)), Array.from(last(zsRecipe)));
      assert.deepEqual(
        zsHttp.runs[0].students,
        zsRecipe.runs[0].students.map((s, i) => ({
          ...s,
          trainSeconds: zsHttp.runs[0].students[i].trainSeconds,
        })),
      );
      assert.equal(zsHttp.runs[0].totalQueries, zsRecipe.runs[0].totalQueries);
      assert.match(zsHttp.runs[0].teacher.source, /kserve-v2 endpoint/);

      assert.equal(rnRecipe.n, 30);
      for (const other of [rnFolder, rnHttp]) {
        assert.deepEqual(Array.from(other.distances), Array.from(rnRecipe.distances));
        assert.deepEqual(Array.from(other.teacherLabels), Array.from(rnRecipe.teacherLabels));
        assert.equal(other.ledger.totals.spent, rnRecipe.ledger.totals.spent);
      }
      assert.equal((rnHttp.engine as { engine: string }).engine, "http");
    } finally {
      if (before === undefined) Deno.env.delete("BKD_TEACHER_DIR");
      else Deno.env.set("BKD_TEACHER_DIR", before);
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("teacher source: a run spec refuses an endpoint with a token (specs are saved), naming the variable", () => {
  const http: TeacherSource = {
    kind: "http",
    url: "http://127.0.0.1:9",
    protocol: "kserve-v2",
    model: "m",
    token: "s3cret",
  };
  const refused = (family: string) =>
    new RegExp(`^RangeError: ${family}: .*never holds a token; set BKD_TEACHER_TOKEN`);
  assert.throws(
    () => db3LabelSpec({ dataset: "mnist", scale: "smoke", teacher: http }),
    refused("db3-label"),
  );
  assert.throws(() => db3Spec({ dataset: "mnist", scale: "smoke", teacher: http }), refused("db3"));
  assert.throws(() => db3AblationSpec({ scale: "smoke", seed: 1, teacher: http }), refused("DB3 ablations"));
  const { token: _token, ...tokenless } = http;
  assert.equal(db3Spec({ dataset: "mnist", scale: "smoke", teacher: tokenless }).teacher.kind, "http");
});
