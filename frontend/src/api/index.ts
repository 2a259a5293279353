// The typed Loraplex API client. Pages import from here.
export * from "./types";
export {
  ApiError,
  clearApiKey,
  errorMessage,
  getApiKey,
  isAbortError,
  onUnauthorized,
  setApiKey,
} from "./client";
export { getMe } from "./me";
export { getFileReport, listFiles, uploadFile, MULTIPART_THRESHOLD, PART_BYTES } from "./files";
export type { UploadHandle, UploadProgress } from "./files";
export {
  cancelJob,
  createJob,
  followJobEvents,
  getJob,
  listCheckpoints,
  listJobEvents,
  listJobs,
} from "./jobs";
export {
  getDrift,
  getFileContent,
  getUsage,
  isFineTuned,
  listAdapters,
  listAliases,
  listModels,
  promoteAlias,
  rollbackAlias,
  sendFeedback,
} from "./models";
export { streamChatCompletion } from "./chat";
export type { ChatRequest, ChatStreamMeta } from "./chat";
export {
  cancelEvalRun,
  createDecisionReport,
  createEvalRun,
  createExport,
  deleteAdapter,
  getAdapterZip,
  getAliasHistory,
  getDecisionReport,
  getEvalRun,
  getExport,
  getExportZip,
  listEvalRows,
  listEvalRuns,
  promoteGated,
} from "./evals";
export type {
  AdapterExport,
  AliasEvent,
  DecisionReportObject,
  EvalRun,
  EvalRunRow,
  FewShot,
  Promotion,
} from "./evals";
