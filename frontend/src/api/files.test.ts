import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonResponse, mockFetch } from "../test/helpers";
import { uploadFile, type UploadProgress } from "./files";

/** An XMLHttpRequest stand-in that answers each part upload as soon as it is sent. */
class PartXhr {
  static sent: { url: string; size: number }[] = [];
  url = "";
  status = 0;
  responseText = "";
  responseType = "";
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  open(_method: string, url: string) {
    this.url = url;
  }
  setRequestHeader() {}
  send(body: FormData) {
    const size = (body.get("data") as Blob).size;
    PartXhr.sent.push({ url: this.url, size });
    setTimeout(() => {
      this.upload.onprogress?.({ loaded: size, total: size, lengthComputable: true } as ProgressEvent);
      this.status = 200;
      this.responseText = JSON.stringify({ id: `part-${PartXhr.sent.length}`, object: "upload.part" });
      this.onload?.();
    }, 0);
  }
  abort() {
    this.onabort?.();
  }
}

beforeEach(() => {
  PartXhr.sent = [];
  vi.stubGlobal("XMLHttpRequest", PartXhr);
});
afterEach(() => vi.unstubAllGlobals());

describe("uploadFile in parts", () => {
  it("creates an upload, sends the parts in order with progress, and completes it", async () => {
    const bodies: Record<string, unknown> = {};
    mockFetch((path, req) => {
      bodies[path] = req.body ? JSON.parse(req.body) : null;
      if (path === "/v1/uploads") {
        return jsonResponse({ id: "upload-1", object: "upload", status: "pending" });
      }
      if (path === "/v1/uploads/upload-1/complete") {
        return jsonResponse({ id: "upload-1", status: "completed", file: { id: "file-9", filename: "big.jsonl" } });
      }
      return jsonResponse({ error: { message: "unexpected", type: "x", param: null, code: null } }, 500);
    });
    const file = new File(["x".repeat(25)], "big.jsonl", { type: "application/jsonl" });
    const progress: UploadProgress[] = [];
    const result = await uploadFile(file, (p) => progress.push(p), { threshold: 10, partBytes: 10 }).promise;

    expect(result.id).toBe("file-9");
    expect(bodies["/v1/uploads"]).toMatchObject({ filename: "big.jsonl", bytes: 25, purpose: "fine-tune" });
    expect(PartXhr.sent).toEqual([
      { url: "/v1/uploads/upload-1/parts", size: 10 },
      { url: "/v1/uploads/upload-1/parts", size: 10 },
      { url: "/v1/uploads/upload-1/parts", size: 5 },
    ]);
    expect(bodies["/v1/uploads/upload-1/complete"]).toEqual({ part_ids: ["part-1", "part-2", "part-3"] });
    expect(progress.map((p) => p.loaded)).toEqual([10, 20, 25, 25]);
  });

  it("cancels the upload on the server when completing fails, and reports the API's message", async () => {
    const calls: string[] = [];
    mockFetch((path) => {
      calls.push(path);
      if (path === "/v1/uploads") return jsonResponse({ id: "upload-2", object: "upload", status: "pending" });
      if (path.endsWith("/complete")) {
        return jsonResponse({ error: { message: "The parts add up to 20 bytes, not 25.", type: "invalid_request_error", param: null, code: "upload_size_mismatch" } }, 400);
      }
      return jsonResponse({ id: "upload-2", status: "cancelled" });
    });
    const file = new File(["x".repeat(25)], "big.jsonl");
    await expect(uploadFile(file, undefined, { threshold: 10, partBytes: 10 }).promise).rejects.toThrow(
      "The parts add up to 20 bytes, not 25.",
    );
    expect(calls).toContain("/v1/uploads/upload-2/cancel");
  });
});
