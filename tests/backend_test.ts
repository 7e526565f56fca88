/**
 * Backend selection: wasm (with the kit's kernels) is the default here because tfjs-node is not
 * installed; cpu can be forced; a bad BKD_BACKEND value is a clear error; asking for tensorflow
 * without tfjs-node fails with an install hint instead of crashing.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { backendInfo, initBackend, wasmKernelRegistrars } from "../lib/backend.ts";

function withEnv(name: string, value: string | undefined, f: () => Promise<void>): Promise<void> {
  const old = Deno.env.get(name);
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
  return f().finally(() => old === undefined ? Deno.env.delete(name) : Deno.env.set(name, old));
}

Deno.test("auto picks wasm (tfjs-node absent) with the kit's kernels registered", async () => {
  await withEnv("BKD_BACKEND", undefined, async () => {
    const info = await initBackend();
    assert.equal(info.name, "wasm");
    assert.equal(info.requested, "auto");
    assert.equal(tf.getBackend(), "wasm");
    assert.ok(info.wasm?.simd !== undefined);
    for (const k of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "BatchMatMul", "MaxPoolGrad"]) {
      assert.ok(info.kitKernels.includes(k), `${k} listed`);
      assert.ok(tf.getKernel(k, "wasm"), `${k} registered`);
    }
    assert.equal(info.kitKernels.length, wasmKernelRegistrars.length);
    assert.equal(backendInfo(), info);
    // Idempotent.
    assert.equal(await initBackend(), info);
  });
});

Deno.test("cpu can be forced by argument and by BKD_BACKEND, and wasm restored", async () => {
  const cpu = await initBackend("cpu");
  assert.equal(cpu.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.deepEqual(cpu.kitKernels, []);
  const wasm = await initBackend("wasm");
  assert.equal(wasm.name, "wasm");
  await withEnv("BKD_BACKEND", "cpu", async () => {
    const info = await initBackend();
    assert.equal(info.name, "cpu");
    assert.equal(info.requested, "cpu");
  });
  await initBackend("wasm");
  // Re-registering the kernels (a second wasm init) keeps exactly one registration each.
  for (const r of wasmKernelRegistrars) r.register();
  const y = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]), false, true).dataSync());
  assert.deepEqual(Array.from(y), [3, 3, 3, 3]);
});

Deno.test("a bad BKD_BACKEND value gives a clear error", async () => {
  await withEnv("BKD_BACKEND", "gpu-please", async () => {
    await assert.rejects(
      () => initBackend(),
      /BKD_BACKEND=gpu-please is not one of auto, tensorflow, wasm, cpu/,
    );
  });
});

Deno.test("forcing tensorflow without tfjs-node fails with an install hint (no crash)", async () => {
  await withEnv("BKD_TFJS_NODE", "@tensorflow/tfjs-node-not-installed", async () => {
    await assert.rejects(() => initBackend("tensorflow"), /could not be started.*tfjs-node/);
  });
  await initBackend("wasm");
  assert.equal(tf.getBackend(), "wasm");
});
