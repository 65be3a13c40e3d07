import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · Tollgate Console`;
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title">{title}</h1>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.message} (${error.status} ${error.code})` : String(error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** Loads on mount and when deps change; reload() re-runs it. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setError(undefined);
    load().then(
      (value) => live && setData(value),
      (err: unknown) => live && setError(err),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}

/**
 * A screen's actions: runs one, shows its label as the notice or its error, then calls `after`
 * (reload what it changed). `tick` counts the actions done (and `refresh()` calls), for loads
 * that depend on them.
 */
export function useAction(after: () => void) {
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState('');
  const [tick, setTick] = useState(0);
  async function act(label: string, run: () => Promise<unknown>): Promise<void> {
    setError(undefined);
    setNotice('');
    try {
      await run();
      setNotice(label);
      after();
      setTick((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  return { act, error, setError, notice, tick, refresh: () => setTick((n) => n + 1) };
}

export function Badge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** A secret shown once: kept only in the caller's component state, never stored or put in the URL. */
export function OnceSecret({ label, secret }: { label: string; secret: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="once" role="status">
      <p>
        <strong>{label}</strong> This is the only time it is shown: copy it now. It is gone when you leave or reload this page.
      </p>
      <div class="once-row">
        <code data-testid="plaintext">{secret}</code>
        <button
          type="button"
          onClick={() =>
            navigator.clipboard?.writeText(secret).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

/** A sparkline of daily counts: inline SVG, no chart library on the list. */
export function Sparkline({ values, label }: { values: number[]; label: string }) {
  if (values.length === 0) return <span class="muted">no data</span>;
  const max = Math.max(1, ...values);
  const w = 80;
  const h = 20;
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (v / max) * (h - 2) - 1).toFixed(1)}`).join(' ');
  return (
    <svg width={w} height={h} role="img" aria-label={label} class="spark">
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}

/** How long a rotated secret (a key's, a webhook endpoint's) keeps working. */
export const GRACES = [
  { label: 'None: the old secret stops now', seconds: 0 },
  { label: '1 hour', seconds: 3600 },
  { label: '24 hours', seconds: 86_400 },
  { label: '7 days', seconds: 7 * 86_400 },
];
