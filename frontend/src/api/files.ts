import { ApiError, NETWORK_ERROR_MESSAGE, errorFromBody, getApiKey, notifyUnauthorized } from "./client";
import { api, call } from "./http";
import type { FileObject, FileReport, ListResponse, Upload } from "./types";

export function listFiles(signal?: AbortSignal): Promise<ListResponse<FileObject>> {
  return call(api.GET("/v1/files", { params: { query: { limit: 100 } }, signal }));
}

export async function getFileReport(fileId: string, signal?: AbortSignal): Promise<FileReport> {
  const report = await call(
    api.GET("/v1/files/{file_id}/report", { params: { path: { file_id: fileId } }, signal }),
  );
  return report as FileReport;
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadHandle {
  promise: Promise<FileObject>;
  abort: () => void;
}

/** Files above this go through the Uploads API in parts of PART_BYTES. */
export const MULTIPART_THRESHOLD = 32 * 1024 * 1024;
export const PART_BYTES = 16 * 1024 * 1024;

/** POSTs a form with XMLHttpRequest (fetch cannot report upload progress). */
function postForm<T>(
  url: string,
  form: FormData,
  onProgress: (loaded: number) => void,
  onXhr: (xhr: XMLHttpRequest) => void,
): Promise<T> {
  const xhr = new XMLHttpRequest();
  onXhr(xhr);
  return new Promise<T>((resolve, reject) => {
    xhr.open("POST", url);
    const key = getApiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    xhr.upload.onprogress = (e: ProgressEvent) => onProgress(e.loaded);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body as T);
        return;
      }
      const err = errorFromBody(xhr.status, body);
      if (xhr.status === 401) notifyUnauthorized(err);
      reject(err);
    };
    xhr.onerror = () => reject(new ApiError(NETWORK_ERROR_MESSAGE, 0, { code: "network_error" }));
    xhr.onabort = () => reject(new DOMException("Upload cancelled.", "AbortError"));
    xhr.send(form);
  });
}

/**
 * Uploads a training file, reporting progress. Big files go through the Uploads API
 * (create, parts, complete); an aborted multipart upload is cancelled on the server.
 * Rejects with ApiError; an aborted upload rejects with a DOMException named "AbortError".
 */
export function uploadFile(
  file: File,
  onProgress?: (progress: UploadProgress) => void,
  opts: { purpose?: string; threshold?: number; partBytes?: number } = {},
): UploadHandle {
  const purpose = opts.purpose ?? "fine-tune";
  const threshold = opts.threshold ?? MULTIPART_THRESHOLD;
  const partBytes = opts.partBytes ?? PART_BYTES;
  let current: XMLHttpRequest | null = null;
  let aborted = false;
  const report = (loaded: number) => onProgress?.({ loaded: Math.min(loaded, file.size), total: file.size });
  const track = (xhr: XMLHttpRequest) => {
    current = xhr;
  };

  const single = () => {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    return postForm<FileObject>("/v1/files", form, report, track);
  };

  const multipart = async (): Promise<FileObject> => {
    const upload: Upload = await call(
      api.POST("/v1/uploads", {
        body: {
          filename: file.name,
          purpose,
          bytes: file.size,
          mime_type: file.type || "application/jsonl",
        },
      }),
    );
    const path = { upload_id: upload.id };
    try {
      const partIds: string[] = [];
      for (let start = 0; start < file.size; start += partBytes) {
        if (aborted) throw new DOMException("Upload cancelled.", "AbortError");
        const form = new FormData();
        form.append("data", file.slice(start, start + partBytes), `${file.name}.part`);
        const part = await postForm<{ id: string }>(
          `/v1/uploads/${encodeURIComponent(upload.id)}/parts`,
          form,
          (loaded) => report(start + loaded),
          track,
        );
        partIds.push(part.id);
      }
      const done = await call(
        api.POST("/v1/uploads/{upload_id}/complete", { params: { path }, body: { part_ids: partIds } }),
      );
      if (!done.file) throw new ApiError("The upload completed without a file.", 500);
      report(file.size);
      return done.file;
    } catch (err) {
      await api.POST("/v1/uploads/{upload_id}/cancel", { params: { path } }).catch(() => undefined);
      throw err;
    }
  };

  const promise = file.size > threshold ? multipart() : single();
  return {
    promise,
    abort: () => {
      aborted = true;
      current?.abort();
    },
  };
}
