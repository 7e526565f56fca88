/**
 * Flattening moved down to `lib/util/flatten.ts` (the display helpers in `lib/show` use it too);
 * re-exported here for the record writer.
 *
 * @module
 */
export { type FlatRow, flattenObject } from "../util/flatten.ts";
