import {
  ApiError,
  NETWORK_ERROR_MESSAGE,
  errorFromBody,
  getApiKey,
  notifyUnauthorized,
  request,
} from "./client";
import type { FileObject, FileReport, ListResponse } from "./types";

export function listFiles(signal?: AbortSignal): Promise<ListResponse<FileObject>> {
  return request<ListResponse<FileObject>>("/v1/files", { signal });
}

export function getFileReport(fileId: string, signal?: AbortSignal): Promise<FileReport> {
  return request<FileReport>(`/v1/files/${encodeURIComponent(fileId)}/report`, { signal });
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadHandle {
  promise: Promise<FileObject>;
  abort: () => void;
}

/**
 * Uploads a training file with XMLHttpRequest (fetch cannot report upload progress).
 * Rejects with ApiError; an aborted upload rejects with a DOMException named "AbortError".
 */
export function uploadFile(
  file: File,
  onProgress?: (progress: UploadProgress) => void,
  purpose = "fine-tune",
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<FileObject>((resolve, reject) => {
    xhr.open("POST", "/v1/files");
    const key = getApiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";

    xhr.upload.onprogress = (e: ProgressEvent) => {
      onProgress?.({ loaded: e.loaded, total: e.lengthComputable ? e.total : file.size });
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body as FileObject);
        return;
      }
      const err = errorFromBody(xhr.status, body);
      if (xhr.status === 401) notifyUnauthorized(err);
      reject(err);
    };
    xhr.onerror = () => reject(new ApiError(NETWORK_ERROR_MESSAGE, 0, { code: "network_error" }));
    xhr.onabort = () => reject(new DOMException("Upload cancelled.", "AbortError"));

    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
