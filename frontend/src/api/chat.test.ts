import { afterEach, describe, expect, it, vi } from "vitest";
import { mockFetch } from "../test/helpers";
import { streamChatCompletion } from "./chat";

afterEach(() => {
  vi.unstubAllGlobals();
});

function sseResponse(chunks: string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

const chunk = (content: string) =>
  `data: ${JSON.stringify({
    id: "c1",
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;

describe("streamChatCompletion", () => {
  it("yields the answer piece by piece and stops at [DONE]", async () => {
    const fetchMock = mockFetch(() =>
      sseResponse([chunk("Hel"), chunk("lo"), "data: [DONE]\n\n", chunk("ignored")]),
    );
    const pieces: string[] = [];
    for await (const p of streamChatCompletion({ model: "m", messages: [{ role: "user", content: "hi" }] })) {
      pieces.push(p);
    }
    expect(pieces).toEqual(["Hel", "lo"]);
    const init = fetchMock.mock.calls[0]?.[1] as RequestInit;
    expect(JSON.parse(init.body as string)).toMatchObject({ model: "m", stream: true });
  });
});
