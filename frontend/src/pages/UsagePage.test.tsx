import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { UsageDay } from "../api";
import { makeAdapter } from "../test/fixtures";
import { jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { pivot, UsagePage } from "./UsagePage";

afterEach(() => vi.unstubAllGlobals());

const day = (date: string, model: string, requests: number): UsageDay => ({
  object: "usage.daily",
  date,
  model,
  adapter_id: null,
  requests,
  prompt_tokens: requests * 10,
  completion_tokens: requests * 5,
  total_tokens: requests * 15,
  latency_ms_avg: 100,
  latency_ms_max: 200,
});

describe("pivot", () => {
  it("makes one row per day with a column per model", () => {
    const out = pivot([day("2026-11-02", "b", 3), day("2026-11-01", "a", 1), day("2026-11-02", "a", 2)], "requests");
    expect(out.models).toEqual(["a", "b"]);
    expect(out.rows).toEqual([
      { date: "2026-11-01", a: 1 },
      { date: "2026-11-02", b: 3, a: 2 },
    ]);
  });
});

describe("UsagePage", () => {
  it("charts usage per model and the thumbs-down trend of an adapter", async () => {
    mockFetch((path) => {
      if (path === "/v1/usage") {
        return jsonResponse({
          object: "list",
          start_date: "2026-10-31",
          end_date: "2026-11-29",
          data: [day("2026-11-28", "ft:x", 4), day("2026-11-29", "ft:x", 6)],
          totals: { requests: 10, prompt_tokens: 100, completion_tokens: 50, total_tokens: 150 },
          has_more: false,
        });
      }
      if (path === "/v1/adapters") return jsonResponse({ object: "list", data: [makeAdapter("adapter-1")], has_more: false });
      if (path === "/v1/adapters/adapter-1/drift") {
        return jsonResponse({
          object: "adapter.drift",
          adapter_id: "adapter-1",
          model: "ft:x",
          status: "alert",
          margin: 0.1,
          min_volume: 20,
          baseline: { ratings: 40, thumbs_down: 4, down_rate: 0.1, start: 0, end: 1, complete: true },
          windows: [
            { window: "7d", ratings: 30, thumbs_down: 9, down_rate: 0.3, delta: 0.2, status: "alert", start: 0, end: 1 },
            { window: "24h", ratings: 5, thumbs_down: 1, down_rate: 0.2, delta: 0.1, status: "insufficient_data", start: 0, end: 1 },
          ],
        });
      }
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<UsagePage />);

    const requests = await screen.findByRole("region", { name: "Requests per day data" });
    expect(within(requests).getAllByRole("row").map((r) => r.textContent)).toEqual(["Dayft:x", "2026-11-284", "2026-11-296"]);
    expect(screen.getByText("Requests").nextSibling).toHaveTextContent("10");
    expect(await screen.findByText(/Alert: thumbs-down is more than 10 points/)).toBeInTheDocument();
    const drift = screen.getByRole("region", { name: "Thumbs-down rate (%) data" });
    expect(within(drift).getAllByRole("row").map((r) => r.textContent)).toEqual([
      "WindowThumbs down (%)",
      "First week (baseline)10.0",
      "Last 7d30.0",
      "Last 24h20.0",
    ]);
  });

  it("shows the API's error in words", async () => {
    mockFetch(() => jsonResponse({ error: { message: "start_date must be before end_date", type: "invalid_request_error", param: "start_date", code: null } }, 400));
    renderWithProviders(<UsagePage />);
    expect((await screen.findAllByRole("alert"))[0]).toHaveTextContent("start_date must be before end_date");
  });
});
