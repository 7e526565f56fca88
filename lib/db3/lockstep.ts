/**
 * Lockstep execution of many independent label-only searches.
 *
 * Each search — one (sample, target class) pair — is written as plain sequential code in a generator
 * that `yield`s an {@link Ask} (m images it needs labelled) and receives the labels back. The driver
 * advances all searches together: every round it gathers the pending asks of all searches into one
 * oracle call per phase, so a call carries hundreds to thousands of images while each search keeps
 * the exact sequential semantics (and query count) of its algorithm.
 *
 * Asks are lazy: images are written (and any per-ask memory, such as Sign-OPT's random directions,
 * allocated) only when the ask is served, and a round serves at most `maxImagesPerRound` images, so
 * memory stays bounded however many searches are active. Searches are split into `lanes` groups that
 * run their rounds concurrently: while one lane waits for the teacher (e.g. a worker pool), another
 * prepares its next round.
 *
 * Budgets never make the outcome depend on timing: all searches of one sample run in the same lane
 * (samples are dealt to lanes in order of first appearance), so a sample's budget is only ever asked
 * for by one lane, in the lane's fixed round order; and with a total budget (shared by every sample)
 * the driver runs a single lane. Same inputs and seed → same replies, distances and ledger.
 */
import type { LabelOracle } from "../oracle/oracle.ts";
import { checkNumbers } from "../util/checks.ts";

/** A request for labels of `m` images, written on demand into the round's buffer. */
export interface Ask {
  /** Ledger phase, e.g. "bd.search". */
  phase: string;
  /** Number of images. */
  m: number;
  /** Write the m images (m·dim floats) into `dst` starting at `offset`. */
  write(dst: Float32Array, offset: number): void;
}

/** Labels of the asked images, or `null` when the sample's budget refused them. */
export type Reply = Int32Array | null;

/** One search: yields asks, receives replies, returns its result. */
export type Search<R> = Generator<Ask, R, Reply>;

/** Driver options. */
export interface LockstepOptions {
  /** Most images served per round and lane (bounds memory). Default 16384. */
  maxImagesPerRound?: number;
  /** Concurrent lanes (default 2). */
  lanes?: number;
  /** Called after every round with the images sent and the searches finished so far. */
  onRound?: (info: { images: number; finished: number; total: number }) => void;
}

/** Check driver options up front (`where` names the calling method). */
export function checkLockstepOptions(opts: LockstepOptions | undefined, where: string): void {
  if (opts) {
    checkNumbers(`${where} lockstep`, opts, {
      maxImagesPerRound: { integer: true, min: 1 },
      lanes: { integer: true, min: 1 },
    });
  }
}

interface Slot<R> {
  search: Search<R>;
  index: number;
  sampleId: number;
  ask?: Ask;
}

/**
 * Run `searches` (search i belongs to sample `sampleIdOf[i]`) against `oracle` in lockstep and return
 * their results in order.
 */
export async function runLockstep<R>(
  oracle: LabelOracle,
  searches: Search<R>[],
  sampleIdOf: Int32Array,
  opts: LockstepOptions = {},
): Promise<R[]> {
  const dim = oracle.inputShape.reduce((a, b) => a * b, 1);
  const cap = Math.max(1, opts.maxImagesPerRound ?? 16384);
  const lanes = Math.max(1, Math.min(opts.lanes ?? 2, searches.length));
  const results = new Array<R>(searches.length);
  let finished = 0;
  // Set when a lane fails: the other lanes stop before their next round, so nothing is asked after
  // this function has thrown (a caller's journal may already be closed by then).
  let failed = false;

  const start = (slot: Slot<R>, reply: Reply | undefined) => {
    const r = reply === undefined ? slot.search.next() : slot.search.next(reply);
    if (r.done) {
      results[slot.index] = r.value;
      slot.ask = undefined;
      finished++;
      return false;
    }
    slot.ask = r.value;
    return true;
  };

  const runLane = async (slots: Slot<R>[]) => {
    // Round buffers, one per phase, reused across rounds (the oracle copies what it sends).
    const buffers = new Map<string, { x: Float32Array; ids: Int32Array }>();
    const bufferFor = (phase: string, n: number) => {
      let b = buffers.get(phase);
      if (!b || b.ids.length < n) {
        const cap = Math.max(n, Math.ceil((b?.ids.length ?? 0) * 1.5));
        b = { x: new Float32Array(cap * dim), ids: new Int32Array(cap) };
        buffers.set(phase, b);
      }
      return { x: b.x.subarray(0, n * dim), ids: b.ids.subarray(0, n) };
    };
    let pending = slots.filter((s) => start(s, undefined));
    while (pending.length > 0 && !failed) {
      // Serve asks in FIFO order up to the cap (at least one).
      const served: Slot<R>[] = [];
      let images = 0;
      let i = 0;
      for (; i < pending.length; i++) {
        const m = pending[i].ask!.m;
        if (served.length > 0 && images + m > cap) break;
        served.push(pending[i]);
        images += m;
      }
      const waiting = pending.slice(i);
      // One oracle call per phase.
      const byPhase = new Map<string, Slot<R>[]>();
      for (const s of served) {
        const list = byPhase.get(s.ask!.phase);
        if (list) list.push(s);
        else byPhase.set(s.ask!.phase, [s]);
      }
      const calls = [...byPhase.entries()].map(async ([phase, group]) => {
        let n = 0;
        for (const s of group) n += s.ask!.m;
        const { x, ids } = bufferFor(phase, n);
        const offsets = new Int32Array(group.length);
        let o = 0;
        group.forEach((s, gi) => {
          offsets[gi] = o;
          s.ask!.write(x, o * dim);
          ids.fill(s.sampleId, o, o + s.ask!.m);
          o += s.ask!.m;
        });
        const ans = await oracle.labels(x, n, { phase, sampleIds: ids });
        return { group, offsets, ans };
      });
      const answers = await Promise.all(calls);
      const next: Slot<R>[] = [];
      for (const { group, offsets, ans } of answers) {
        group.forEach((s, gi) => {
          const o = offsets[gi], m = s.ask!.m;
          const reply = ans.refused[o] ? null : ans.labels.subarray(o, o + m);
          if (start(s, reply)) next.push(s);
        });
      }
      pending = waiting.concat(next);
      opts.onRound?.({ images, finished, total: searches.length });
    }
  };

  const all: Slot<R>[] = searches.map((search, index) => ({ search, index, sampleId: sampleIdOf[index] }));
  // One lane per sample's searches (see the module doc); one lane in all under a total budget.
  const laneCount = oracle.ledger.hasTotalBudget ? 1 : lanes;
  const groups: Slot<R>[][] = Array.from({ length: laneCount }, () => []);
  const laneOf = new Map<number, number>();
  for (const s of all) {
    let l = laneOf.get(s.sampleId);
    if (l === undefined) laneOf.set(s.sampleId, l = laneOf.size % laneCount);
    groups[l].push(s);
  }
  const outcomes = await Promise.allSettled(groups.map((g) =>
    runLane(g).catch((e) => {
      failed = true;
      throw e;
    })
  ));
  const bad = outcomes.find((o) => o.status === "rejected");
  if (bad) throw (bad as PromiseRejectedResult).reason;
  return results;
}
