/**
 * Native inference engine for sequential teachers: `forward.cpp` compiled locally (build.ts), a tfjs
 * model → plan converter (plan.ts), the FFI predictor (predictor.ts) and the engine choice with its
 * wasm-pool fallback (teacher_predictor.ts); and the first piece of the native training engine, DB3 LeNet-5
 * loss and gradients for every kit loss (lenet_grads.cpp / lenet_grads.ts), and the general training engine
 * for feed-forward networks, residual ones included (seq_train.cpp / seq_train.ts, model description in
 * seq_desc.ts), which also serves frozen teachers in inference mode — residual label/logit queries and the
 * `logits+grad` oracle's input gradients (frozen_net.ts); the trainer uses both through lib/train/native_stepper.ts.
 *
 * @module
 */
export { buildNative, type BuildOptions, NATIVE_FLAGS, type NativeBuild, nativeEnabled } from "./build.ts";
export {
  type LeNetDims,
  leNetDims,
  NativeLeNetGrads,
  type NativeLeNetGradsOptions,
  type NativeLeNetGradsResult,
  type NativeLossWeights,
  nativeLossWeights,
} from "./lenet_grads.ts";
export {
  type FrozenNetSpec,
  NativeFrozenNet,
  type NativeFrozenNetOptions,
  type NativeFrozenNetResult,
} from "./frozen_net.ts";
export { describeSeq, SEQ_TRAIN_LAYERS, type SeqDesc, type SeqOp } from "./seq_desc.ts";
export {
  type NativeBatch,
  type NativePassOptions,
  NativeSeqTrainer,
  type NativeSeqTrainerOptions,
  type NativeSeqTrainerResult,
} from "./seq_train.ts";
export { buildPlan, type NativePlan, type PlanOp, planOps, UnsupportedModelError } from "./plan.ts";
export {
  type NativeCreateResult,
  type NativeEngineInfo,
  NativePredictor,
  type NativePredictorOptions,
} from "./predictor.ts";
export {
  type EngineInfo,
  engineInfo,
  parseEngine,
  type PoolEngineInfo,
  TEACHER_ENGINES,
  type TeacherEngine,
  type TeacherPredictor,
  teacherPredictor,
  type TeacherPredictorOptions,
} from "./teacher_predictor.ts";
