import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => {
  cleanup();
  sessionStorage.clear();
});

// jsdom does not implement scrolling.
window.scrollTo = () => undefined;

// findBy* waits this long: pages load through several mocked requests.
configure({ asyncUtilTimeout: 5000 });
