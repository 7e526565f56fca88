/**
 * One trainer for teachers and students: seeded shuffling, mini-batches, the losses of
 * `lib/learn/losses.ts`, the optimizers of `lib/learn/optim.ts` with the schedules of `schedule.ts`, test accuracy after
 * every epoch, a live progress bar, and a checkpoint after every epoch that a rerun resumes from.
 *
 * Data-parallel: with `workers` > 1 the steps run on a {@link ModelPool} (one replica per core,
 * gradients summed, identical optimizer steps); with 1 they run in this thread. Both paths use the
 * same {@link Replica} arithmetic. `"auto"` (the default) uses every core when the backend is wasm
 * (single-threaded), the batch has at least 64 images and the run is long enough to repay starting
 * the workers (≥ 20,000 images in total); otherwise (cpu, or the native, already multi-threaded
 * `tensorflow` backend) it trains in-process. Pass a number to force a pool on any backend.
 *
 * Engine (issue 12, `engine.ts`): feed-forward networks (DB3 LeNets and AlexNets, CAKE LeNets, CNN, MLP,
 * ResNets) train on the native engine (`native_stepper.ts`: C++ loss and gradients on all cores, the same
 * optimizer, schedules and checkpoints; dropout masks seeded by `seed` and the step) when it builds,
 * everything else (ViTs) on the tfjs path above; `TrainConfig.engine` or `BKD_TRAIN_ENGINE` (`native` |
 * `wasm` | `auto`) forces either. The result's `trainEngine` says which ran and, after a fallback, why.
 *
 * Resuming: `checkpointDir` holds one checkpoint (weights, optimizer state, epoch, history, config
 * hash). A rerun with the same spec, data and config continues after the last finished epoch (a
 * finished run returns at once). A rerun with a *different* config or data throws an error naming
 * the directory: finished epochs are never overwritten silently.
 *
 * Reported accuracy: `finalTestAcc` is the accuracy after the last epoch (THE number to report);
 * `bestTestAcc`/`bestEpoch` are the best over epochs (test-set model selection, as the DB3 reference
 * reports) and are labelled as such.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { type BackendName, initBackend } from "../backend.ts";
import type { LabeledData } from "../data/mod.ts";
import { buildModel, type ModelSpec } from "../models/registry.ts";
import { coreCount, ModelPool } from "../parallel/pool.ts";
import { gatherBatch, Replica } from "../parallel/replica.ts";
import { createProgress } from "../show/progress.ts";
import { checkLabels, checkNumbers, checkSeed } from "../util/checks.ts";
import { Rng } from "../util/rng.ts";
import { configHash, dataFingerprint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { accuracy, argmaxRows, evaluate } from "../learn/evaluate.ts";
import { checkLossInputs, lossNeeds, type LossSpec } from "../learn/losses.ts";
import type { OptimizerConfig, OptimizerState, StepParams } from "../learn/optim.ts";
import { scheduledParams, type ScheduleSpec } from "./schedule.ts";
import { logTrainEngine, type TrainEngineChoice, trainEngineChoice, type TrainEngineUse } from "./engine.ts";
import { openNativeStepper } from "./native_stepper.ts";
import type { Stepper } from "./stepper.ts";

export { evaluate };

/** Training inputs: images (or points) with hard labels `y` and/or target scores `targets` (n×K). */
export interface TrainSet {
  x: Float32Array;
  /** `[n, ...inputShape]` */
  shape: number[];
  y?: Int32Array;
  /** n×K logits-like scores z; the loss applies its own temperature. */
  targets?: Float32Array;
}

/** How to train (see DESIGN.md, lib/train). */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  /** Seeds the initial weights (`buildModel(spec, seed)`) and the per-epoch shuffles. */
  seed: number;
  loss: LossSpec;
  optimizer: OptimizerConfig;
  /** Default constant. */
  schedule?: ScheduleSpec;
  /** Replicas: a number, or "auto" (default; see module doc). 1 = in this thread. */
  workers?: number | "auto";
  /** Checkpoint/resume directory (none: no checkpoints). */
  checkpointDir?: string;
  /** Progress bar label. */
  label?: string;
  /** Inference batch size for test evaluation (default 1024). */
  evalBatchSize?: number;
  /**
   * Stop after this many epochs in total (checkpoint kept) even though `epochs` are planned: for
   * time-boxed sessions; a rerun with a larger or no limit resumes. Not part of the config hash.
   */
  stopAfterEpochs?: number;
  /**
   * Size of the full test split when `test` is a subset of it (e.g. 1,000 of 10,000 images scored
   * per epoch): the progress text then says "on 1,000 of 10,000 test images", so it is never read as
   * the full-split number a table reports.
   */
  testOf?: number;
  /**
   * Training engine: `native`, `wasm` (the tfjs path) or `auto` (default; see `engine.ts`); unset reads
   * `BKD_TRAIN_ENGINE`. Not part of the config hash: both engines resume each other's checkpoints.
   */
  engine?: TrainEngineChoice;
}

/** "on 1,000 of 10,000 test images" / "on 10,000 test images": what a progress accuracy measured. */
export function testScope(scored: number, of?: number): string {
  const n = (v: number) => v.toLocaleString("en-US");
  return of !== undefined && of > scored
    ? `on ${n(scored)} of ${n(of)} test images`
    : `on ${n(scored)} test images`;
}

/** One epoch of history. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean over the epoch's batches of the batch loss. */
  loss: number;
  /** Test accuracy after this epoch, if a test set was given. */
  testAcc?: number;
  /** Training seconds of this epoch (excluding evaluation). */
  seconds: number;
  /** Training images per second in this epoch. */
  imagesPerSec: number;
  /** Learning rate of the epoch's last batch. */
  lr: number;
}

/** What {@link train} returns. */
export interface TrainResult {
  model: tfl.LayersModel;
  history: EpochRecord[];
  /** Test accuracy after the final epoch: the reported number. */
  finalTestAcc?: number;
  /** Best test accuracy over epochs (test-set model selection; report only labelled as such). */
  bestTestAcc?: number;
  /** 1-based epoch of `bestTestAcc`. */
  bestEpoch?: number;
  /** Sum of per-epoch training seconds (including epochs from a resumed checkpoint). */
  wallTimeSec: number;
  /** Training images per second over the epochs run in this call (NaN if none ran). */
  imagesPerSec: number;
  backend: BackendName;
  /** Replicas used in this call (1 on the native engine, which runs its own threads). */
  workers: number;
  /** The engine the steps ran on, what was asked for and, after a fallback, why (also in run records). */
  trainEngine: TrainEngineUse;
  /** True when all `cfg.epochs` are finished (false after `stopAfterEpochs`). */
  complete: boolean;
  /** Epochs that were restored from a checkpoint rather than run. */
  resumedEpochs: number;
  /** Hash of spec + config + data that the checkpoint is tied to. */
  configHash: string;
}

/** Resolve `cfg.workers` for a run of `n` images on `backend`. */
export function resolveWorkers(
  cfg: Pick<TrainConfig, "workers" | "batchSize" | "epochs">,
  n: number,
  backend: BackendName,
): number {
  const w = cfg.workers ?? "auto";
  if (w !== "auto") return Math.max(1, Math.floor(w));
  const worth = backend === "wasm" && cfg.batchSize >= 64 && n * cfg.epochs >= 20_000;
  return worth ? coreCount() : 1;
}

/** The shuffling generator of epoch `epoch` (0-based): independent of how many epochs ran before. */
export function epochRng(seed: number, epoch: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0);
}

function localStepper(r: Replica, data: TrainSet, evalBatch: number): Stepper {
  return {
    step(idx, hp) {
      const { loss, grads } = r.gradients(gatherBatch(data, idx), idx.length);
      r.apply(grads, hp);
      return Promise.resolve(loss);
    },
    weights: () => Promise.resolve(r.getWeights()),
    optimizerState: () => Promise.resolve(r.optimizerState!),
    labels: (x, n) => Promise.resolve(argmaxRows(r.predictLogits(x, n, evalBatch), n)),
    close() {},
  };
}

function poolStepper(pool: ModelPool): Stepper {
  return {
    step: (idx, hp) => pool.trainStep(idx, hp),
    weights: () => pool.getWeights(),
    optimizerState: () => pool.optimizerState(),
    labels: (x, n) => pool.predictLabels(x, n),
    close: () => pool.close(),
  };
}

function checkData(spec: ModelSpec, data: TrainSet, cfg: TrainConfig): void {
  const n = data.shape[0];
  const d = data.shape.slice(1);
  if (d.join(",") !== spec.inputShape.join(",")) {
    throw new Error(`train: data rows have shape [${d}] but ${spec.name} expects [${spec.inputShape}]`);
  }
  if (data.x.length !== n * d.reduce((a, b) => a * b, 1)) {
    throw new Error(`train: x has ${data.x.length} values, shape [${data.shape}] needs more or fewer`);
  }
  if (data.y && data.y.length !== n) throw new Error(`train: y has ${data.y.length} labels for ${n} rows`);
  if (data.y && lossNeeds(cfg.loss).y) checkLabels(data.y, spec.numClasses, "train labels");
  if (data.targets && data.targets.length !== n * spec.numClasses) {
    throw new Error(
      `train: targets has ${data.targets.length} values, expected n×K = ${n}×${spec.numClasses}`,
    );
  }
  checkLossInputs(cfg.loss, { y: !!data.y, targets: !!data.targets });
  checkSeed(cfg.seed, "train");
  checkNumbers("train", cfg, {
    epochs: { integer: true, min: 0 },
    batchSize: { integer: true, min: 1 },
    stopAfterEpochs: { integer: true, min: 0 },
  });
}

/** The part of a run that determines its result (what the checkpoint hash covers). */
function runIdentity(spec: ModelSpec, data: TrainSet, cfg: TrainConfig): unknown {
  const { epochs, batchSize, seed, loss, optimizer, schedule } = cfg;
  return {
    spec,
    epochs,
    batchSize,
    seed,
    loss,
    optimizer,
    schedule: schedule ?? { kind: "constant" },
    data: dataFingerprint(data),
  };
}

/**
 * Train `spec` on `data` with `cfg`; evaluate on `test` after every epoch if given.
 * See the module doc for parallelism, checkpoints and reported accuracies.
 */
export async function train(
  spec: ModelSpec,
  data: TrainSet,
  cfg: TrainConfig,
  test?: LabeledData,
): Promise<TrainResult> {
  checkData(spec, data, cfg);
  const backend = (await initBackend()).name;
  const n = data.shape[0];
  const hash = configHash(runIdentity(spec, data, cfg));
  const evalBatch = cfg.evalBatchSize ?? 1024;

  let history: EpochRecord[] = [];
  let startEpoch = 0;
  let weights: Float32Array[] | undefined;
  let optState: OptimizerState | undefined;
  if (cfg.checkpointDir) {
    const ck = await loadCheckpoint<EpochRecord>(cfg.checkpointDir);
    if (ck) {
      if (ck.configHash !== hash) {
        throw new Error(
          `train: ${cfg.checkpointDir} holds a checkpoint of a different run (config/data hash ${ck.configHash}, ` +
            `this run ${hash}). Use another checkpointDir, or delete that directory to start over.`,
        );
      }
      history = ck.history;
      startEpoch = ck.epoch;
      weights = ck.weights;
      optState = ck.optimizer;
    }
  }

  const model = buildModel(spec, cfg.seed);
  const local = new Replica(model);
  if (weights) local.setWeights(weights);
  const endEpoch = Math.min(cfg.epochs, cfg.stopAfterEpochs ?? cfg.epochs);
  const remaining = Math.max(0, endEpoch - startEpoch);
  const requested = trainEngineChoice(cfg.engine);
  let stepper: Stepper | undefined;
  let nativeWhy: string | undefined, nativeThreads = 0;
  if (remaining === 0) nativeWhy = "no epochs left to run (all restored from the checkpoint)";
  else if (requested !== "wasm") {
    if (typeof cfg.workers === "number" && cfg.workers > 1) {
      nativeWhy =
        `workers: ${cfg.workers} asks for a tfjs worker pool (the native engine runs its own threads)`;
    } else {
      const r = await openNativeStepper(local, data, cfg.loss, cfg.optimizer, optState, evalBatch, {
        seed: cfg.seed,
      });
      if (r.ok) stepper = r.stepper, nativeThreads = r.threads;
      else nativeWhy = r.reason;
    }
    if (!stepper && requested === "native") {
      throw new Error(
        `train: the native training engine was asked for (${
          cfg.engine !== undefined ? "TrainConfig.engine" : "BKD_TRAIN_ENGINE"
        } = native) but cannot train ${spec.name}: ${nativeWhy}. Use engine "auto" or "wasm" for this run.`,
      );
    }
  }
  const workers = stepper || remaining === 0 ? 1 : resolveWorkers(cfg, n, backend);
  const trainEngine: TrainEngineUse = {
    label: cfg.label ?? `train ${spec.name}`,
    model: spec.name,
    requested,
    engine: stepper ? "native" : "wasm",
    ...(!stepper && requested !== "wasm" && nativeWhy ? { nativeUnavailable: nativeWhy } : {}),
    threads: stepper ? nativeThreads : workers,
  };
  logTrainEngine(trainEngine);

  if (!stepper && workers > 1) {
    const pool = await ModelPool.create(spec, local.getWeights(), {
      workers,
      backend,
      inferBatchSize: evalBatch,
    });
    try {
      await pool.setTrainData(data);
      await pool.configureTraining(cfg.loss, cfg.optimizer, optState);
    } catch (e) {
      pool.close();
      throw e;
    }
    stepper = poolStepper(pool);
  } else if (!stepper) {
    local.configure(cfg.loss, cfg.optimizer, optState);
    stepper = localStepper(local, data, evalBatch);
  }

  const stepsPerEpoch = Math.ceil(n / cfg.batchSize);
  const progress = remaining > 0
    ? createProgress({ label: cfg.label ?? `train ${spec.name}`, total: remaining * n, unit: "img" })
    : undefined;
  let trainedImages = 0, trainedSeconds = 0;
  try {
    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      const perm = epochRng(cfg.seed, epoch).permutation(n);
      const t0 = performance.now();
      let lossSum = 0, hp: StepParams = { lr: cfg.optimizer.lr };
      for (let b = 0; b < stepsPerEpoch; b++) {
        const idx = perm.slice(b * cfg.batchSize, Math.min(n, (b + 1) * cfg.batchSize));
        hp = scheduledParams(cfg.schedule, cfg.optimizer.lr, epoch, b, stepsPerEpoch, cfg.epochs);
        const loss = await stepper.step(idx, hp);
        if (!Number.isFinite(loss)) {
          throw new Error(
            `train: loss became ${loss} at epoch ${epoch + 1}, batch ${
              b + 1
            } (lr ${hp.lr}); lower the learning rate`,
          );
        }
        lossSum += loss;
        const done = (epoch - startEpoch) * n + Math.min(n, (b + 1) * cfg.batchSize);
        const sec = (performance.now() - t0) / 1000;
        const rate = Math.min(n, (b + 1) * cfg.batchSize) / Math.max(sec, 1e-9);
        const last = history.at(-1)?.testAcc;
        progress?.update(
          done,
          `epoch ${epoch + 1}/${cfg.epochs} batch ${b + 1}/${stepsPerEpoch} loss ${loss.toPrecision(4)} ` +
            `${Math.round(rate)} img/s${
              last !== undefined && test
                ? ` test acc ${(100 * last).toFixed(2)}% ${
                  testScope(test.shape[0], cfg.testOf)
                } after epoch ${epoch}`
                : ""
            }`,
        );
      }
      const seconds = (performance.now() - t0) / 1000;
      trainedImages += n;
      trainedSeconds += seconds;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / stepsPerEpoch,
        seconds,
        imagesPerSec: n / seconds,
        lr: hp.lr,
      };
      if (test) rec.testAcc = accuracy(await stepper.labels(test.x, test.shape[0]), test.y);
      history.push(rec);
      if (cfg.checkpointDir) {
        await saveCheckpoint(cfg.checkpointDir, {
          configHash: hash,
          epoch: epoch + 1,
          history,
          weights: await stepper.weights(),
          optimizer: await stepper.optimizerState(),
          meta: { spec, backend, label: cfg.label ?? null },
        });
      }
    }
    if (workers > 1 || trainEngine.engine === "native") local.setWeights(await stepper.weights());
  } finally {
    stepper.close();
  }

  let bestTestAcc: number | undefined, bestEpoch: number | undefined;
  for (const h of history) {
    if (h.testAcc !== undefined && (bestTestAcc === undefined || h.testAcc > bestTestAcc)) {
      bestTestAcc = h.testAcc;
      bestEpoch = h.epoch;
    }
  }
  let finalTestAcc = history.at(-1)?.testAcc;
  if (test && finalTestAcc === undefined) finalTestAcc = await evaluate(model, test, evalBatch);
  const wallTimeSec = history.reduce((a, h) => a + h.seconds, 0);
  const imagesPerSec = trainedSeconds > 0 ? trainedImages / trainedSeconds : NaN;
  progress?.done(
    `${history.length}/${cfg.epochs} epochs, ${Math.round(imagesPerSec)} img/s` +
      (finalTestAcc !== undefined && test
        ? `, test acc ${(100 * finalTestAcc).toFixed(2)}% ${testScope(test.shape[0], cfg.testOf)}, ` +
          `epoch ${history.length}`
        : ""),
  );
  return {
    model,
    history,
    finalTestAcc,
    bestTestAcc,
    bestEpoch,
    wallTimeSec,
    imagesPerSec,
    backend,
    workers,
    trainEngine,
    complete: history.length >= cfg.epochs,
    resumedEpochs: startEpoch,
    configHash: hash,
  };
}
