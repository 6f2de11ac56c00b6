/**
 * A small time-series chart (uPlot) over the columns of GET /admin/console/series.
 *
 * `<Chart title lines=[{ label, values }] t=[ms] />`: one uPlot per mounted chart, created once and fed
 * new data with `setData` at every poll; it follows its container's width. Colours come from the page's
 * CSS variables (`--chart-1`…, `--muted`, `--grid`), so charts match the light or dark scheme; a change
 * of scheme draws them anew. The time axis always spans the series' window (`windowMs`) up to the
 * latest sample, so a young node's few samples sit at the right end instead of filling the chart.
 */
/* global document, getComputedStyle, matchMedia, ResizeObserver */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './html.mjs';

const HEIGHT = 140;

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

const DARK = '(prefers-color-scheme: dark)';

/** True while the dark scheme applies; follows changes of the system's (or an emulated) preference. */
function useDark() {
  const [dark, setDark] = useState(() => matchMedia(DARK).matches);
  useEffect(() => {
    const query = matchMedia(DARK);
    const change = () => setDark(query.matches);
    query.addEventListener('change', change);
    return () => query.removeEventListener('change', change);
  }, []);
  return dark;
}

export function Chart({ title, t, windowMs, lines, unit }) {
  const box = useRef(null);
  const plot = useRef(null);
  const dark = useDark();
  const data = [(t ?? []).map((ms) => ms / 1000), ...lines.map((l) => l.values ?? [])];
  const span = (windowMs ?? 900_000) / 1000;

  useEffect(() => {
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    plot.current = new uPlot(
      {
        width: Math.max(200, box.current.clientWidth),
        height: HEIGHT,
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: {
            time: true,
            range: (u) => {
              const xs = u.data[0];
              const end = xs.length > 0 ? xs[xs.length - 1] : Date.now() / 1000;
              return [end - span, end];
            },
          },
        },
        axes: [axis, { ...axis, size: 56, values: (_u, ticks) => ticks.map((v) => `${formatTick(v)}${unit ?? ''}`) }],
        series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: cssVar(`--chart-${i + 1}`), width: 1.5, spanGaps: false }))],
      },
      data,
      box.current,
    );
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, box.current.clientWidth), height: HEIGHT }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [lines.length, dark]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div ref=${box}></div>
  </figure>`;
}

function formatTick(v) {
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
