/**
 * The atomic file helpers moved down to `lib/util/files.ts` (the methods' caches use them too and sit
 * below the run record); re-exported here for the record writer.
 *
 * @module
 */
export { readTextIfExists, writeAtomic } from "../util/files.ts";
