import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { PlaygroundPage } from "./PlaygroundPage";

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

const BASE = "SmolLM2-135M-Instruct";
const FT = "ft:SmolLM2-135M-Instruct:acme:bot:abcd1234";

function chatStream(id: string, model: string, pieces: string[]): Response {
  const chunks = pieces.map(
    (p) => `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })}\n\n`,
  );
  return new Response(chunks.join("") + "data: [DONE]\n\n", { headers: { "Content-Type": "text/event-stream" } });
}

describe("PlaygroundPage", () => {
  it("asks the base and the fine-tuned model side by side and sends thumbs down", async () => {
    const feedback: unknown[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/models") {
        return jsonResponse({
          object: "list",
          has_more: false,
          data: [
            { id: BASE, object: "model", created: 1, owned_by: "loraplex" },
            { id: FT, object: "model", created: 2, owned_by: "acme", parent: BASE },
          ],
        });
      }
      if (path === "/v1/chat/completions") {
        const body = JSON.parse(req.body ?? "{}");
        expect(body.stream).toBe(true);
        return body.model === FT
          ? chatStream("chatcmpl-ft", FT, ['{"colour": ', '"blue"}'])
          : chatStream("chatcmpl-base", BASE, ["It is ", "blue."]);
      }
      if (path === "/v1/feedback") {
        feedback.push(JSON.parse(req.body ?? "{}"));
        return jsonResponse({ id: "fb-1", object: "feedback", completion_id: "chatcmpl-ft", rating: "down", comment: null, model: FT, adapter_id: "a", created_at: 1 });
      }
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<PlaygroundPage />);

    expect(await screen.findByLabelText("Left model")).toHaveValue(BASE);
    expect(screen.getByLabelText("Right model")).toHaveValue(FT);
    await userEvent.type(screen.getByLabelText("Message"), "Item 3 is blue. What colour?{Enter}");

    const left = screen.getByRole("region", { name: `Left model: ${BASE}` });
    const right = screen.getByRole("region", { name: `Right model: ${FT}` });
    expect(await within(left).findByText("It is blue.")).toBeInTheDocument();
    expect(await within(right).findByText('{"colour": "blue"}')).toBeInTheDocument();

    const bad = within(right).getByRole("button", { name: /Bad answer/ });
    await userEvent.click(bad);
    await vi.waitFor(() => expect(feedback).toEqual([{ completion_id: "chatcmpl-ft", rating: "down" }]));
    expect(bad).toHaveAttribute("aria-pressed", "true");
  });
});
