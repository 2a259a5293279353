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
