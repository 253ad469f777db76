import type { DemandSeries } from './demand.ts';
import { describeSettings, percent, type SimulationReport, seconds } from './output.ts';
import type { PolicyRun } from './report.ts';

/**
 * The picture of a simulation, drawn by hand as SVG (no plotting dependency): one panel per policy
 * on shared axes, so the panels compare at a glance, and the cost/SLO table underneath.
 *
 * In each panel:
 * - grey area: the demand, in replicas: what the offered load needs at 100% of a replica (the larger
 *   of KV tokens in flight / tokens per replica and prompt tokens/s / prefill tokens/s per replica);
 * - pale blue area: replicas provisioned and billed (starting, ready, draining);
 * - blue line: ready replicas, the capacity that serves;
 * - red bars under the panel: the share of requests arriving in each minute that missed the SLO.
 */

const WIDTH = 1120;
const MARGIN_LEFT = 64;
const MARGIN_RIGHT = 24;
const PANEL_HEIGHT = 118;
const MISS_HEIGHT = 18;
const PANEL_GAP = 64;
const HEADER_HEIGHT = 184;
const TABLE_ROW = 22;
const COLORS = {
  demand: '#b9bcc2',
  provisioned: '#cfe0f5',
  ready: '#1f5fbf',
  miss: '#d62728',
  grid: '#e6e6e6',
  text: '#1d1d1f',
  muted: '#5f6368',
  good: '#137333',
  bad: '#b3261e',
};

export function renderSvg(
  report: SimulationReport,
  runs: readonly PolicyRun[],
  demand: DemandSeries,
): string {
  const plotWidth = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
  // The time axis covers the trace plus a short tail; a run whose backlog outlasts it says so.
  const endSeconds = Math.max(60, report.trace.durationSeconds * 1.04);
  let yMax = 1;
  for (const run of runs) for (const p of run.timeline) yMax = Math.max(yMax, p.provisionedReplicas);
  for (let i = 0; i < demand.replicas.length; i++) yMax = Math.max(yMax, demand.replicas[i] as number);
  yMax = niceCeiling(yMax);
  const x = (t: number) => MARGIN_LEFT + (t / endSeconds) * plotWidth;
  const panelBlock = PANEL_HEIGHT + MISS_HEIGHT + PANEL_GAP;
  const tableTop = HEADER_HEIGHT + runs.length * panelBlock + 10;
  const tableHeight = (runs.length + 2) * TABLE_ROW + 16 + report.notes.length * 16;
  const height = tableTop + tableHeight + 20;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.text}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
  );
  header(out, report);

  runs.forEach((run, index) => {
    const top = HEADER_HEIGHT + index * panelBlock;
    const y = (replicas: number) => top + PANEL_HEIGHT - (replicas / yMax) * PANEL_HEIGHT;
    const s = run.summary;
    const meets = s.sloAttainment >= report.slo.goal;
    const lastAt = run.timeline[run.timeline.length - 1]?.atSeconds ?? 0;
    const overrun = lastAt > endSeconds ? `  ·  backlog until ${(lastAt / 60).toFixed(0)} min` : '';
    out.push(
      `<text x="${MARGIN_LEFT}" y="${top - 24}" font-size="13" xml:space="preserve"><tspan font-weight="bold">${escapeXml(s.name)}</tspan>` +
        `<tspan fill="${meets ? COLORS.good : COLORS.bad}" font-weight="bold">   SLO met ${percent(s.sloAttainment)}</tspan>` +
        `<tspan fill="${COLORS.text}">   ${s.gpuHours.toFixed(1)} GPU-h${s.gpuHoursVsOracle !== undefined ? ` (${s.gpuHoursVsOracle.toFixed(2)}x oracle)` : ''}  ·  $${Math.round(s.costUsd).toLocaleString('en-US')}  ·  TTFT p99 ${seconds(s.ttftP99Seconds)}  ·  TPOT p99 ${seconds(s.tpotP99Seconds)}  ·  ${s.preemptions.toLocaleString('en-US')} preemptions${overrun}</tspan></text>`,
      `<text x="${MARGIN_LEFT}" y="${top - 8}" font-size="11" fill="${COLORS.muted}">${escapeXml(truncate(describeSettings(s.settings), 165))}</text>`,
    );
    // Grid and y axis (replicas).
    for (const tick of ticks(yMax)) {
      out.push(
        `<line x1="${MARGIN_LEFT}" x2="${WIDTH - MARGIN_RIGHT}" y1="${f(y(tick))}" y2="${f(y(tick))}" stroke="${COLORS.grid}"/>`,
        `<text x="${MARGIN_LEFT - 6}" y="${f(y(tick) + 4)}" text-anchor="end" fill="${COLORS.muted}">${tick}</text>`,
      );
    }
    // Demand area.
    const demandPoints: string[] = [`${f(x(0))},${f(y(0))}`];
    for (let i = 0; i < demand.replicas.length; i++) {
      const t = i * demand.stepSeconds;
      if (t > endSeconds) break;
      demandPoints.push(`${f(x(t))},${f(y(demand.replicas[i] as number))}`);
    }
    demandPoints.push(
      `${f(x(Math.min(endSeconds, (demand.replicas.length - 1) * demand.stepSeconds)))},${f(y(0))}`,
    );
    // Provisioned area and ready line, as steps.
    const provisioned: string[] = [`${f(x(0))},${f(y(0))}`];
    const ready: string[] = [];
    let prevProvisioned = 0;
    let prevReady = Number.NaN;
    for (const p of run.timeline) {
      if (p.atSeconds > endSeconds) break;
      const px = f(x(p.atSeconds));
      if (provisioned.length > 1) provisioned.push(`${px},${f(y(prevProvisioned))}`);
      provisioned.push(`${px},${f(y(p.provisionedReplicas))}`);
      prevProvisioned = p.provisionedReplicas;
      if (!Number.isNaN(prevReady)) ready.push(`${px},${f(y(prevReady))}`);
      ready.push(`${px},${f(y(p.readyReplicas))}`);
      prevReady = p.readyReplicas;
    }
    provisioned.push(`${f(x(Math.min(lastAt, endSeconds)))},${f(y(0))}`);
    out.push(
      `<polygon points="${provisioned.join(' ')}" fill="${COLORS.provisioned}"/>`,
      `<polygon points="${demandPoints.join(' ')}" fill="${COLORS.demand}" fill-opacity="0.75"/>`,
      `<polyline points="${ready.join(' ')}" fill="none" stroke="${COLORS.ready}" stroke-width="1.6"/>`,
      `<line x1="${MARGIN_LEFT}" x2="${WIDTH - MARGIN_RIGHT}" y1="${top + PANEL_HEIGHT}" y2="${top + PANEL_HEIGHT}" stroke="#9aa0a6"/>`,
    );
    // SLO misses per minute, as a share of that minute's arrivals.
    const minutes = Math.ceil(endSeconds / 60);
    const arrivals = new Float64Array(minutes + 1);
    const misses = new Float64Array(minutes + 1);
    const bin = (t: number) => Math.min(minutes, Math.floor(t / 60));
    for (const t of run.arrivals) arrivals[bin(t)] = (arrivals[bin(t)] as number) + 1;
    for (const t of run.missArrivals) misses[bin(t)] = (misses[bin(t)] as number) + 1;
    const missTop = top + PANEL_HEIGHT + 2;
    for (let m = 0; m <= minutes; m++) {
      const share = (arrivals[m] as number) > 0 ? (misses[m] as number) / (arrivals[m] as number) : 0;
      if (share <= 0) continue;
      const h = Math.max(1, share * MISS_HEIGHT);
      out.push(
        `<rect x="${f(x(m * 60))}" y="${f(missTop)}" width="${f(Math.max(1, x(60) - x(0) - 0.5))}" height="${f(h)}" fill="${COLORS.miss}"/>`,
      );
    }
    out.push(
      `<text x="${MARGIN_LEFT - 6}" y="${f(missTop + 12)}" text-anchor="end" fill="${COLORS.miss}" font-size="10">missed</text>`,
    );
    // Time axis under the last panel only, minutes elsewhere as light ticks.
    for (const minute of ticks(endSeconds / 60)) {
      const tx = f(x(minute * 60));
      out.push(
        `<line x1="${tx}" x2="${tx}" y1="${top}" y2="${top + PANEL_HEIGHT}" stroke="${COLORS.grid}"/>`,
      );
      if (index === runs.length - 1) {
        out.push(
          `<text x="${tx}" y="${f(missTop + MISS_HEIGHT + 14)}" text-anchor="middle" fill="${COLORS.muted}">${minute} min</text>`,
        );
      }
    }
  });
  table(out, report, tableTop);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The SVG inside a page with the table as HTML and the notes, for a browser. */
export function renderHtml(
  report: SimulationReport,
  runs: readonly PolicyRun[],
  demand: DemandSeries,
): string {
  const svg = renderSvg(report, runs, demand);
  const rows = report.policies
    .map((p) => {
      const meets = p.sloAttainment >= report.slo.goal;
      return `<tr><td><b>${escapeXml(p.name)}</b></td><td class="${meets ? 'good' : 'bad'}">${percent(p.sloAttainment)}</td><td>${p.gpuHours.toFixed(1)}</td><td>${p.gpuHoursVsOracle === undefined ? '-' : `${p.gpuHoursVsOracle.toFixed(2)}x`}</td><td>$${Math.round(p.costUsd).toLocaleString('en-US')}</td><td>${seconds(p.ttftP50Seconds)}</td><td>${seconds(p.ttftP95Seconds)}</td><td>${seconds(p.ttftP99Seconds)}</td><td>${seconds(p.tpotP50Seconds)}</td><td>${seconds(p.tpotP95Seconds)}</td><td>${seconds(p.tpotP99Seconds)}</td><td>${p.preemptions}</td><td>${Math.round(p.replicaMinutes).toLocaleString('en-US')}</td><td>${p.meanReplicas.toFixed(1)} / ${p.peakReplicas}</td><td>${p.failed}</td><td class="settings">${escapeXml(describeSettings(p.settings))}</td></tr>`;
    })
    .join('\n');
  const notes = report.notes.map((n) => `<li>${escapeXml(n)}</li>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tokenscaler simulate: ${escapeXml(report.trace.name)}</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#1d1d1f}
table{border-collapse:collapse;margin-top:16px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e6e6;text-align:right}
th:first-child,td:first-child,td.settings{text-align:left}
.good{color:#137333;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
.settings{color:#5f6368;font-size:12px}
</style></head><body>
${svg}
<table>
<tr><th>policy</th><th>SLO met</th><th>GPU-h</th><th>vs oracle</th><th>cost</th><th>TTFT p50</th><th>TTFT p95</th><th>TTFT p99</th><th>TPOT p50</th><th>TPOT p95</th><th>TPOT p99</th><th>preemptions</th><th>replica-min</th><th>replicas mean / peak</th><th>failed</th><th>setting</th></tr>
${rows}
</table>
${notes.length > 0 ? `<ul>${notes}</ul>` : ''}
</body></html>
`;
}

function header(out: string[], report: SimulationReport): void {
  const f0 = report.fleet;
  const description = wrap(report.trace.description, 175);
  const lines = [
    ...description,
    `${f0.model} on ${f0.gpusPerReplica} x ${f0.gpu} per replica (TP ${f0.tensorParallel}): ${f0.tokensPerReplica.toLocaleString('en-US')} KV tokens and ~${f0.prefillTokensPerSecondPerReplica.toLocaleString('en-US')} prompt tokens/s per replica; cold start ${f0.coldStartSeconds} s.`,
    `SLO: TTFT <= ${report.slo.ttftSeconds} s and TPOT <= ${Math.round(report.slo.tpotSeconds * 1000)} ms, goal ${percent(report.slo.goal)} of requests. ${report.peerTuning === 'match-cost' ? "Peers tuned to spend at least tokenscaler's GPU-hours." : 'Peers at default thresholds.'}`,
  ];
  out.push(
    `<text x="${MARGIN_LEFT}" y="28" font-size="17" font-weight="bold">tokenscaler simulate: ${escapeXml(report.trace.name)} x${report.trace.loadMultiplier} (${escapeXml(report.trace.loadMethod)}), ${report.trace.requests.toLocaleString('en-US')} requests</text>`,
  );
  lines.slice(0, 4).forEach((line, i) => {
    out.push(`<text x="${MARGIN_LEFT}" y="${48 + i * 16}" fill="${COLORS.muted}">${escapeXml(line)}</text>`);
  });
  // Legend.
  const y = 124;
  let lx = MARGIN_LEFT;
  const item = (swatch: string, label: string) => {
    out.push(swatch.replace(/\{x\}/g, String(lx)).replace(/\{y\}/g, String(y)));
    out.push(`<text x="${lx + 22}" y="${y + 9}" fill="${COLORS.text}">${escapeXml(label)}</text>`);
    lx += 22 + label.length * 6.1 + 18;
  };
  item(
    `<rect x="{x}" y="{y}" width="16" height="11" fill="${COLORS.demand}"/>`,
    'demand: replicas the load needs at 100% (KV or prefill, whichever binds)',
  );
  item(`<rect x="{x}" y="{y}" width="16" height="11" fill="${COLORS.provisioned}"/>`, 'provisioned (billed)');
  item(
    `<line x1="{x}" x2="${lx + 16}" y1="${y + 6}" y2="${y + 6}" stroke="${COLORS.ready}" stroke-width="2"/>`,
    'ready replicas',
  );
  item(
    `<rect x="{x}" y="{y}" width="16" height="11" fill="${COLORS.miss}"/>`,
    'share of each minute missing the SLO',
  );
}

function table(out: string[], report: SimulationReport, top: number): void {
  const columns: {
    label: string;
    width: number;
    value: (p: SimulationReport['policies'][number]) => string;
  }[] = [
    { label: 'policy', width: 140, value: (p) => p.name },
    { label: 'SLO met', width: 72, value: (p) => percent(p.sloAttainment) },
    { label: 'GPU-hours', width: 78, value: (p) => p.gpuHours.toFixed(1) },
    {
      label: 'vs oracle',
      width: 80,
      value: (p) => (p.gpuHoursVsOracle === undefined ? '-' : `${p.gpuHoursVsOracle.toFixed(2)}x`),
    },
    { label: 'cost', width: 70, value: (p) => `$${Math.round(p.costUsd).toLocaleString('en-US')}` },
    { label: 'TTFT p50', width: 76, value: (p) => seconds(p.ttftP50Seconds) },
    { label: 'TTFT p99', width: 76, value: (p) => seconds(p.ttftP99Seconds) },
    { label: 'TPOT p50', width: 76, value: (p) => seconds(p.tpotP50Seconds) },
    { label: 'TPOT p99', width: 76, value: (p) => seconds(p.tpotP99Seconds) },
    { label: 'preempt.', width: 86, value: (p) => String(p.preemptions) },
    { label: 'replica-min', width: 84, value: (p) => Math.round(p.replicaMinutes).toLocaleString('en-US') },
    { label: 'mean / peak', width: 88, value: (p) => `${p.meanReplicas.toFixed(1)} / ${p.peakReplicas}` },
  ];
  const row = (y: number, cells: string[], bold: boolean, colors: (string | undefined)[] = []) => {
    let cx = MARGIN_LEFT;
    cells.forEach((cell, i) => {
      const column = columns[i] as { width: number };
      const anchor = i === 0 ? 'start' : 'end';
      const tx = i === 0 ? cx : cx + column.width - 8;
      const color = colors[i];
      out.push(
        `<text x="${tx}" y="${y}" text-anchor="${anchor}"${bold ? ' font-weight="bold"' : ''}${color !== undefined ? ` fill="${color}"` : ''}>${escapeXml(cell)}</text>`,
      );
      cx += column.width;
    });
  };
  out.push(
    `<text x="${MARGIN_LEFT}" y="${top + 4}" font-size="13" font-weight="bold">Cost and SLO (SLO goal ${percent(report.slo.goal)}; $${report.gpuHourCostUsd} per GPU-hour; peers ${report.peerTuning === 'match-cost' ? "tuned to spend at least tokenscaler's GPU-hours" : 'at default thresholds'})</text>`,
  );
  row(
    top + TABLE_ROW + 6,
    columns.map((c) => c.label),
    true,
  );
  report.policies.forEach((p, i) => {
    const meets = p.sloAttainment >= report.slo.goal;
    row(
      top + (i + 2) * TABLE_ROW + 6,
      columns.map((c) => c.value(p)),
      false,
      [undefined, meets ? COLORS.good : COLORS.bad],
    );
  });
  report.notes.forEach((note, i) => {
    out.push(
      `<text x="${MARGIN_LEFT}" y="${top + (report.policies.length + 2) * TABLE_ROW + 16 + i * 16}" fill="${COLORS.muted}" font-size="11">note: ${escapeXml(truncate(note, 190))}</text>`,
    );
  });
}

function ticks(max: number): number[] {
  const step = niceStep(max / 4);
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(Math.round(v * 1000) / 1000);
  return out;
}

function niceStep(raw: number): number {
  if (raw <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
  return Math.max(1, nice * power);
}

function niceCeiling(value: number): number {
  const step = niceStep(value / 4);
  return Math.ceil(value / step) * step;
}

function f(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

/** Splits text into lines of at most `width` characters at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
