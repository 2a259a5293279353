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
export { getFileReport, listFiles, uploadFile } from "./files";
export type { UploadHandle, UploadProgress } from "./files";
export { cancelJob, createJob, getJob, listJobEvents, listJobs } from "./jobs";
export { isFineTuned, listModels } from "./models";
export { streamChatCompletion } from "./chat";
export type { ChatRequest } from "./chat";
