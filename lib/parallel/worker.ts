/**
 * Pool worker thread (`node:worker_threads`): holds one {@link Replica}, the shared training set, and answers {@link Request}s
 * strictly in arrival order. Started by `ModelPool`; not meant to be imported.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { initBackend } from "../backend.ts";
import { buildModel } from "../models/registry.ts";
import type { Reply, Request } from "./protocol.ts";
import { gatherBatch, type HostBatch, Replica } from "./replica.ts";

const port = parentPort;
if (!port) throw new Error("lib/parallel/worker.ts runs only as a ModelPool worker thread");
let replica: Replica | undefined;
let data: HostBatch | undefined;
let gradSlot: Float32Array | undefined;
let gradSum: Float32Array | undefined;
let queue: Promise<void> = Promise.resolve();

port.on("message", (req: Request) => {
  queue = queue.then(() => handle(req));
});

function post(r: Reply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(r, transfer);
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`worker: ${what} not set up yet`);
  return v;
}

async function handle(req: Request): Promise<void> {
  try {
    switch (req.type) {
      case "init": {
        await initBackend(req.backend);
        replica = new Replica(buildModel(req.spec, req.seed));
        if (req.weights) replica.setWeights(req.weights);
        post({ id: req.id, ok: true, numParams: replica.numParams });
        return;
      }
      case "setWeights":
        need(replica, "model").setWeights(req.weights);
        post({ id: req.id, ok: true });
        return;
      case "getWeights": {
        const weights = need(replica, "model").getWeights();
        post({ id: req.id, ok: true, weights }, weights.map((w) => w.buffer as ArrayBuffer));
        return;
      }
      case "predict": {
        const logits = need(replica, "model").predictLogits(req.x, req.n, req.batchSize);
        post({ id: req.id, ok: true, logits }, [logits.buffer as ArrayBuffer]);
        return;
      }
      case "data":
        data = { x: req.x, shape: req.shape, y: req.y, targets: req.targets };
        post({ id: req.id, ok: true });
        return;
      case "configure": {
        const r = need(replica, "model");
        r.configure(req.loss, req.optimizer, req.state);
        const p = r.numParams;
        gradSlot = new Float32Array(req.grads, req.slot * p * 4, p);
        gradSum = new Float32Array(req.grads, (req.grads.byteLength / 4 / p - 1) * p * 4, p);
        post({ id: req.id, ok: true });
        return;
      }
      case "grad": {
        const r = need(replica, "model");
        const batch = gatherBatch(need(data, "training data"), req.indices);
        const { loss } = r.gradients(batch, req.total, need(gradSlot, "gradient buffer"));
        const nonTrainable = r.numTrainable < r.sizes.length ? r.getNonTrainable() : undefined;
        post({ id: req.id, ok: true, loss, nonTrainable });
        return;
      }
      case "apply": {
        const r = need(replica, "model");
        r.apply(need(gradSum, "gradient buffer"), req.hp);
        if (req.nonTrainable) r.setNonTrainable(req.nonTrainable);
        post({ id: req.id, ok: true });
        return;
      }
      case "optState":
        post({ id: req.id, ok: true, state: need(need(replica, "model").optimizerState, "optimizer") });
        return;
    }
  } catch (err) {
    post({ id: req.id, error: err instanceof Error ? `${err.message}\n${err.stack ?? ""}` : String(err) });
  }
}
