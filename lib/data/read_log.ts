/**
 * A process-wide record of every `loadDataset` call, so a test can prove that a pipeline (e.g. a
 * zero-shot method) never touched the training split, and a notebook can show what was read.
 */
import type { Split } from "./types.ts";

/** One `loadDataset` call. */
export interface DatasetReadEntry {
  /** Dataset name as passed (unknown names are logged too). */
  name: string;
  /** Split as passed. */
  split: Split | string;
  /** ISO-8601 time of the call. */
  at: string;
  /** `limit` option, if given. */
  limit?: number;
  /** `dir` option, if given. */
  dir?: string;
}

/** Subscriber called synchronously on every read; an exception it throws fails that load. */
export type DatasetReadListener = (entry: DatasetReadEntry) => void;

const log: DatasetReadEntry[] = [];
const listeners = new Set<DatasetReadListener>();

/** Every `loadDataset` call so far, oldest first (a copy). */
export function datasetReadLog(): DatasetReadEntry[] {
  return log.map((e) => ({ ...e }));
}

/** Forget the log (listeners stay subscribed). */
export function clearDatasetReadLog(): void {
  log.length = 0;
}

/** Subscribe to reads; returns a function that unsubscribes. */
export function onDatasetRead(cb: DatasetReadListener): () => void {
  listeners.add(cb);
  return () => {
    listeners.delete(cb);
  };
}

/** Append a read to the log and notify listeners (called by `loadDataset` before any I/O). */
export function recordDatasetRead(entry: Omit<DatasetReadEntry, "at">): DatasetReadEntry {
  const e: DatasetReadEntry = { ...entry, at: new Date().toISOString() };
  log.push(e);
  for (const cb of [...listeners]) cb({ ...e });
  return e;
}
