// An accessible, stylable progress bar (role="progressbar" with aria-value*).

export function ProgressBar({
  value,
  max = 100,
  label,
  valueText,
  id,
}: {
  /** null: indeterminate */
  value: number | null;
  max?: number;
  label: string;
  valueText?: string;
  id?: string;
}) {
  const pct = value === null || max <= 0 ? null : Math.max(0, Math.min(100, (value / max) * 100));
  return (
    <div
      id={id}
      className={`progress${pct === null ? " progress-indeterminate" : ""}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={max}
      aria-valuenow={value === null ? undefined : Math.round(value)}
      aria-valuetext={valueText}
    >
      <div className="progress-fill" style={pct === null ? undefined : { width: `${pct}%` }} />
    </div>
  );
}
