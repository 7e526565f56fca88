/**
 * Teacher-side query journal: every label call a unit makes is appended to a file in the unit's
 * work folder as one JSON line `{"p": phase, "s": [[sampleId, images], …]}` (only the images the
 * teacher answered; refused ones cost nothing). A unit killed mid-run leaves its journal behind, so
 * the queries it paid are still known: the next attempt replays the dead attempts' journals into a
 * "lost" ledger that the reduce step adds to the run's total.
 *
 * Lines are written before the answer is returned, without fsync: they survive a killed process
 * (the kernel holds them), not a machine crash.
 *
 * @module
 */
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelAnswer, LabelOracle, QueryTag } from "../oracle/oracle.ts";

/** Prefix of journal file names in a unit's work folder. */
export const JOURNAL_PREFIX = "journal-";

/** A label oracle that writes every answered call to `path` (see the module doc). */
export function journaledOracle(inner: LabelOracle, path: string): LabelOracle & { close(): void } {
  const file = Deno.openSync(path, { append: true, create: true });
  const enc = new TextEncoder();
  const write = (line: string) => {
    const b = enc.encode(line);
    let off = 0;
    while (off < b.length) off += file.writeSync(b.subarray(off));
  };
  return {
    access: "label",
    inputShape: inner.inputShape,
    numClasses: inner.numClasses,
    ledger: inner.ledger,
    async labels(x: Float32Array, n: number, q: QueryTag): Promise<LabelAnswer> {
      const a = await inner.labels(x, n, q);
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        if (a.refused[i]) continue;
        const id = q.sampleIds ? q.sampleIds[i] : -1;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      if (counts.size > 0) write(JSON.stringify({ p: q.phase, s: [...counts] }) + "\n");
      return a;
    },
    close: () => file.close(),
  } as LabelOracle & { close(): void };
}

/** Images answered according to a journal file (0 when it does not exist). */
export async function journalImages(path: string): Promise<number> {
  let total = 0;
  for (const e of await readJournal(path)) for (const [, k] of e.s) total += k;
  return total;
}

async function readJournal(path: string): Promise<{ p: string; s: [number, number][] }[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: { p: string; s: [number, number][] }[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // A line cut short by the kill: its call's answer never reached the unit; skip it.
    }
  }
  return out;
}

/**
 * Replay journals into a ledger: each line is one call of `label` kind in its phase, booked per
 * sample. Used for attempts that died, whose own ledger was lost with their process.
 */
export async function ledgerFromJournals(paths: string[]): Promise<LedgerSnapshot> {
  const ledger = new Ledger();
  for (const p of paths) {
    for (const e of await readJournal(p)) {
      const ids: number[] = [];
      for (const [id, k] of e.s) for (let j = 0; j < k; j++) ids.push(id);
      ledger.charge({ kinds: ["label"], phase: e.p, n: ids.length, sampleIds: Int32Array.from(ids) });
    }
  }
  return ledger.snapshot();
}

/** Journal files in a work folder other than `except`, sorted by name. */
export async function otherJournals(workDir: string, except: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(workDir)) {
    const p = `${workDir}/${e.name}`;
    if (e.isFile && e.name.startsWith(JOURNAL_PREFIX) && p !== except) out.push(p);
  }
  return out.sort();
}
