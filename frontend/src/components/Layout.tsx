// The signed-in frame: skip link, header with navigation, tenant name and sign-out.
import type { ReactNode } from "react";
import type { Tenant } from "../api";
import { Link } from "../router";

export type Section = "datasets" | "fine-tunes" | "models" | "evaluations" | "playground" | "usage" | null;

const NAV: { section: Exclude<Section, null>; to: string; label: string }[] = [
  { section: "datasets", to: "/datasets", label: "Datasets" },
  { section: "fine-tunes", to: "/fine-tunes", label: "Fine-tunes" },
  { section: "models", to: "/models", label: "Models" },
  { section: "evaluations", to: "/evaluations", label: "Evaluations" },
  { section: "playground", to: "/playground", label: "Playground" },
  { section: "usage", to: "/usage", label: "Usage" },
];

export function Layout({
  tenant,
  section,
  onSignOut,
  children,
}: {
  tenant: Tenant;
  section: Section;
  onSignOut: () => void;
  children: ReactNode;
}) {
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <header className="site-header">
        <div className="site-header-inner">
          <Link to="/datasets" className="brand">
            <span className="brand-mark" aria-hidden="true" />
            Loraplex
          </Link>
          <nav aria-label="Main" className="main-nav">
            <ul>
              {NAV.map((item) => (
                <li key={item.section}>
                  <Link to={item.to} aria-current={section === item.section ? "page" : undefined}>
                    {item.label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="account">
            <span className="tenant">
              <span className="visually-hidden">Signed in as </span>
              <span className="tenant-name" title={tenant.name}>
                {tenant.name}
              </span>
            </span>
            <button type="button" className="button button-small" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" tabIndex={-1} className="main">
        {children}
      </main>
    </>
  );
}
