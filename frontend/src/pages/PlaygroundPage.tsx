import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import {
  errorMessage,
  isAbortError,
  isFineTuned,
  listModels,
  sendFeedback,
  streamChatCompletion,
  type ChatMessage,
  type Model,
} from "../api";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { usePageTitle } from "../hooks/usePageTitle";
import { useSearchParam } from "../router";

// Replies are capped so a model that never stops (no end-of-sequence token learnt) still
// finishes in reasonable time on a CPU server.
const MAX_REPLY_TOKENS = 256;

interface Turn extends ChatMessage {
  id: number;
  model?: string;
  /** The completion's id, for feedback. */
  completionId?: string;
  rating?: "up" | "down";
  feedbackError?: string;
  /** The answer stopped early (cancelled or failed). */
  incomplete?: boolean;
}

interface Pane {
  model: string;
  turns: Turn[];
  streaming: boolean;
  error: unknown;
}

const SIDES = ["left", "right"] as const;
type Side = (typeof SIDES)[number];

export function PlaygroundPage() {
  usePageTitle("Playground");
  const id = useId();
  const requestedModel = useSearchParam("model");
  const models = useQuery({ queryKey: ["models"], queryFn: ({ signal }) => listModels(signal) });
  const [panes, setPanes] = useState<Record<Side, Pane>>({
    left: { model: "", turns: [], streaming: false, error: null },
    right: { model: requestedModel ?? "", turns: [], streaming: false, error: null },
  });
  const [draft, setDraft] = useState("");
  const [announcement, setAnnouncement] = useState("");
  const aborts = useRef(new Set<AbortController>());
  const nextId = useRef(1);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  const all = models.data?.data ?? [];
  const fineTuned = all.filter(isFineTuned);
  const base = all.filter((m) => !isFineTuned(m));
  const defaults: Record<Side, string> = {
    left: base[0]?.id ?? "",
    right: fineTuned[0]?.id ?? base[0]?.id ?? "",
  };
  const chosen = (side: Side) =>
    all.some((m) => m.id === panes[side].model) ? panes[side].model : defaults[side];
  const streaming = panes.left.streaming || panes.right.streaming;

  useEffect(() => {
    const running = aborts.current;
    return () => running.forEach((c) => c.abort());
  }, []);

  const patchPane = (side: Side, patch: (p: Pane) => Partial<Pane>) =>
    setPanes((all) => ({ ...all, [side]: { ...all[side], ...patch(all[side]) } }));
  const patchTurn = (side: Side, turnId: number, patch: Partial<Turn>) =>
    patchPane(side, (p) => ({ turns: p.turns.map((t) => (t.id === turnId ? { ...t, ...patch } : t)) }));

  const ask = async (side: Side, text: string) => {
    const model = chosen(side);
    const user: Turn = { id: nextId.current++, role: "user", content: text };
    const reply: Turn = { id: nextId.current++, role: "assistant", content: "", model };
    const history: ChatMessage[] = [...panes[side].turns, user].map(({ role, content }) => ({ role, content }));
    patchPane(side, (p) => ({ turns: [...p.turns, user, reply], streaming: true, error: null }));
    const ctrl = new AbortController();
    aborts.current.add(ctrl);
    let received = "";
    try {
      for await (const piece of streamChatCompletion({ model, messages: history, max_tokens: MAX_REPLY_TOKENS }, ctrl.signal, (meta) =>
        patchTurn(side, reply.id, { completionId: meta.id }),
      )) {
        received += piece;
        patchTurn(side, reply.id, { content: received });
      }
      return received;
    } catch (err) {
      patchTurn(side, reply.id, { incomplete: true });
      if (!isAbortError(err)) patchPane(side, () => ({ error: err }));
      return null;
    } finally {
      aborts.current.delete(ctrl);
      patchPane(side, () => ({ streaming: false }));
    }
  };

  const send = async () => {
    const text = draft.trim();
    if (!text || streaming || !chosen("left")) return;
    setDraft("");
    setAnnouncement("Both models are answering…");
    const [left, right] = await Promise.all([ask("left", text), ask("right", text)]);
    setAnnouncement(`Answers complete. Left: ${left ?? "no answer"}. Right: ${right ?? "no answer"}.`);
    inputRef.current?.focus();
  };

  const rate = async (side: Side, turn: Turn, rating: "up" | "down") => {
    if (!turn.completionId) return;
    patchTurn(side, turn.id, { rating, feedbackError: undefined });
    try {
      await sendFeedback(turn.completionId, rating);
      setAnnouncement(rating === "up" ? "Thanks: marked as a good answer." : "Thanks: marked as a bad answer.");
    } catch (err) {
      patchTurn(side, turn.id, { rating: undefined, feedbackError: errorMessage(err) });
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
    aborts.current.forEach((c) => c.abort());
    setPanes((p) => ({
      left: { ...p.left, turns: [], error: null },
      right: { ...p.right, turns: [], error: null },
    }));
    setAnnouncement("Conversation cleared.");
    inputRef.current?.focus();
  };

  return (
    <div className="page">
      <h1 tabIndex={-1}>Playground</h1>
      <p className="lede">Ask two models the same thing side by side: a base model and one of yours.</p>

      {models.isPending ? (
        <Loading label="Loading models…" />
      ) : models.isError ? (
        <ErrorMessage error={models.error} title="Could not load models." onRetry={() => void models.refetch()} />
      ) : all.length === 0 ? (
        <Empty title="No models are available yet." />
      ) : (
        <>
          <div className="compare">
            {SIDES.map((side) => (
              <ChatPane
                key={side}
                side={side}
                label={side === "left" ? "Left model" : "Right model"}
                pane={panes[side]}
                model={chosen(side)}
                fineTuned={fineTuned}
                base={base}
                disabled={streaming}
                onModel={(m) => patchPane(side, () => ({ model: m }))}
                onRate={(turn, rating) => void rate(side, turn, rating)}
              />
            ))}
          </div>
          <p className="visually-hidden" role="status">
            {announcement}
          </p>
          <form className="card composer" onSubmit={onSubmit}>
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
              Enter sends to both models; Shift+Enter adds a new line.
            </p>
            <div className="form-actions">
              {streaming ? (
                <button type="button" className="button" onClick={() => aborts.current.forEach((c) => c.abort())}>
                  Stop
                </button>
              ) : null}
              <button type="button" className="button" onClick={clear} disabled={streaming}>
                Clear conversation
              </button>
              <button type="submit" className="button button-primary" disabled={streaming || !draft.trim()}>
                {streaming ? "Answering…" : "Send"}
              </button>
            </div>
          </form>
        </>
      )}
    </div>
  );
}

function ChatPane(props: {
  side: Side;
  label: string;
  pane: Pane;
  model: string;
  fineTuned: Model[];
  base: Model[];
  disabled: boolean;
  onModel: (model: string) => void;
  onRate: (turn: Turn, rating: "up" | "down") => void;
}) {
  const selectId = useId();
  const end = useRef<HTMLDivElement>(null);
  const { pane } = props;
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: "nearest" });
  }, [pane.turns]);
  const last = pane.turns[pane.turns.length - 1];
  return (
    <section className="card chat-pane" aria-label={`${props.label}: ${props.model}`} data-side={props.side}>
      <div className="field">
        <label htmlFor={selectId}>{props.label}</label>
        <select id={selectId} value={props.model} onChange={(e) => props.onModel(e.target.value)} disabled={props.disabled}>
          {props.fineTuned.length > 0 ? (
            <optgroup label="Your fine-tuned models">
              {props.fineTuned.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </optgroup>
          ) : null}
          <optgroup label="Base models">
            {props.base.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </optgroup>
        </select>
      </div>
      <div className="transcript" aria-label={`Conversation with ${props.model}`} role="region" tabIndex={0}>
        {pane.turns.length === 0 ? (
          <p className="transcript-empty">Send a message to start.</p>
        ) : (
          <ol className="messages">
            {pane.turns.map((t) => (
              <li key={t.id} className={`message message-${t.role}`}>
                <p className="message-author">{t.role === "user" ? "You" : (t.model ?? "Assistant")}</p>
                <div className="message-content" aria-busy={pane.streaming && t === last ? true : undefined}>
                  {t.content ||
                    (pane.streaming && t === last ? (
                      <span className="typing">Thinking…</span>
                    ) : (
                      <span className="hint">(no answer)</span>
                    ))}
                  {t.incomplete ? <span className="hint"> (stopped)</span> : null}
                </div>
                {t.role === "assistant" && t.completionId && !(pane.streaming && t === last) ? (
                  <div className="feedback" role="group" aria-label="Rate this answer">
                    <button
                      type="button"
                      className="button button-small"
                      aria-pressed={t.rating === "up"}
                      onClick={() => props.onRate(t, "up")}
                    >
                      Good answer
                    </button>
                    <button
                      type="button"
                      className="button button-small"
                      aria-pressed={t.rating === "down"}
                      onClick={() => props.onRate(t, "down")}
                    >
                      Bad answer
                    </button>
                    {t.feedbackError ? (
                      <span className="field-error" role="alert">
                        {t.feedbackError}
                      </span>
                    ) : null}
                  </div>
                ) : null}
              </li>
            ))}
          </ol>
        )}
        <div ref={end} />
      </div>
      {pane.error ? <ErrorMessage error={pane.error} title="The model could not answer." /> : null}
    </section>
  );
}
