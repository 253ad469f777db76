import type { PolicySummary } from './report.ts';

/**
 * The result of `tokenscaler simulate` as one document: what was replayed, on what fleet, against
 * which SLO, and one summary per policy (DESIGN.md: `policies` with `name`, `sloAttainment`,
 * `gpuHours`, `ttftP50Seconds`, `ttftP99Seconds`, `preemptions`, ...). The `--json` output, the
 * table and the plot are all renderings of it.
 */
export interface SimulationReport {
  trace: {
    name: string;
    /** How the requests were produced from the file (load multiplier and method, synthetic arrivals). */
    description: string;
    requests: number;
    /** Seconds from the first to the last arrival. */
    durationSeconds: number;
    loadMultiplier: number;
    loadMethod: string;
  };
  fleet: {
    model: string;
    gpu: string;
    tensorParallel: number;
    pipelineParallel: number;
    gpusPerReplica: number;
    tokensPerReplica: number;
    kvBytesPerToken: number;
    /** Prompt tokens/s one replica prefills (roofline, at the trace's mean prompt), unless overridden. */
    prefillTokensPerSecondPerReplica: number;
    /** One decode step of 64 sequences at 2,000 cached tokens, seconds (a feel for the step model). */
    decodeStepSeconds: number;
    peakDenseTflopsPerGpu: number;
    hbmBandwidthGBpsPerGpu: number;
    computeEfficiency: number;
    memoryEfficiency: number;
    stepOverheadSeconds: number;
    maxNumBatchedTokens: number;
    maxNumSeqs: number;
    coldStartSeconds: number;
    drainGraceSeconds: number;
    minReplicas: number;
    maxReplicas: number;
    initialReplicas: number;
    scrapeIntervalSeconds: number;
    hpaSyncSeconds: number;
  };
  slo: { ttftSeconds: number; tpotSeconds: number; goal: number };
  gpuHourCostUsd: number;
  seed: number;
  peerTuning: string;
  policies: PolicySummary[];
  notes: string[];
}

/** A fixed-width table of the policies, for the terminal. */
export function renderTable(report: SimulationReport): string {
  const header = [
    'policy',
    'SLO met',
    'GPU-h',
    'vs oracle',
    'cost',
    'TTFT p50',
    'TTFT p99',
    'TPOT p50',
    'TPOT p99',
    'preempt',
    'replicas (mean/peak)',
    'setting',
  ];
  const rows = report.policies.map((p) => [
    p.name,
    percent(p.sloAttainment),
    p.gpuHours.toFixed(1),
    p.gpuHoursVsOracle === undefined ? '-' : `${p.gpuHoursVsOracle.toFixed(2)}x`,
    `$${Math.round(p.costUsd).toLocaleString('en-US')}`,
    seconds(p.ttftP50Seconds),
    seconds(p.ttftP99Seconds),
    seconds(p.tpotP50Seconds),
    seconds(p.tpotP99Seconds),
    String(p.preemptions),
    `${p.meanReplicas.toFixed(1)} / ${p.peakReplicas}`,
    describeSettings(p.settings),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  const f = report.fleet;
  const intro = [
    `${report.trace.description} (${report.trace.requests.toLocaleString('en-US')} requests)`,
    `fleet: ${f.model} on ${f.gpusPerReplica} x ${f.gpu} per replica (TP ${f.tensorParallel}, PP ${f.pipelineParallel}), ${f.tokensPerReplica.toLocaleString('en-US')} KV tokens and ~${Math.round(f.prefillTokensPerSecondPerReplica).toLocaleString('en-US')} prompt tokens/s per replica, cold start ${f.coldStartSeconds} s`,
    `SLO: TTFT <= ${report.slo.ttftSeconds} s and TPOT <= ${Math.round(report.slo.tpotSeconds * 1000)} ms; GPU-hour $${report.gpuHourCostUsd}; peers ${report.peerTuning === 'match-cost' ? "tuned to spend at least tokenscaler's GPU-hours" : 'at their default thresholds'}`,
    '',
  ];
  const notes = report.notes.map((n) => `note: ${n}`);
  return `${[...intro, line(header), ...rows.map(line), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n')}\n`;
}

export function describeSettings(settings: Record<string, number | string | boolean>): string {
  return Object.entries(settings)
    .filter(([key]) => key !== 'tuned')
    .map(([key, value]) => `${key}=${value}`)
    .concat(settings['tuned'] === true ? ['(tuned)'] : [])
    .join(' ');
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(share >= 0.999 && share < 1 ? 2 : 1)}%`;
}

export function seconds(value: number | null): string {
  if (value === null) return '-';
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 100) return `${value.toFixed(2)} s`;
  return `${Math.round(value)} s`;
}
