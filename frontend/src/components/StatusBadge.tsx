import { statusLabel } from "../lib/format";

const TONES: Record<string, string> = {
  succeeded: "success",
  processed: "success",
  failed: "danger",
  error: "danger",
  cancelled: "neutral",
  running: "info",
  queued: "pending",
  validating_files: "pending",
  uploaded: "pending",
};

export function StatusBadge({ status }: { status: string }) {
  const tone = TONES[status] ?? "neutral";
  return <span className={`badge badge-${tone}`}>{statusLabel(status)}</span>;
}
