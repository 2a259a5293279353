import { renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeJob, messageEvent } from "../test/fixtures";
import { jsonResponse, mockFetch, sseResponse } from "../test/helpers";
import { RECONNECT_MS, useJobStream } from "./useJobStream";

afterEach(() => vi.unstubAllGlobals());

describe("useJobStream", () => {
  it("resumes after the last event seen when the connection drops, until the job is terminal", async () => {
    const searches: string[] = [];
    mockFetch((_path, req) => {
      searches.push(req.search);
      return searches.length === 1
        ? sseResponse([
            ["job", makeJob("running")],
            [null, messageEvent("ftevent-0001", "Fine-tuning job started.", 1)],
          ])
        : sseResponse([
            ["job", makeJob("succeeded")],
            [null, messageEvent("ftevent-0002", "The job has successfully completed.", 2)],
          ]);
    });
    const { result } = renderHook(() => useJobStream("ftjob-1"));

    await waitFor(() => expect(result.current.job?.status).toBe("succeeded"), { timeout: RECONNECT_MS + 5000 });
    await waitFor(() => expect(result.current.events.map((e) => e.id)).toEqual(["ftevent-0002", "ftevent-0001"]));
    expect(searches).toEqual(["?stream=true", "?stream=true&after=ftevent-0001"]);
    expect(result.current.live).toBe(false);
  });

  it("stops and reports a refusal", async () => {
    let calls = 0;
    mockFetch(() => {
      calls += 1;
      return jsonResponse({ error: { message: "No such fine-tuning job: 'ftjob-1'.", type: "invalid_request_error", param: null, code: "fine_tuning_job_not_found" } }, 404);
    });
    const { result } = renderHook(() => useJobStream("ftjob-1"));
    await waitFor(() => expect(String(result.current.error)).toContain("No such fine-tuning job"));
    await new Promise((r) => setTimeout(r, 200));
    expect(calls).toBe(1);
  });
});
