import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import {
  isAbortError,
  isFineTuned,
  listModels,
  streamChatCompletion,
  type ChatMessage,
} from "../api";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { useApi } from "../hooks/useApi";
import { usePageTitle } from "../hooks/usePageTitle";
import { useSearchParam } from "../router";

interface Turn extends ChatMessage {
  id: number;
  model?: string;
  /** The answer stopped early (cancelled or failed). */
  incomplete?: boolean;
}

export function PlaygroundPage() {
  usePageTitle("Playground");
  const id = useId();
  const requestedModel = useSearchParam("model");
  const models = useApi((signal) => listModels(signal), []);
  const [model, setModel] = useState(requestedModel ?? "");
  const [draft, setDraft] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [announcement, setAnnouncement] = useState("");
  const abortRef = useRef<AbortController | null>(null);
  const nextId = useRef(1);
  const transcriptEnd = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  const all = models.data?.data ?? [];
  const fineTuned = all.filter(isFineTuned);
  const base = all.filter((m) => !isFineTuned(m));
  const chosen = all.some((m) => m.id === model) ? model : (fineTuned[0]?.id ?? base[0]?.id ?? "");

  useEffect(() => () => abortRef.current?.abort(), []);
  useEffect(() => {
    transcriptEnd.current?.scrollIntoView?.({ block: "nearest" });
  }, [turns]);

  const send = async () => {
    const text = draft.trim();
    if (!text || streaming || !chosen) return;
    setError(null);
    const user: Turn = { id: nextId.current++, role: "user", content: text };
    const reply: Turn = { id: nextId.current++, role: "assistant", content: "", model: chosen };
    const history: ChatMessage[] = [...turns, user].map(({ role, content }) => ({ role, content }));
    setTurns((t) => [...t, user, reply]);
    setDraft("");
    setStreaming(true);
    setAnnouncement("The assistant is answering…");

    const ctrl = new AbortController();
    abortRef.current = ctrl;
    let received = "";
    const update = (patch: Partial<Turn>) =>
      setTurns((t) => t.map((turn) => (turn.id === reply.id ? { ...turn, ...patch } : turn)));
    try {
      for await (const piece of streamChatCompletion({ model: chosen, messages: history }, ctrl.signal)) {
        received += piece;
        update({ content: received });
      }
      setAnnouncement(received ? `Answer complete: ${received}` : "The model returned an empty answer.");
    } catch (err) {
      update({ incomplete: true });
      if (isAbortError(err)) {
        setAnnouncement("Answer stopped.");
      } else {
        setError(err);
        setAnnouncement("");
      }
    } finally {
      abortRef.current = null;
      setStreaming(false);
      inputRef.current?.focus();
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void send();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  const clear = () => {
    abortRef.current?.abort();
    setTurns([]);
    setError(null);
    setAnnouncement("Conversation cleared.");
    inputRef.current?.focus();
  };

  return (
    <div className="page">
      <h1 tabIndex={-1}>Playground</h1>
      <p className="lede">Chat with a base model or one of your fine-tuned models.</p>

      <section className="card playground" aria-label="Chat">
        {models.data === undefined ? (
          models.error ? (
            <ErrorMessage error={models.error} title="Could not load models." onRetry={models.reload} />
          ) : (
            <Loading label="Loading models…" />
          )
        ) : all.length === 0 ? (
          <Empty title="No models are available yet." />
        ) : (
          <>
            <div className="playground-toolbar">
              <div className="field">
                <label htmlFor={`${id}-model`}>Model</label>
                <select
                  id={`${id}-model`}
                  value={chosen}
                  onChange={(e) => setModel(e.target.value)}
                  disabled={streaming}
                >
                  {fineTuned.length > 0 ? (
                    <optgroup label="Your fine-tuned models">
                      {fineTuned.map((m) => (
                        <option key={m.id} value={m.id}>
                          {m.id}
                        </option>
                      ))}
                    </optgroup>
                  ) : null}
                  <optgroup label="Base models">
                    {base.map((m) => (
                      <option key={m.id} value={m.id}>
                        {m.id}
                      </option>
                    ))}
                  </optgroup>
                </select>
              </div>
              <button
                type="button"
                className="button"
                onClick={clear}
                disabled={turns.length === 0}
              >
                Clear conversation
              </button>
            </div>

            <div className="transcript" aria-label="Conversation" role="region" tabIndex={0}>
              {turns.length === 0 ? (
                <p className="transcript-empty">Send a message to start the conversation.</p>
              ) : (
                <ol className="messages">
                  {turns.map((t) => (
                    <li key={t.id} className={`message message-${t.role}`}>
                      <p className="message-author">
                        {t.role === "user" ? "You" : (t.model ?? "Assistant")}
                      </p>
                      <div
                        className="message-content"
                        aria-busy={streaming && t === turns[turns.length - 1] ? true : undefined}
                      >
                        {t.content ||
                          (streaming && t === turns[turns.length - 1] ? (
                            <span className="typing">Thinking…</span>
                          ) : (
                            <span className="hint">(no answer)</span>
                          ))}
                        {t.incomplete ? <span className="hint"> (stopped)</span> : null}
                      </div>
                    </li>
                  ))}
                </ol>
              )}
              <div ref={transcriptEnd} />
            </div>

            {error ? <ErrorMessage error={error} title="The model could not answer." /> : null}
            <p className="visually-hidden" role="status">
              {announcement}
            </p>

            <form className="composer" onSubmit={onSubmit}>
              <label htmlFor={`${id}-message`}>Message</label>
              <textarea
                ref={inputRef}
                id={`${id}-message`}
                rows={3}
                value={draft}
                onChange={(e) => setDraft(e.target.value)}
                onKeyDown={onKeyDown}
                aria-describedby={`${id}-message-hint`}
              />
              <p id={`${id}-message-hint`} className="hint">
                Enter sends; Shift+Enter adds a new line.
              </p>
              <div className="form-actions">
                {streaming ? (
                  <button type="button" className="button" onClick={() => abortRef.current?.abort()}>
                    Stop
                  </button>
                ) : null}
                <button
                  type="submit"
                  className="button button-primary"
                  disabled={streaming || !draft.trim()}
                >
                  {streaming ? "Answering…" : "Send"}
                </button>
              </div>
            </form>
          </>
        )}
      </section>
    </div>
  );
}
