import { usePageTitle } from "../hooks/usePageTitle";
import { Link } from "../router";

export function NotFoundPage() {
  usePageTitle("Page not found");
  return (
    <div className="page">
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is nothing at this address. Go to <Link to="/datasets">Datasets</Link>,{" "}
        <Link to="/fine-tunes">Fine-tunes</Link> or <Link to="/playground">Playground</Link>.
      </p>
    </div>
  );
}
