import { describe, expect, it } from "vitest";
import { createSseParser } from "./sse";

describe("createSseParser", () => {
  it("joins events split across chunks and line endings", () => {
    const got: string[] = [];
    const p = createSseParser((d) => got.push(d));
    p.push('data: {"a"');
    p.push(":1}\r");
    p.push("\n\r\n: keep-alive\n\ndata: [DO");
    p.push("NE]\n\n");
    expect(got).toEqual(['{"a":1}', "[DONE]"]);
  });

  it("flushes a last event without a blank line", () => {
    const got: string[] = [];
    const p = createSseParser((d) => got.push(d));
    p.push("data: one\ndata: two");
    p.end();
    expect(got).toEqual(["one\ntwo"]);
  });
});

describe("createSseParser event names", () => {
  it("passes each event's name, 'message' when none is given", () => {
    const got: [string, string][] = [];
    const p = createSseParser((d, e) => got.push([e, d]));
    p.push('event: job\ndata: {"status":"running"}\n\ndata: {"id":"e1"}\n\n');
    expect(got).toEqual([
      ["job", '{"status":"running"}'],
      ["message", '{"id":"e1"}'],
    ]);
  });
});
