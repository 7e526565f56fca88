/**
 * Notebook 40's run on the runner, at smoke scale with a tiny transfer set: the labelings through the
 * folder source and the HTTP endpoint source are units with their own ledgers; the endpoint's ledger
 * matches the server's own log, the rerun on the cache pays nothing, and the student trains on the
 * endpoint's labels.
 */
import assert from "node:assert/strict";
import { runByotDistillation } from "../lib/experiments/byot.ts";
import { RunStore } from "../lib/runner/store.ts";
import { byotCostRows, byotLedgerView } from "../lib/views/byot.ts";

Deno.test({
  name:
    "byot run: folder and endpoint sources as units; ledger = server log; rerun on the cache pays nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "bkd-byot-dir-" });
    const store = await Deno.makeTempDir({ prefix: "bkd-byot-store-" });
    try {
      const r = await runByotDistillation({
        scale: "smoke",
        seed: 1,
        dir,
        store,
        save: false,
        settings: { samplesPerClass: 1, bd: { candidates: 5 }, http: { batchSize: 64 } },
      });
      const plan = (await RunStore.open(store)).plan;
      assert.deepEqual(plan.levels.map((l) => `${l.name}:${l.keys.length}`), [
        "label:2",
        "relabel:1",
        "student:1",
      ]);
      const spec = plan.spec as {
        teachers: { folder: { kind: string }; http: { kind: string; url: string } };
      };
      assert.equal(spec.teachers.folder.kind, "folder");
      assert.equal(spec.teachers.http.url, r.server.url);
      assert.match(r.settings.note, /^BD labels only \(SD and MBD are not run here\): 10 images/);
      assert.match(r.settings.note, /BD 5 candidates instead of 201/);
      const [local, http, rerun] = r.labelings;
      assert.equal(http.queries, local.queries, "same BD searches through both sources");
      assert.equal(http.ledger.totals.images.label, r.server.answeredImages);
      assert.equal(byotLedgerView(r)["books match"], true);
      assert.equal(rerun.usage!.paid, 0);
      assert.equal(rerun.usage!.cacheHits, http.queries);
      assert.ok(r.maxDistanceDiff < 1e-4, `HTTP and in-process distances differ by ${r.maxDistanceDiff}`);
      assert.equal(byotCostRows(r).length, 3);
      assert.equal(r.student.trainedOn, 10);
      assert.equal(r.student.record.metrics.paid, http.usage!.paid);
      assert.equal(r.student.record.metrics.rerunPaid, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(store, { recursive: true });
    }
  },
});
