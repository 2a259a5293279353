import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { jsonResponse, mockFetch, renderWithProviders } from "./test/helpers";

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

describe("App", () => {
  it("signs in, shows the tenant in the header, and signs out", async () => {
    mockFetch((url) => {
      if (url === "/v1/me") return jsonResponse({ object: "tenant", id: "t1", name: "acme", created_at: 1 });
      if (url === "/v1/files") return jsonResponse({ object: "list", data: [], has_more: false });
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<App />);

    await userEvent.type(screen.getByLabelText("API key"), "lpx-good");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    const header = await screen.findByRole("banner");
    expect(within(header).getByText("acme")).toBeInTheDocument();
    expect(sessionStorage.getItem("loraplex.apiKey")).toBe("lpx-good");
    expect(window.location.pathname).toBe("/datasets");
    expect(await screen.findByText("No files yet.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Datasets" })).toHaveAttribute("aria-current", "page");

    await userEvent.click(within(header).getByRole("button", { name: "Sign out" }));
    expect(screen.getByLabelText("API key")).toBeInTheDocument();
    expect(sessionStorage.getItem("loraplex.apiKey")).toBeNull();
  });
});
