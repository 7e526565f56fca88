/**
 * `lib/teachers`: teachers the kit did not train — TF.js model folders read from disk (a Deno
 * file-system IOHandler, no tfjs-node) behind input adapters (layout, value range, mean/std).
 *
 * @module
 */
export { fileSystemIO, type FileSystemIOOptions, TeacherFileError } from "./fs_io.ts";
export {
  adaptArray,
  adaptTensor,
  InputAdapterLayer,
  type InputAdapterOptions,
  isIdentityAdapter,
  kitShapeOf,
  type Layout,
  LogProbsLayer,
  modelShapeOf,
  resolveAdapter,
  type ResolvedAdapter,
} from "./adapters.ts";
export { CONVERTER_PACKAGE, GraphModelLayer, type GraphModelLike, loadGraphLayer } from "./graph.ts";
export {
  type FileTeacher,
  fitInputShape,
  loadTeacher,
  type LoadTeacherOptions,
  type ModelFormat,
  saveTeacherFolder,
  TeacherShapeError,
  type TeacherSourceInfo,
  wrapTeacher,
} from "./load.ts";
export { type ResolvedTeacher, resolveTeacher } from "./resolve.ts";
export { exportChannelsFirst, type ForeignExportOptions } from "./foreign.ts";
