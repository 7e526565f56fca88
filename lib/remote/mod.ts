/**
 * `lib/remote`: label-only teachers over HTTP — KServe v2 / TF Serving wire formats, a retrying
 * transport, a remote label predictor, a persistent label cache, a label oracle that books paid
 * queries, cache hits and failed attempts separately, and a loopback server for kit teachers.
 *
 * @module
 */
export {
  BINARY_HEADER,
  decodeLabels,
  decodeRequest,
  decodeResponse,
  type EncodedRequest,
  encodeLabels,
  encodeRequest,
  type Endpoint,
  inferPath,
  inferUrl,
  type ParsedRequest,
  type Protocol,
  ProtocolError,
  PROTOCOLS,
} from "./protocols.ts";
export {
  type FailureKind,
  RemoteError,
  Transport,
  TRANSPORT_DEFAULTS,
  type TransportOptions,
  type TransportStats,
} from "./http.ts";
export { type BatchCallback, RemoteTeacher, remoteTeacher, type RemoteTeacherOptions } from "./client.ts";
export { imageKey, imageKeys, LabelCache, namespaceHash } from "./cache.ts";
export {
  cachedLabelOracle,
  type CachedOracleOptions,
  remoteCacheIdentity,
  RemoteLabelOracle,
  remoteLabelOracle,
  type RemoteOracleOptions,
  type RemoteUsage,
  reportedModelIdentity,
  type UsageEntry,
} from "./oracle.ts";
export { type SpawnedServer, type SpawnOptions, spawnServer } from "./spawn.ts";
export {
  type Fault,
  type FaultContext,
  type RequestLogEntry,
  type ServeOptions,
  type ServeProtocols,
  type ServerHandle,
  startServer,
} from "./serve.ts";
