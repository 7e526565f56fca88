/**
 * Results: run records (JSON + CSV), the papers' reference numbers, and tables.
 *
 * @module
 */
export * from "./record.ts";
export * from "./paper.ts";
export * from "./table.ts";
export * from "./seeds.ts";
export * from "./verdict.ts";
export * from "./supersede.ts";
export * from "./csv.ts";
export * from "./flatten.ts";
export { readTextIfExists, writeAtomic } from "./io.ts";
