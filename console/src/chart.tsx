import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { OutcomePoint } from './api.js';

const OUTCOMES: { field: keyof Omit<OutcomePoint, 't'>; label: string; color: string }[] = [
  { field: 'allowed', label: 'allowed', color: '#1a7f37' },
  { field: 'unauthenticated', label: '401', color: '#0969da' },
  { field: 'forbidden', label: '403', color: '#8250df' },
  { field: 'rate_limited', label: '429', color: '#bc4c00' },
  { field: 'server_error', label: '5xx', color: '#cf222e' },
  { field: 'other', label: 'other', color: '#57606a' },
];

/** Requests per bucket, one line per outcome class; a table beside it carries the same numbers for screen readers. */
export function OutcomeChart({ points, title }: { points: OutcomePoint[]; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const data: uPlot.AlignedData = [points.map((p) => Date.parse(p.t) / 1000), ...OUTCOMES.map((o) => points.map((p) => p[o.field]))];
    const plot = new uPlot(
      {
        width: Math.max(320, box.current.clientWidth),
        height: 220,
        series: [{}, ...OUTCOMES.map((o) => ({ label: o.label, stroke: o.color, width: 2, points: { show: true } }))],
        axes: [{}, { label: 'requests' }],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [points]);
  const totals = OUTCOMES.map((o) => ({ ...o, total: points.reduce((n, p) => n + p[o.field], 0) }));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} aria-hidden="true" />
      <table class="totals" data-testid="outcome-totals">
        <caption class="sr-only">Totals by outcome</caption>
        <thead>
          <tr>
            {totals.map((t) => (
              <th scope="col" key={t.field}>
                {t.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          <tr>
            {totals.map((t) => (
              <td key={t.field} data-outcome={t.field}>
                {t.total}
              </td>
            ))}
          </tr>
        </tbody>
      </table>
    </figure>
  );
}
