import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiError, jsonResponse, mockFetch } from "../test/helpers";
import { SignInPage } from "./SignInPage";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("SignInPage", () => {
  it("shows the API's error message when the key is refused (401)", async () => {
    const fetchMock = mockFetch(() =>
      apiError("Incorrect API key provided: lpx-bad.", 401, "invalid_api_key"),
    );
    const onSignedIn = vi.fn();
    render(<SignInPage onSignedIn={onSignedIn} />);

    const input = screen.getByLabelText("API key");
    expect(input).toHaveAttribute("type", "password");
    await userEvent.type(input, "lpx-bad");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent(
      "Incorrect API key provided: lpx-bad.",
    );
    expect(onSignedIn).not.toHaveBeenCalled();
    expect(input).toHaveAttribute("aria-invalid", "true");
    expect(input).toHaveFocus();

    const [request] = fetchMock.mock.calls[0] as [Request];
    expect(new URL(request.url).pathname).toBe("/v1/me");
    expect(request.headers.get("Authorization")).toBe("Bearer lpx-bad");
  });

  it("signs in with a valid key and hands over the tenant", async () => {
    mockFetch(() => jsonResponse({ object: "tenant", id: "tenant-1", name: "acme", created_at: 1 }));
    const onSignedIn = vi.fn();
    render(<SignInPage onSignedIn={onSignedIn} />);

    await userEvent.type(screen.getByLabelText("API key"), "  lpx-good  ");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    await vi.waitFor(() => expect(onSignedIn).toHaveBeenCalledTimes(1));
    expect(onSignedIn).toHaveBeenCalledWith(
      expect.objectContaining({ name: "acme" }),
      "lpx-good",
    );
  });

  it("asks for a key before calling the API", async () => {
    const fetchMock = mockFetch(() => jsonResponse({}));
    render(<SignInPage onSignedIn={vi.fn()} />);
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Enter your API key.");
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
