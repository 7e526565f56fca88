/**
 * Write-ahead journal of a {@link Ledger}: what was reserved is on disk before the teacher is asked.
 *
 * One append-only file of JSON lines per run folder. Three record types:
 * - `r` (reserve): a charge the ledger admitted — phase, kinds, images per sample admitted and refused.
 *   Written and fsync'd *before* the oracle sends the images, so a kill at any later point cannot
 *   lose a query the teacher may have answered.
 * - `s` (settle): `n` images of a reservation were answered.
 * - `x` (release): images of a reservation that were never answered (a failed remote batch); their
 *   counts are taken back.
 *
 * Replaying the file gives the ledger's counts; reserved images with neither a settle nor a release
 * are reported as `reservedUnsettled` (they count as spent: the teacher may have answered them just
 * before the kill). A crash can cut the last line short — the record was not yet durable, so the
 * images were never sent — and replay ignores it; any other unreadable line is an error naming the
 * file and the fix. Several processes may append to one journal (O_APPEND writes of one line each);
 * ticket ids carry a per-process prefix, so their records never mix.
 *
 * @module
 */

/** Images per sample id, as `[id, images]` pairs. */
export type SampleCounts = [number, number][];

/** A reservation as journaled. */
export interface ReserveRecord {
  t: "r";
  /** Ticket id, unique across processes. */
  id: string;
  phase: string;
  kinds: string[];
  /** Admitted images per sample, in order of first appearance. */
  ok: SampleCounts;
  /** Refused images per sample. */
  no: SampleCounts;
}

/** Settled images of a reservation. */
export interface SettleRecord {
  t: "s";
  id: string;
  n: number;
}

/** Released (never answered) images of a reservation, per sample. */
export interface ReleaseRecord {
  t: "x";
  id: string;
  counts: SampleCounts;
}

/** Any journal record. */
export type JournalRecord = ReserveRecord | SettleRecord | ReleaseRecord;

/** Raised when a journal file cannot be read back. */
export class JournalError extends Error {
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = "JournalError";
  }
}

const encoder = new TextEncoder();

/** An open journal file (see the module doc). Writes are synchronous so they order with the charges. */
export class LedgerJournal {
  readonly path: string;
  #file: Deno.FsFile | null;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Open (creating it and its folder) the journal at `path` for appending. */
  static open(path: string): LedgerJournal {
    const dir = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    if (dir) Deno.mkdirSync(dir, { recursive: true });
    return new LedgerJournal(path, Deno.openSync(path, { append: true, create: true }));
  }

  /** Append one record; with `durable`, fsync before returning. */
  append(rec: JournalRecord, durable: boolean): void {
    if (!this.#file) throw new Error(`ledger journal ${this.path} is closed`);
    const bytes = encoder.encode(JSON.stringify(rec) + "\n");
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    if (durable) this.#file.syncDataSync();
  }

  /** Flush to disk and close. */
  close(): void {
    if (!this.#file) return;
    try {
      this.#file.syncDataSync();
    } finally {
      this.#file.close();
      this.#file = null;
    }
  }
}

/** Read every complete record of a journal (none when the file does not exist). */
export function readJournal(path: string): JournalRecord[] {
  return parseJournal(readBytes(path), path, 0).records;
}

/** The bytes of a journal file (empty when it does not exist). */
export function readBytes(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint8Array(0);
    throw e;
  }
}

const decoder = new TextDecoder();

/**
 * The complete (newline-terminated) records of `bytes` from byte `from` on, and the byte offset after
 * the last of them. A tail without a newline is a write still under way, or one a crash cut short:
 * it is not returned. A complete line that is not a record is an error naming the file and the fix.
 */
export function parseJournal(
  bytes: Uint8Array,
  path: string,
  from: number,
): { records: JournalRecord[]; end: number } {
  const records: JournalRecord[] = [];
  let pos = from, lineNo = 0;
  for (;;) {
    const nl = bytes.indexOf(10, pos);
    if (nl < 0) break;
    lineNo++;
    const line = decoder.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    if (line === "") continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = undefined;
    }
    if (!isRecord(rec)) {
      throw new JournalError(
        `ledger journal ${path}: record ${lineNo} (after byte ${from}) is not a valid ledger record ` +
          `(the file is corrupt or was edited). The run's query count cannot be trusted: delete the ` +
          `run's folder to start over, or restore the file.`,
        path,
      );
    }
    records.push(rec);
  }
  return { records, end: pos };
}

function isCounts(v: unknown): v is SampleCounts {
  return Array.isArray(v) &&
    v.every((p) =>
      Array.isArray(p) && p.length === 2 && Number.isInteger(p[0]) && Number.isInteger(p[1]) && p[1] >= 0
    );
}

function isRecord(v: unknown): v is JournalRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  if (typeof r.id !== "string") return false;
  if (r.t === "r") {
    return typeof r.phase === "string" && Array.isArray(r.kinds) && isCounts(r.ok) && isCounts(r.no);
  }
  if (r.t === "s") return Number.isInteger(r.n) && (r.n as number) >= 0;
  if (r.t === "x") return isCounts(r.counts);
  return false;
}
