import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeAdapter, makeAlias } from "../test/fixtures";
import { apiError, jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { AdapterActions, AliasHistory, PromoteForm, parseWorstRegression } from "./Registry";

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const BLOCKED =
  "The candidate regresses 1 guarded metric(s) by more than 0.020 versus the alias' current version; " +
  "worst: regression exact_match 0.900 -> 0.500. Promote with force and a reason to override.";

function stubDownloads() {
  const created = vi.fn((_: Blob) => "blob:x");
  vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: created, revokeObjectURL: vi.fn() }));
  const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => undefined);
  return { created, click };
}

describe("parseWorstRegression", () => {
  it("reads the worst metric out of the gate's message", () => {
    expect(parseWorstRegression(BLOCKED)).toEqual({ group: "regression", metric: "exact_match", current: 0.9, candidate: 0.5 });
    expect(parseWorstRegression("something else")).toBeNull();
  });
});

describe("PromoteForm", () => {
  it("shows what regressed when the gate blocks, and promotes anyway only with a reason", async () => {
    const adapter = makeAdapter("adapter-00000003");
    const bodies: unknown[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/aliases/support/promote") {
        const body = JSON.parse(req.body ?? "{}");
        bodies.push(body);
        if (!body.force) return apiError(BLOCKED, 409, "promotion_blocked");
        return jsonResponse({ object: "alias.promotion", alias: makeAlias("support", adapter.name), forced: true, gate: {} });
      }
      return apiError("nope", 404);
    });
    renderWithProviders(<PromoteForm adapter={adapter} aliases={[makeAlias("support", "ft:old")]} />);

    await userEvent.type(screen.getByLabelText("Alias name"), "support");
    await userEvent.click(screen.getByRole("button", { name: "Promote" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Promotion blocked.");
    const table = within(alert).getByRole("table");
    expect(within(table).getByText("exact_match")).toBeInTheDocument();
    expect(within(table).getByTestId("regression-delta")).toHaveTextContent("−40.0 pts");

    const force = screen.getByRole("button", { name: "Promote anyway" });
    expect(force).toBeDisabled();
    await userEvent.type(screen.getByLabelText(/^Reason/), "hotfix approved by on-call");
    await userEvent.click(force);
    expect(await screen.findByText(/now serves/)).toHaveTextContent(`support now serves ${adapter.name}.`);
    expect(bodies).toEqual([
      { adapter: adapter.id },
      { adapter: adapter.id, force: true, reason: "hotfix approved by on-call" },
    ]);
  });

  it("says an evaluation is required when no comparable runs exist, and other errors in words", async () => {
    const adapter = makeAdapter("adapter-00000004");
    let answer = apiError("No finished eval runs of both…", 409, "evaluation_required");
    mockFetch(() => answer);
    renderWithProviders(<PromoteForm adapter={adapter} aliases={[makeAlias("support", "ft:old")]} />);
    await userEvent.type(screen.getByLabelText("Alias name"), "support");
    await userEvent.click(screen.getByRole("button", { name: "Promote" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Evaluation required. No finished eval runs of both…");
    expect(screen.queryByRole("table")).not.toBeInTheDocument();

    answer = apiError("Alias 'support' already points at this target.", 409, "already_current");
    await userEvent.click(screen.getByRole("button", { name: "Promote" }));
    expect(await screen.findByText("Alias 'support' already points at this target.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Promote anyway" })).not.toBeInTheDocument();
  });
});

describe("AliasHistory", () => {
  it("lists every target, newest first, with forced reasons", async () => {
    mockFetch(() =>
      jsonResponse({
        object: "list",
        has_more: false,
        data: [
          { id: "ev-2", object: "alias.event", action: "promote_forced", version: 2, adapter_id: "adapter-b", base_model: "m", system_prompt: null, reason: "urgent", created_at: 1764428500 },
          { id: "ev-1", object: "alias.event", action: "create", version: 1, adapter_id: "adapter-a", base_model: "m", system_prompt: null, reason: null, created_at: 1764428400 },
        ],
      }),
    );
    renderWithProviders(<AliasHistory name="support" />);
    expect(screen.getByRole("status")).toHaveTextContent("Loading history…");
    const items = within(await screen.findByRole("list", { name: "History of support" })).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent("v2 · Promoted anyway adapter-b");
    expect(items[0]).toHaveTextContent("urgent");
    expect(items[1]).toHaveTextContent("v1 · Created adapter-a");
  });

  it("has empty and error states", async () => {
    mockFetch(() => jsonResponse({ object: "list", has_more: false, data: [] }));
    const { unmount } = renderWithProviders(<AliasHistory name="a" />);
    expect(await screen.findByText("No history yet.")).toBeInTheDocument();
    unmount();
    mockFetch(() => apiError("Alias 'b' not found.", 404));
    renderWithProviders(<AliasHistory name="b" />);
    expect(await screen.findByRole("alert")).toHaveTextContent("Alias 'b' not found.");
  });
});

describe("AdapterActions", () => {
  it("downloads the zip, follows an export to its download", async () => {
    const { created } = stubDownloads();
    const adapter = makeAdapter("adapter-00000005");
    let polls = 0;
    const exp = (status: string) => ({
      id: "export-1", object: "adapter.export", adapter_id: adapter.id, kind: "adapter", status,
      bytes: status === "succeeded" ? 2048 : null, sha256: null, error: null, created_at: 1, finished_at: null,
    });
    const seen: string[] = [];
    mockFetch((path, req) => {
      seen.push(`${req.method} ${path}${req.body ? ` ${req.body}` : ""}`);
      if (path === `/v1/adapters/${adapter.id}/content`) return new Response("PK", { status: 200 });
      if (path === `/v1/adapters/${adapter.id}/exports`) return jsonResponse(exp("queued"));
      if (path === `/v1/adapters/${adapter.id}/exports/export-1`) return jsonResponse(exp(++polls > 1 ? "succeeded" : "running"));
      if (path === `/v1/adapters/${adapter.id}/exports/export-1/content`) return new Response("PK2", { status: 200 });
      return apiError("nope", 404);
    });
    renderWithProviders(<AdapterActions adapter={adapter} />);
    await userEvent.click(screen.getByRole("button", { name: "Download adapter (zip)" }));
    await vi.waitFor(() => expect(created).toHaveBeenCalledTimes(1));

    await userEvent.selectOptions(screen.getByLabelText("Export"), "adapter");
    await userEvent.click(screen.getByRole("button", { name: "Request export" }));
    expect(await screen.findByTestId("export-status")).toHaveTextContent(/export-1/);
    await userEvent.click(await screen.findByRole("button", { name: "Download export" }, { timeout: 5000 }));
    await vi.waitFor(() => expect(created).toHaveBeenCalledTimes(2));
    expect(seen).toContain(`POST /v1/adapters/${adapter.id}/exports {"kind":"adapter"}`);
    expect(screen.getByTestId("export-status")).toHaveTextContent("Succeeded 2.0 KB");
  });

  it("deletes only after confirmation and shows why the API refuses", async () => {
    const adapter = makeAdapter("adapter-00000006");
    const deletes: string[] = [];
    mockFetch((path, req) => {
      if (req.method === "DELETE") {
        deletes.push(path);
        return apiError("Adapter 'x' is used by alias(es) support (as the target or the rollback target); repoint them first.", 409, "adapter_in_use");
      }
      return apiError("nope", 404);
    });
    renderWithProviders(<AdapterActions adapter={adapter} />);
    await userEvent.click(screen.getByRole("button", { name: "Delete adapter" }));
    expect(deletes).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete adapter" }));
    await userEvent.click(screen.getByRole("button", { name: "Yes, delete" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("used by alias(es) support");
    expect(deletes).toEqual([`/v1/adapters/${adapter.id}`]);
  });
});
