/**
 * boundary-kd: knowledge distillation from a teacher's decision boundaries.
 *
 * The public API, re-exported from one module per job (see DESIGN.md for the data flow):
 * backend → data → models → oracle (access level + ledger; teacher queries on the native engine or
 * the worker pool) → method (DB3 labelers, CAKE synthesis) → trainer → run records, tables and plots.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./scale.ts";
export { Rng } from "./util/rng.ts";
export * from "./data/mod.ts";
export * from "./models/registry.ts";
export * from "./models/io.ts";
export * from "./models/fingerprint.ts";
export { coreCount, ModelPool } from "./parallel/pool.ts";
export * from "./native/mod.ts";
export * from "./train/trainer.ts";
export * from "./train/engine.ts";
export * from "./learn/losses.ts";
export * from "./learn/optim.ts";
export * from "./train/schedule.ts";
export { accuracy, argmaxRows, predictLogits } from "./learn/evaluate.ts";
export * from "./train/teachers.ts";
export * from "./oracle/mod.ts";
export * from "./db3/mod.ts";
export * from "./cake/mod.ts";
export * from "./results/mod.ts";
export * from "./show/mod.ts";
export * from "./experiments/fields.ts";
export * from "./experiments/quickstart.ts";
export * from "./zeroshot/mod.ts";
export * from "./teachers/mod.ts";
export * from "./remote/mod.ts";
