import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeAdapter, makeAlias, makeJob } from "../test/fixtures";
import { jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { ModelsPage } from "./ModelsPage";

afterEach(() => vi.unstubAllGlobals());

const list = (data: unknown[]) => jsonResponse({ object: "list", data, has_more: false });

describe("ModelsPage", () => {
  it("shows lineage and manifest, and promotes a version to a new alias", async () => {
    const adapter = makeAdapter("adapter-00000001");
    let aliases = [makeAlias("support", "ft:old", "ft:older")];
    const posts: { path: string; body: unknown }[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/adapters") return list([adapter]);
      if (path === "/v1/aliases" && req.method === "GET") return list(aliases);
      if (path === "/v1/aliases" && req.method === "POST") {
        const body = JSON.parse(req.body ?? "{}");
        posts.push({ path, body });
        const created = makeAlias(body.name, adapter.name);
        aliases = [...aliases, created];
        return jsonResponse(created);
      }
      if (path === "/v1/fine_tuning/jobs/ftjob-1") return jsonResponse(makeJob("succeeded"));
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<ModelsPage adapterId={null} />);

    expect(await screen.findByRole("heading", { level: 2, name: adapter.name })).toBeInTheDocument();
    const lineage = screen.getByRole("list", { name: "Lineage" });
    expect(await within(lineage).findByRole("link", { name: "file-1" })).toHaveAttribute("href", "/datasets/file-1");
    expect(within(lineage).getByRole("link", { name: "ftjob-1" })).toHaveAttribute("href", "/fine-tunes/ftjob-1");
    expect(screen.getByText("Seed").nextSibling).toHaveTextContent("7");
    expect(await screen.findByTestId("alias-target-support")).toHaveTextContent("ft:old");

    await userEvent.type(screen.getByLabelText("Alias name"), "support-bot@prod");
    await userEvent.click(screen.getByRole("button", { name: "Promote" }));
    expect(await screen.findByTestId("alias-target-support-bot@prod")).toHaveTextContent(adapter.name);
    expect(posts).toEqual([{ path: "/v1/aliases", body: { name: "support-bot@prod", adapter: adapter.id } }]);
  });

  it("repoints an existing alias and rolls one back, showing the API's refusal in words", async () => {
    const adapter = makeAdapter("adapter-00000002");
    const calls: string[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/adapters") return list([adapter]);
      if (path === "/v1/aliases") return list([makeAlias("support", "ft:old", "ft:older")]);
      if (path === "/v1/aliases/support/promote" && req.method === "POST") {
        calls.push(`repoint ${req.body}`);
        return jsonResponse(
          { error: { message: "Adapter was trained with another chat template.", type: "invalid_request_error", param: "adapter", code: "chat_template_mismatch" } },
          409,
        );
      }
      if (path === "/v1/aliases/support/rollback") {
        calls.push("rollback");
        return jsonResponse(makeAlias("support", "ft:older", "ft:old"));
      }
      return jsonResponse(makeJob("succeeded"));
    });
    renderWithProviders(<ModelsPage adapterId={adapter.id} />);

    await screen.findByTestId("alias-target-support");
    await userEvent.type(screen.getByLabelText("Alias name"), "support");
    await userEvent.click(screen.getByRole("button", { name: "Promote" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Adapter was trained with another chat template.");
    await userEvent.click(screen.getByRole("button", { name: /^Roll back/ }));
    await vi.waitFor(() => expect(calls).toEqual([`repoint {"adapter":"${adapter.id}"}`, "rollback"]));
  });

  it("shows the adapter's finished decision report with its verdict", async () => {
    const adapter = makeAdapter("adapter-00000007");
    mockFetch((path) => {
      if (path === "/v1/adapters") return list([adapter]);
      if (path === "/v1/aliases") return list([]);
      if (path === "/v1/fine_tuning/jobs/ftjob-1/decision_report")
        return jsonResponse({
          id: "dr-1", object: "fine_tuning.job.decision_report", fine_tuning_job_id: "ftjob-1", adapter_id: adapter.id,
          eval_files: ["file-ev"], status: "succeeded", runs: [], error: null, created_at: 1, finished_at: 2,
          report: {
            verdict: { decision: "keep_prompting", message: "gain is within noise — keep prompting" },
            groups: { task: { exact_match: { baseline: 0.5, fine_tune: 0.52, delta: 0.02, ci95: [-0.05, 0.09], rows: 20 } } },
          },
        });
      return jsonResponse(makeJob("succeeded"));
    });
    renderWithProviders(<ModelsPage adapterId={null} />);
    const section = await screen.findByRole("region", { name: "Decision report" });
    expect(within(section).getByTestId("verdict")).toHaveTextContent("Keep promptinggain is within noise — keep prompting");
  });

  it("has an empty state that points at fine-tuning", async () => {
    mockFetch(() => list([]));
    renderWithProviders(<ModelsPage adapterId={null} />);
    expect(await screen.findByText("No adapters yet.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Start a fine-tune." })).toHaveAttribute("href", "/fine-tunes");
  });
});
