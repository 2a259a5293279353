import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { FileReport } from "../api";
import { DatasetReport } from "./DatasetReport";

const report: FileReport = {
  object: "file.report",
  file_id: "file-1",
  status: "error",
  report: {
    format: "chat",
    rows: 22,
    valid_rows: 21,
    error_count: 1,
    errors_by_code: { invalid_json: 1 },
    errors: [{ line: 22, code: "invalid_json", message: "not valid JSON (Expecting value at column 1)" }],
    tokens: {
      p50: 46,
      p95: 48,
      max: 48,
      total: 981,
      max_seq_length: 1024,
      truncated_rows: 0,
      histogram: [
        { from: 0, to: 32, rows: 0 },
        { from: 32, to: 49, rows: 21 },
      ],
    },
    duplicates: { exact: { rows: 2 }, near: { rows: 3, method: "MinHash LSH" } },
    balance: { classification_like: true, labels: { yes: 15, no: 5 }, top_label: "yes", top_share: 0.75, warning: "label 'yes' is 75% of the rows" },
    pii: { rows: 1, by_kind: { email: { rows: 1, lines: [21] } } },
    sample: [{ line: 1, row: { messages: [{ role: "user", content: "Item 0 is red." }, { role: "assistant", content: "red" }] } }],
    contamination: { contaminated_rows: 4 },
    estimate: { n_epochs: 3, tokens_per_epoch: 981, total_training_tokens: 2943, tokens_per_second: 250, expected_duration_seconds: 12, expected_duration: "12 s" },
    advice: [{ code: "few_examples", message: "Only 21 usable examples." }],
  },
};

describe("DatasetReport", () => {
  it("shows every part of the quality report", () => {
    render(<DatasetReport report={report} />);
    const errors = screen.getByRole("region", { name: "Error list" });
    expect(within(errors).getByText("22")).toBeInTheDocument();
    expect(within(errors).getByText(/not valid JSON/)).toBeInTheDocument();
    expect(screen.getByText("Only 21 usable examples.")).toBeInTheDocument();

    const histogram = screen.getByRole("region", { name: "Rows by token length data" });
    expect(within(histogram).getAllByRole("row").map((r) => r.textContent)).toEqual(["TokensRows", "0–320", "32–4921"]);
    const balance = screen.getByRole("region", { name: "Rows by label data" });
    expect(within(balance).getAllByRole("row").map((r) => r.textContent)).toEqual(["LabelRows", "yes15", "no5"]);
    expect(screen.getByText("label 'yes' is 75% of the rows")).toBeInTheDocument();

    expect(screen.getByText("Exact duplicate rows").nextSibling).toHaveTextContent("2");
    expect(screen.getByText("Near-duplicate rows").nextSibling).toHaveTextContent("3");
    expect(screen.getByText("Rows also in the validation file").nextSibling).toHaveTextContent("4");
    expect(screen.getByText("email").closest("li")).toHaveTextContent("1 row (line 21)");
    expect(screen.getByText("Item 0 is red.")).toBeInTheDocument();
    expect(screen.getByText("Estimated training").nextSibling).toHaveTextContent("12 s");
  });

  it("says so while the file is still being checked", () => {
    render(<DatasetReport report={{ object: "file.report", file_id: "f", status: "uploaded", report: null }} />);
    expect(screen.getByRole("status")).toHaveTextContent(/Checking the file/);
  });

  it("tells a valid file with no labels apart from an unbalanced one", () => {
    render(
      <DatasetReport
        report={{ ...report, status: "processed", report: { ...report.report, error_count: 0, errors: [], balance: { classification_like: false } } }}
      />,
    );
    expect(screen.getByText("Every row is valid.")).toBeInTheDocument();
    expect(screen.getByText(/do not look like labels/)).toBeInTheDocument();
  });
});
