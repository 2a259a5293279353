import { ApiError, errorFromBody, rawRequest } from "./client";
import { createSseParser } from "./sse";
import type { ChatCompletionChunk, ChatMessage } from "./types";

/** What the stream says about itself: the completion id (for feedback), the model. */
export interface ChatStreamMeta {
  id: string;
  model: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  max_tokens?: number;
}

/**
 * Streams a chat completion and yields the assistant's text piece by piece.
 * Ends at `data: [DONE]` (or when the server closes the stream); abort with `signal`.
 */
export async function* streamChatCompletion(
  body: ChatRequest,
  signal?: AbortSignal,
  onMeta?: (meta: ChatStreamMeta) => void,
): AsyncGenerator<string, void, undefined> {
  const res = await rawRequest("/v1/chat/completions", {
    method: "POST",
    body: { ...body, stream: true },
    signal,
    headers: { Accept: "text/event-stream" },
  });
  if (!res.body) throw new ApiError("The server sent an empty response.", res.status);

  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const queue: string[] = [];
  let done = false;
  let failure: ApiError | null = null;
  let meta: ChatStreamMeta | null = null;

  const parser = createSseParser((data) => {
    if (done || failure) return;
    if (data.trim() === "[DONE]") {
      done = true;
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return; // ignore a malformed line rather than losing the answer so far
    }
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      failure = errorFromBody(500, parsed);
      return;
    }
    const chunk = parsed as ChatCompletionChunk;
    if (!meta && chunk.id) {
      meta = { id: chunk.id, model: chunk.model };
      onMeta?.(meta);
    }
    const text = chunk.choices?.[0]?.delta?.content;
    if (text) queue.push(text);
  });

  try {
    while (!done && !failure) {
      const { value, done: streamDone } = await reader.read();
      if (streamDone) {
        parser.push(decoder.decode());
        parser.end();
      } else {
        parser.push(decoder.decode(value, { stream: true }));
      }
      while (queue.length > 0) yield queue.shift() as string;
      if (failure) throw failure;
      if (streamDone) break;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
