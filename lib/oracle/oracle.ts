/**
 * Teachers behind explicit access levels.
 *
 * - {@link labelOracle}: argmax class ids only (`label` access). Inputs are clamped to [0,1] on a
 *   private copy (a non-finite pixel rejects the whole request, see `admission.ts`); the model lives
 *   in a `#private` field, so nothing reachable from the oracle yields scores or weights.
 * - {@link probsOracle}: softmax vectors (`probs` access, the standard-KD baseline).
 * - {@link logitsGradOracle}: logits and d(loss)/d(input) through a frozen teacher (`logits+grad`,
 *   CAKE synthesis); forward and backward passes are booked separately. The native engine answers when it
 *   can (see `grad_engine.ts`), else tfjs; `engineInfo()` says which.
 *
 * Every oracle owns a {@link Ledger}. Requests are async and batched; big requests are split into
 * calls of at most `maxBatch` images, so a remote teacher with a request-size limit fits behind the
 * same interface. A teacher is either an in-process `tf.LayersModel` or anything with
 * `predictLabels(x, n)` (and, for `probs`, `predictLogits(x, n)`), such as the worker `ModelPool`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import {
  type GradEngine,
  gradEngineChoice,
  type GradEngineInfo,
  nativeLogits,
  nativeValueAndGrad,
  type OpenedGradEngine,
  openGradEngine,
} from "./grad_engine.ts";
import { checkQueryImages, findNonFinitePixel, nonFiniteMessage, QueryInputError } from "./admission.ts";
import { Ledger, type LedgerSnapshot, type QueryKind } from "./ledger.ts";

/** Access levels, weakest first. */
export type AccessLevel = "label" | "probs" | "logits+grad";

/**
 * A teacher that answers label queries on flat NHWC batches (e.g. `ModelPool`, a remote service). If
 * it carries a `spec` with `inputShape` and `numClasses` (as `ModelPool` does), the oracle reads them.
 * `x` is the oracle's scratch memory: valid until the returned promise settles, not to be kept.
 */
export interface LabelPredictor {
  predictLabels(x: Float32Array, n: number): Promise<Int32Array>;
  /** Shape of one input and number of classes (ModelPool's model spec has both). */
  readonly spec?: { inputShape: number[]; numClasses: number };
}

/** A teacher that answers logit queries on flat NHWC batches. */
export interface LogitsPredictor {
  predictLogits(x: Float32Array, n: number): Promise<Float32Array>;
  /** Shape of one input and number of classes (ModelPool's model spec has both). */
  readonly spec?: { inputShape: number[]; numClasses: number };
}

/** What a label or probs oracle can be built on. */
export type TeacherSource = tfl.LayersModel | LabelPredictor | (LabelPredictor & LogitsPredictor);

/** Per-request tags. */
export interface QueryTag {
  /** Ledger phase, e.g. "bd.search". */
  phase: string;
  /** Sample id of each image (length n); budgets are enforced per id. */
  sampleIds?: Int32Array;
}

/** Answer of a label query. */
export interface LabelAnswer {
  /** Class id per image; −1 where refused. */
  labels: Int32Array;
  /** 1 where the image was refused (its sample's budget, or the total budget, would be crossed). */
  refused: Uint8Array;
}

/** Common oracle fields. */
export interface OracleBase {
  readonly access: AccessLevel;
  /** Input shape of one image, e.g. [28, 28, 1]. */
  readonly inputShape: number[];
  /** Number of classes K. */
  readonly numClasses: number;
  /** The oracle's query ledger. */
  readonly ledger: Ledger;
}

/** Label-only access: class ids, nothing else. */
export interface LabelOracle extends OracleBase {
  readonly access: "label";
  labels(x: Float32Array, n: number, q: QueryTag): Promise<LabelAnswer>;
}

/** Probability access: softmax vectors (n×K); refused rows are NaN. */
export interface ProbsOracle extends OracleBase {
  readonly access: "probs";
  probs(x: Float32Array, n: number, q: QueryTag): Promise<Float32Array>;
  /** Like `probs` and also says which images were refused. */
  probsWithRefusals(
    x: Float32Array,
    n: number,
    q: QueryTag,
  ): Promise<{ probs: Float32Array; refused: Uint8Array }>;
}

/** Logits and input gradients through a frozen teacher. */
export interface LogitsGradOracle extends OracleBase {
  readonly access: "logits+grad";
  /** Forward pass (booked as `forward`). The caller owns (disposes) the result. */
  logits(x: tf.Tensor, phase: string, sampleIds?: Int32Array): Promise<tf.Tensor2D>;
  /**
   * loss = lossOfLogits(T(x)) and dx = d loss / d x (booked as `forward` + `backward` per image). The
   * teacher's weights are never updated. The caller owns `logits` and `dx`.
   */
  valueAndGrad(
    x: tf.Tensor,
    lossOfLogits: (z: tf.Tensor2D) => tf.Scalar,
    phase: string,
    sampleIds?: Int32Array,
  ): Promise<{ loss: number; logits: tf.Tensor2D; dx: tf.Tensor }>;
  /** Which engine answers (native or tfjs, with the reason), for run records. */
  engineInfo?(): Promise<GradEngineInfo>;
  /** Free the engine's native memory (safe to call twice; later calls reopen it). */
  close?(): void;
}

/** Options shared by all oracles. */
export interface OracleOptions {
  /** Largest number of images per teacher call; bigger requests are split. Default 4096. */
  maxBatch?: number;
  /** Ledger to book into (default: a fresh unlimited one). */
  ledger?: Ledger;
  /** Image shape; required for a predictor teacher, read from the model otherwise. */
  inputShape?: number[];
  /** Number of classes; required for a predictor teacher, read from the model otherwise. */
  numClasses?: number;
}

/** Raised when a teacher call fails; says what was booked. */
export class OracleError extends Error {
  constructor(
    message: string,
    readonly phase: string,
    readonly bookedImages: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "OracleError";
  }
}

/** Raised by the logits+grad oracle when a request would cross a budget (nothing is computed). */
export class BudgetExceededError extends Error {
  constructor(message: string, readonly phase: string) {
    super(message);
    this.name = "BudgetExceededError";
  }
}

function isLayersModel(t: unknown): t is tfl.LayersModel {
  return typeof t === "object" && t !== null && "apply" in t && "inputs" in t && "outputs" in t;
}

function shapeOf(teacher: TeacherSource, opts: OracleOptions): { inputShape: number[]; numClasses: number } {
  if (isLayersModel(teacher)) {
    const inShape = teacher.inputs[0].shape.slice(1) as number[];
    const outShape = teacher.outputs[0].shape;
    return {
      inputShape: opts.inputShape ?? inShape,
      numClasses: opts.numClasses ?? (outShape[outShape.length - 1] as number),
    };
  }
  // A ModelPool (or any predictor carrying its model spec) describes itself.
  const spec = teacher.spec;
  const inputShape = opts.inputShape ?? spec?.inputShape;
  const numClasses = opts.numClasses ?? spec?.numClasses;
  if (!inputShape || !numClasses) {
    throw new Error("oracle: a predictor teacher needs `inputShape` and `numClasses` options (or a `spec`)");
  }
  return { inputShape: [...inputShape], numClasses };
}

/**
 * Reusable scratch buffers (one per concurrent request), so the per-request clamped copies do not
 * allocate fresh, page-faulting memory for every call.
 */
class Scratch {
  #free: Float32Array[] = [];

  take(len: number): Float32Array {
    for (let i = 0; i < this.#free.length; i++) {
      if (this.#free[i].length >= len) return this.#free.splice(i, 1)[0].subarray(0, len);
    }
    return new Float32Array(len);
  }

  give(a: Float32Array): void {
    if (this.#free.length < 4) this.#free.push(new Float32Array(a.buffer));
  }
}

/** Bits of the float32 1.0. */
const ONE_BITS = 0x3f800000;

/**
 * Copy the first `len` floats of `x` into `out`, clamped to [0, 1] (the input was checked finite by
 * `checkQueryImages`; a NaN would become 0 or 1 by its sign bit). Branch-free on the float bits:
 * query images often have pixels scattered on both sides of 0 (e.g. Sign-OPT's perturbed
 * background), where a branchy clamp mispredicts on every other pixel.
 */
function clampInto(x: Float32Array, len: number, out: Float32Array): Float32Array {
  out.set(x.subarray(0, len));
  const b = new Int32Array(out.buffer, out.byteOffset, len);
  for (let i = 0; i < len; i++) {
    const v = b[i] & ~(b[i] >> 31); // negative (sign bit set) → +0
    const d = v - ONE_BITS;
    b[i] = ONE_BITS + (d & (d >> 31)); // min(v, 1.0): non-negative floats order like their bits
  }
  return out;
}

/** Rows of `x` (each `d` floats) not refused, packed; plus their original indices. */
function packAccepted(
  x: Float32Array,
  n: number,
  d: number,
  refused: Uint8Array,
): { x: Float32Array; idx: Int32Array } {
  let m = 0;
  for (let i = 0; i < n; i++) if (!refused[i]) m++;
  if (m === n) return { x, idx: Int32Array.from({ length: n }, (_, i) => i) };
  const out = new Float32Array(m * d);
  const idx = new Int32Array(m);
  for (let i = 0, j = 0; i < n; i++) {
    if (refused[i]) continue;
    out.set(x.subarray(i * d, (i + 1) * d), j * d);
    idx[j++] = i;
  }
  return { x: out, idx };
}

async function modelLabels(model: tfl.LayersModel, x: Float32Array, n: number, shape: number[]) {
  const t = tf.tidy(() => {
    const xt = tf.tensor(x, [n, ...shape]);
    return tf.argMax(model.apply(xt, { training: false }) as tf.Tensor, -1);
  });
  try {
    return Int32Array.from(await t.data());
  } finally {
    t.dispose();
  }
}

async function modelLogits(model: tfl.LayersModel, x: Float32Array, n: number, shape: number[]) {
  const t = tf.tidy(() => model.apply(tf.tensor(x, [n, ...shape]), { training: false }) as tf.Tensor);
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

/** Run `f` over [start, end) slices of at most `maxBatch` rows. */
async function inChunks(n: number, maxBatch: number, f: (start: number, end: number) => Promise<void>) {
  for (let s = 0; s < n; s += maxBatch) await f(s, Math.min(n, s + maxBatch));
}

/** What {@link serveAccepted} needs from an oracle. */
interface ServeRequest {
  ledger: Ledger;
  scratch: Scratch;
  /** Floats per image. */
  dim: number;
  maxBatch: number;
  kind: QueryKind;
}

/**
 * The request path the label and probs oracles share: check the input (see `admission.ts`: exact
 * size, one id per image, finite pixels — a non-finite pixel rejects the request), charge the ledger
 * (refused images are neither sent nor counted), clamp into scratch memory, and hand the accepted images to
 * `answer` in slices of at most `maxBatch`, with their indices in the request. A teacher failure
 * becomes an {@link OracleError}. Returns the per-image refusals.
 */
async function serveAccepted(
  r: ServeRequest,
  x: Float32Array,
  n: number,
  q: QueryTag,
  answer: (xs: Float32Array, m: number, idx: Int32Array) => Promise<void>,
): Promise<Uint8Array> {
  const d = r.dim;
  checkQueryImages(x, n, d, q.sampleIds, `${r.kind} oracle, phase ${q.phase}`);
  const res = r.ledger.reserve({ kinds: [r.kind], phase: q.phase, n, sampleIds: q.sampleIds });
  const refused = res.refused;
  const buf = r.scratch.take(n * d);
  const acc = packAccepted(clampInto(x, n * d, buf), n, d, refused);
  const m = acc.idx.length;
  let answered = 0;
  try {
    await inChunks(m, r.maxBatch, async (s, e) => {
      await answer(acc.x.subarray(s * d, e * d), e - s, acc.idx.subarray(s, e));
      r.ledger.settle(res.ticket, e - s);
      answered = e;
    });
  } catch (err) {
    // Images never answered are taken back; the answered ones stay booked.
    const left = acc.idx.subarray(answered);
    r.ledger.release(
      res.ticket,
      q.sampleIds ? Int32Array.from(left, (i) => q.sampleIds![i]) : undefined,
      left.length,
    );
    throw new OracleError(`${r.kind} teacher failed in phase ${q.phase}: ${err}`, q.phase, answered, {
      cause: err,
    });
  } finally {
    r.scratch.give(buf);
  }
  return refused;
}

class LabelOracleImpl implements LabelOracle {
  readonly access = "label" as const;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly ledger: Ledger;
  readonly #answer: (x: Float32Array, n: number) => Promise<Int32Array>;
  readonly #maxBatch: number;
  readonly #dim: number;
  readonly #scratch = new Scratch();

  #request(kind: QueryKind): ServeRequest {
    return { ledger: this.ledger, scratch: this.#scratch, dim: this.#dim, maxBatch: this.#maxBatch, kind };
  }

  constructor(teacher: TeacherSource, opts: OracleOptions) {
    const s = shapeOf(teacher, opts);
    this.inputShape = s.inputShape;
    this.numClasses = s.numClasses;
    this.ledger = opts.ledger ?? new Ledger();
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 4096);
    this.#dim = s.inputShape.reduce((a, b) => a * b, 1);
    const shape = s.inputShape;
    if (isLayersModel(teacher)) this.#answer = (x, n) => modelLabels(teacher, x, n, shape);
    else this.#answer = (x, n) => teacher.predictLabels(x, n);
  }

  async labels(x: Float32Array, n: number, q: QueryTag): Promise<LabelAnswer> {
    const labels = new Int32Array(n).fill(-1);
    const refused = await serveAccepted(this.#request("label"), x, n, q, async (xs, m, idx) => {
      const out = await this.#answer(xs, m);
      for (let i = 0; i < m; i++) labels[idx[i]] = out[i];
    });
    return { labels, refused };
  }

  toJSON() {
    return { access: this.access, inputShape: this.inputShape, numClasses: this.numClasses };
  }
}

function softmaxRows(z: Float32Array, rows: number, k: number): Float32Array {
  const p = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < k; j++) mx = Math.max(mx, z[r * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += p[r * k + j] = Math.exp(z[r * k + j] - mx);
    for (let j = 0; j < k; j++) p[r * k + j] /= s;
  }
  return p;
}

class ProbsOracleImpl implements ProbsOracle {
  readonly access = "probs" as const;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly ledger: Ledger;
  readonly #logits: (x: Float32Array, n: number) => Promise<Float32Array>;
  readonly #maxBatch: number;
  readonly #dim: number;
  readonly #scratch = new Scratch();

  #request(kind: QueryKind): ServeRequest {
    return { ledger: this.ledger, scratch: this.#scratch, dim: this.#dim, maxBatch: this.#maxBatch, kind };
  }

  constructor(teacher: tfl.LayersModel | LogitsPredictor, opts: OracleOptions) {
    const s = shapeOf(teacher as TeacherSource, opts);
    this.inputShape = s.inputShape;
    this.numClasses = s.numClasses;
    this.ledger = opts.ledger ?? new Ledger();
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 4096);
    this.#dim = s.inputShape.reduce((a, b) => a * b, 1);
    const shape = s.inputShape;
    if (isLayersModel(teacher)) this.#logits = (x, n) => modelLogits(teacher, x, n, shape);
    else if ("predictLogits" in teacher) this.#logits = (x, n) => teacher.predictLogits(x, n);
    else throw new Error("probsOracle: the teacher must be a LayersModel or have predictLogits(x, n)");
  }

  async probs(x: Float32Array, n: number, q: QueryTag): Promise<Float32Array> {
    return (await this.probsWithRefusals(x, n, q)).probs;
  }

  async probsWithRefusals(x: Float32Array, n: number, q: QueryTag) {
    const k = this.numClasses;
    const probs = new Float32Array(n * k).fill(NaN);
    const refused = await serveAccepted(this.#request("probs"), x, n, q, async (xs, m, idx) => {
      const p = softmaxRows(await this.#logits(xs, m), m, k);
      for (let i = 0; i < m; i++) probs.set(p.subarray(i * k, (i + 1) * k), idx[i] * k);
    });
    return { probs, refused };
  }

  toJSON() {
    return { access: this.access, inputShape: this.inputShape, numClasses: this.numClasses };
  }
}

/** Options of the logits+grad oracle. */
export interface LogitsGradOptions extends Omit<OracleOptions, "maxBatch"> {
  /** Clamp inputs to [lo, hi] before the forward pass (default: no clamping; CAKE works in the
   * teacher's normalised space). The gradient then flows through the clamp. */
  clamp?: [number, number];
  /**
   * Engine: "native" (logits and input gradients on the native engine, or fail), "tfjs", or "auto"
   * (native when available, else tfjs). Default `BKD_GRAD_ENGINE` or "auto". The native engine copies
   * the teacher's weights at the first request.
   */
  engine?: GradEngine;
  /** Native threads (default: number of cores). */
  threads?: number;
}

/** Frees the native engine of an oracle that was never closed. */
const engines = new FinalizationRegistry<{ net: OpenedGradEngine["net"] }>((e) => e.net?.close());

class LogitsGradOracleImpl implements LogitsGradOracle {
  readonly access = "logits+grad" as const;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly ledger: Ledger;
  readonly #model: tfl.LayersModel;
  readonly #clamp?: [number, number];
  readonly #engineChoice: GradEngine;
  readonly #threads?: number;
  #engine?: Promise<OpenedGradEngine>;
  #engineRef?: { net: OpenedGradEngine["net"] };

  constructor(model: tfl.LayersModel, opts: LogitsGradOptions) {
    if (!isLayersModel(model)) throw new Error("logitsGradOracle needs an in-process tf.LayersModel");
    const s = shapeOf(model, opts);
    this.inputShape = s.inputShape;
    this.numClasses = s.numClasses;
    this.ledger = opts.ledger ?? new Ledger();
    this.#model = model;
    this.#clamp = opts.clamp;
    this.#engineChoice = gradEngineChoice(opts.engine);
    this.#threads = opts.threads;
  }

  #open(): Promise<OpenedGradEngine> {
    if (!this.#engine) {
      this.#engine = openGradEngine(this.#model, this.#engineChoice, this, { threads: this.#threads });
      this.#engine.then((e) => {
        this.#engineRef = { net: e.net };
        engines.register(this, this.#engineRef, this);
      }, () => {
        this.#engine = undefined; // a forced native engine that failed: ask again next time
      });
    }
    return this.#engine;
  }

  async engineInfo(): Promise<GradEngineInfo> {
    return (await this.#open()).info;
  }

  close(): void {
    engines.unregister(this);
    this.#engineRef?.net?.close();
    this.#engineRef = undefined;
    this.#engine = undefined;
  }

  #book(kinds: QueryKind[], phase: string, n: number, sampleIds?: Int32Array) {
    const refused = this.ledger.charge({ kinds, phase, n, sampleIds });
    if (refused.some((r) => r === 1)) {
      // All-or-nothing for tensors: undo is impossible, so refuse before booking anything.
      throw new BudgetExceededError(`budget exhausted in phase ${phase}`, phase);
    }
  }

  #forward(x: tf.Tensor): tf.Tensor2D {
    const xi = this.#clamp ? tf.clipByValue(x, this.#clamp[0], this.#clamp[1]) : x;
    return this.#model.apply(xi, { training: false }) as tf.Tensor2D;
  }

  /** Shape [n, ...inputShape], one id per image, finite values (see `admission.ts`). */
  #checkInput(x: tf.Tensor, phase: string, sampleIds?: Int32Array) {
    const where = `logits+grad oracle, phase ${phase}`;
    const want = this.inputShape;
    if (x.rank !== want.length + 1 || want.some((d, i) => x.shape[i + 1] !== d)) {
      throw new QueryInputError(
        `${where}: input of shape [${x.shape}] does not fit the teacher's [n, ${want}]; ` +
          `pass a batch of the teacher's input shape`,
      );
    }
    const n = x.shape[0];
    if (sampleIds && sampleIds.length !== n) {
      throw new QueryInputError(
        `${where}: ${sampleIds.length} sample ids for ${n} images; pass one per image`,
      );
    }
    if (n === 0) return;
    const rows = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(tf.reshape(x, [n, -1]))), 1));
    const bad = rows.dataSync();
    rows.dispose();
    const first = bad.indexOf(1);
    if (first < 0) return;
    const row = tf.tidy(() => tf.slice(tf.reshape(x, [n, -1]), [first, 0], [1, -1]));
    const hit = findNonFinitePixel(row.dataSync() as Float32Array, 1, row.size)!;
    row.dispose();
    throw new QueryInputError(`${where}: ${nonFiniteMessage({ ...hit, sample: first })}`, first);
  }

  #checkBudget(kinds: QueryKind[], n: number, sampleIds?: Int32Array) {
    const need = new Map<number, number>();
    if (sampleIds) { for (const id of sampleIds) need.set(id, (need.get(id) ?? 0) + kinds.length); }
    let total = 0;
    for (const [id, k] of need) {
      if (this.ledger.spentBy(id) + k > this.ledger.budgetOf(id)) return false;
      total += k;
    }
    if (!sampleIds) total = n * kinds.length;
    return total <= this.ledger.totalRemaining();
  }

  async logits(x: tf.Tensor, phase: string, sampleIds?: Int32Array): Promise<tf.Tensor2D> {
    this.#checkInput(x, phase, sampleIds);
    const n = x.shape[0];
    const { net } = await this.#open();
    if (!this.#checkBudget(["forward"], n, sampleIds)) {
      throw new BudgetExceededError(`budget exhausted in phase ${phase}`, phase);
    }
    this.#book(["forward"], phase, n, sampleIds);
    if (net && n > 0) return await nativeLogits(net, x, this.#clamp);
    return tf.tidy(() => this.#forward(x));
  }

  async valueAndGrad(
    x: tf.Tensor,
    lossOfLogits: (z: tf.Tensor2D) => tf.Scalar,
    phase: string,
    sampleIds?: Int32Array,
  ): Promise<{ loss: number; logits: tf.Tensor2D; dx: tf.Tensor }> {
    this.#checkInput(x, phase, sampleIds);
    const n = x.shape[0];
    const { net } = await this.#open();
    if (!this.#checkBudget(["forward", "backward"], n, sampleIds)) {
      throw new BudgetExceededError(`budget exhausted in phase ${phase}`, phase);
    }
    this.#book(["forward", "backward"], phase, n, sampleIds);
    if (net && n > 0) return await nativeValueAndGrad(net, x, lossOfLogits, this.#clamp);
    let logits: tf.Tensor2D | undefined;
    const { value, grad } = tf.valueAndGrad((xi: tf.Tensor) => {
      const z = this.#forward(xi);
      logits = tf.keep(z.clone());
      return lossOfLogits(z);
    })(x);
    const loss = value.dataSync()[0];
    value.dispose();
    return { loss, logits: logits!, dx: grad };
  }

  toJSON() {
    return { access: this.access, inputShape: this.inputShape, numClasses: this.numClasses };
  }
}

/** A label-only oracle over an in-process model or a label predictor (e.g. `ModelPool`). */
export function labelOracle(teacher: TeacherSource, opts: OracleOptions = {}): LabelOracle {
  return new LabelOracleImpl(teacher, opts);
}

/** A softmax oracle over an in-process model or a logits predictor. */
export function probsOracle(
  teacher: tfl.LayersModel | LogitsPredictor,
  opts: OracleOptions = {},
): ProbsOracle {
  return new ProbsOracleImpl(teacher, opts);
}

/** A logits+grad oracle over an in-process model (weights frozen: only inputs are differentiated). */
export function logitsGradOracle(model: tfl.LayersModel, opts: LogitsGradOptions = {}): LogitsGradOracle {
  return new LogitsGradOracleImpl(model, opts);
}

/** The ledger snapshot of any oracle (for run records). */
export function oracleLedger(o: OracleBase): LedgerSnapshot {
  return o.ledger.snapshot();
}
