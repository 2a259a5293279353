// A small Server-Sent Events parser (`event:` and `data:` fields). Feed it text as it
// arrives; it calls `onData` once per complete event, with the event's name.

export interface SseParser {
  push(text: string): void;
  /** Dispatch a final event that was not followed by a blank line. */
  end(): void;
}

export function createSseParser(onData: (data: string, event: string) => void): SseParser {
  let buffer = "";
  let dataLines: string[] = [];
  let eventName = "message";

  const dispatch = () => {
    if (dataLines.length > 0) onData(dataLines.join("\n"), eventName);
    dataLines = [];
    eventName = "message";
  };

  const handleLine = (line: string) => {
    if (line === "") {
      dispatch();
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") dataLines.push(value);
    else if (field === "event") eventName = value || "message";
  };

  return {
    push(text: string) {
      buffer += text;
      // Lines end with \n, \r\n or \r. Keep a trailing \r: its \n may be in the next chunk.
      const re = /\r\n|\n|\r(?!$)/g;
      let start = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(buffer)) !== null) {
        handleLine(buffer.slice(start, m.index));
        start = m.index + m[0].length;
      }
      buffer = buffer.slice(start);
    },
    end() {
      if (buffer) handleLine(buffer.replace(/\r$/, ""));
      buffer = "";
      dispatch();
    },
  };
}
