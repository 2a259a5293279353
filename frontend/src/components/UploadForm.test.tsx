import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setApiKey } from "../api";
import { UploadForm } from "./UploadForm";

/** A stand-in for XMLHttpRequest that the test drives by hand. */
class FakeXhr {
  static last: FakeXhr | null = null;
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  status = 0;
  responseText = "";
  responseType = "";
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;

  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true } as ProgressEvent);
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

const uploaded = {
  id: "file-abc",
  object: "file",
  bytes: 2048,
  created_at: 1_700_000_000,
  filename: "train.jsonl",
  purpose: "fine-tune",
  status: "uploaded",
  status_details: null,
  sha256: "00",
};

beforeEach(() => {
  FakeXhr.last = null;
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
  setApiKey("lpx-test");
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function chooseFile() {
  const file = new File(["x".repeat(2048)], "train.jsonl", { type: "application/jsonl" });
  return userEvent.upload(screen.getByLabelText("Training file"), file);
}

describe("UploadForm", () => {
  it("uploads an eval file with the purpose evals", async () => {
    render(<UploadForm />);
    await userEvent.selectOptions(screen.getByLabelText("Purpose"), "evals");
    const file = new File(['{"messages": [], "expected": "x"}'], "evals.jsonl", { type: "application/jsonl" });
    await userEvent.upload(screen.getByLabelText("Eval file"), file);
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const xhr = FakeXhr.last as FakeXhr;
    expect(xhr.body?.get("purpose")).toBe("evals");
    expect((xhr.body?.get("file") as File).name).toBe("evals.jsonl");
    expect(screen.getByLabelText("Purpose")).toBeDisabled();
    await act(async () => xhr.respond(200, { ...uploaded, filename: "evals.jsonl", purpose: "evals" }));
    expect(await screen.findByText(/Uploaded/)).toHaveTextContent("evals.jsonl");
  });

  it("shows upload progress, then reports success", async () => {
    const onUploaded = vi.fn();
    render(<UploadForm onUploaded={onUploaded} />);
    await chooseFile();
    expect(screen.getByText(/Selected:/)).toHaveTextContent("train.jsonl");

    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const xhr = FakeXhr.last as FakeXhr;
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe("/v1/files");
    expect(xhr.headers.Authorization).toBe("Bearer lpx-test");
    expect(xhr.body?.get("purpose")).toBe("fine-tune");
    expect((xhr.body?.get("file") as File).name).toBe("train.jsonl");

    act(() => xhr.progress(512, 2048));
    const bar = screen.getByRole("progressbar", { name: "Upload progress" });
    expect(bar).toHaveAttribute("aria-valuenow", "25");
    expect(screen.getByText(/25% — 512 B of 2\.0 KB/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Uploading…" })).toBeDisabled();

    act(() => xhr.progress(1536, 2048));
    expect(bar).toHaveAttribute("aria-valuenow", "75");

    await act(async () => xhr.respond(200, uploaded));
    expect(screen.queryByRole("progressbar")).not.toBeInTheDocument();
    expect(screen.getByText(/Validation has started/)).toBeInTheDocument();
    expect(onUploaded).toHaveBeenCalledWith(expect.objectContaining({ id: "file-abc" }));
  });

  it("shows the API's error message when the upload is refused", async () => {
    render(<UploadForm />);
    await chooseFile();
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    await act(async () =>
      (FakeXhr.last as FakeXhr).respond(413, {
        error: {
          message: "File is larger than the 1024-byte limit.",
          type: "invalid_request_error",
          param: "file",
          code: "file_too_large",
        },
      }),
    );
    expect(screen.getByRole("alert")).toHaveTextContent("File is larger than the 1024-byte limit.");
  });

  it("can cancel an upload in flight", async () => {
    render(<UploadForm />);
    await chooseFile();
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel upload" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Upload cancelled.");
  });

  it("takes a file dropped on the drop zone", async () => {
    render(<UploadForm />);
    const zone = screen.getByText(/Drop a file here/).closest(".dropzone") as HTMLElement;
    const file = new File(["{}"], "dropped.jsonl");
    const dataTransfer = {
      files: [file],
      items: [{ kind: "file", type: "", getAsFile: () => file }],
      types: ["Files"],
      dropEffect: "none",
    };
    fireEvent.dragEnter(zone, { dataTransfer });
    await waitFor(() => expect(zone).toHaveClass("dropzone-active"));
    fireEvent.drop(zone, { dataTransfer });
    await waitFor(() => expect(screen.getByText(/Selected:/)).toHaveTextContent("dropped.jsonl"));
    expect(zone).not.toHaveClass("dropzone-active");

    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    expect(((FakeXhr.last as FakeXhr).body?.get("file") as File).name).toBe("dropped.jsonl");
  });
});
