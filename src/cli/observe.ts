/**
 * @module `tokenscaler observe`: one observation of token demand, from `/metrics` endpoints scraped
 * directly or from a Prometheus server, through the same sources the controller uses. Prints a table,
 * or with `--json` the figures under the field names of DESIGN.md with, for each, whether it was
 * measured or estimated. Fields not measured are `null` (never 0).
 *
 * Rates and percentiles need a window: the PromQL path asks Prometheus over `--rate-window`; the
 * scrape path scrapes twice, `--interval` seconds apart (0 = one scrape, no rates).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ENGINE_KINDS, metricsSpecSchema } from '../config/tokenscaler-spec.ts';
import type { Observation, SignalProvenance } from '../core/observation.ts';
import { InvalidInputError } from '../errors.ts';
import { requireEngineProfile } from '../sources/engines/registry.ts';
import { createObservationSource, type ObservationResult } from '../sources/observation-source.ts';
import { GENERIC_SIGNALS, type GenericQueries, type GenericSignal } from '../sources/prometheus-collector.ts';
import { type CommandHandler, type CommandIo, EXIT_FAILURE, EXIT_OK } from './command.ts';
import { parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler observe --engine KIND (--scrape URL... | --prometheus URL --selector S) [flags]

One observation of token demand from inference-engine or gateway metrics: tokens in flight and
waiting, requests, per-request token percentiles, token rates, engine KV usage and capacity.

  --engine KIND            ${ENGINE_KINDS.join(', ')}
  --scrape URL...          /metrics endpoints to scrape directly (repeat the flag or list URLs after it)
  --prometheus URL         a Prometheus server to query instead (PromQL over its HTTP API)
  --selector S             PromQL label selector in braces, e.g. '{namespace="inference",app="vllm"}' (default {})
  --query SIGNAL=PROMQL    PromQL for one signal (engine generic; overrides a profile's figure otherwise);
                           repeatable; SIGNAL is one of
                           ${GENERIC_SIGNALS.slice(0, 4).join(', ')},
                           ${GENERIC_SIGNALS.slice(4, 7).join(', ')},
                           ${GENERIC_SIGNALS.slice(7).join(', ')}
  --rate-window SECONDS    Prometheus rate window (default 120)
  --interval SECONDS       scrape: seconds between the two scrapes that give rates and percentiles
                           (default 5; 0 = one scrape, no rates)
  --timeout SECONDS        deadline of each HTTP request (default 5)
  --json                   machine-readable output
`;

/** JSON field -> how to read it from an Observation, and which provenance entry applies. */
const FIELDS = [
  ['inflightTokens', (o: Observation) => o.inflightTokens, 'inflightTokens'],
  ['waitingTokens', (o: Observation) => o.waitingTokens, 'waitingTokens'],
  ['runningRequests', (o: Observation) => o.runningRequests, 'runningRequests'],
  ['waitingRequests', (o: Observation) => o.waitingRequests, 'waitingRequests'],
  ['inputTokensP50', (o: Observation) => o.requestInputTokens?.p50, 'requestInputTokens'],
  ['inputTokensP95', (o: Observation) => o.requestInputTokens?.p95, 'requestInputTokens'],
  ['inputTokensP99', (o: Observation) => o.requestInputTokens?.p99, 'requestInputTokens'],
  ['outputTokensP50', (o: Observation) => o.requestOutputTokens?.p50, 'requestOutputTokens'],
  ['outputTokensP95', (o: Observation) => o.requestOutputTokens?.p95, 'requestOutputTokens'],
  ['outputTokensP99', (o: Observation) => o.requestOutputTokens?.p99, 'requestOutputTokens'],
  ['promptTokensPerSecond', (o: Observation) => o.promptTokensPerSecond, 'promptTokensPerSecond'],
  ['generationTokensPerSecond', (o: Observation) => o.generationTokensPerSecond, 'generationTokensPerSecond'],
  ['preemptionsPerSecond', (o: Observation) => o.preemptionsPerSecond, 'preemptionsPerSecond'],
  ['kvCacheUsage', (o: Observation) => o.engineKvUsageRatio, 'engineKvUsageRatio'],
  [
    'engineCapacityTokens',
    (o: Observation) => o.engineKvCapacityTokensPerReplica,
    'engineKvCapacityTokensPerReplica',
  ],
] as const;

export interface ObserveReport {
  engine: string;
  source: 'scrape' | 'prometheus';
  observedAtSeconds: number;
  pods: number;
  values: Record<string, number | null>;
  provenance: Record<string, SignalProvenance>;
}

/** Flattens an Observation into the JSON of `tokenscaler observe --json` (DESIGN.md field names). */
export function observationReport(
  engine: string,
  source: 'scrape' | 'prometheus',
  o: Observation,
): ObserveReport {
  const values: Record<string, number | null> = {};
  const provenance: Record<string, SignalProvenance> = {};
  for (const [field, read, signal] of FIELDS) {
    const value = read(o);
    values[field] = value ?? null;
    const how = o.provenance[signal];
    if (value !== undefined && how !== undefined) provenance[field] = how;
  }
  // One request's tokens at P95, as core/decide uses it for the Fits guard: input P95 + output P95.
  const inP95 = o.requestInputTokens?.p95;
  const outP95 = o.requestOutputTokens?.p95;
  values.requestTokensP95 = inP95 === undefined || outP95 === undefined ? null : inP95 + outP95;
  if (values.requestTokensP95 !== null) {
    const both = [o.provenance.requestInputTokens, o.provenance.requestOutputTokens];
    provenance.requestTokensP95 = both.every((p) => p === 'measured') ? 'measured' : 'estimated';
  }
  return {
    engine,
    source,
    observedAtSeconds: o.observedAtSeconds,
    pods: o.podsReporting,
    values,
    provenance,
  };
}

export const runObserve: CommandHandler = async (args, io) => {
  const { values, positionals } = parseFlags(
    args,
    {
      engine: { type: 'string' },
      scrape: { type: 'string', multiple: true },
      prometheus: { type: 'string' },
      selector: { type: 'string' },
      query: { type: 'string', multiple: true },
      'rate-window': { type: 'string' },
      interval: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    true,
  );
  if (values.help) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  if (values.engine === undefined) {
    throw new InvalidInputError('--engine', `is required; allowed: ${ENGINE_KINDS.join(', ')}`);
  }
  const profile = requireEngineProfile(values.engine, '--engine');
  const scrapeUrls = [...(values.scrape ?? []), ...(values.scrape === undefined ? [] : positionals)].flatMap(
    (u) => u.split(',').filter((part) => part !== ''),
  );
  if (values.scrape === undefined && positionals.length > 0) {
    throw new InvalidInputError(
      'flags',
      `unexpected argument ${JSON.stringify(positionals[0])}; URLs go after --scrape`,
    );
  }
  if (scrapeUrls.length > 0 === (values.prometheus !== undefined)) {
    throw new InvalidInputError('--scrape', 'give either --scrape URL... or --prometheus URL (exactly one)');
  }
  const timeoutSeconds =
    parseNumberFlag('timeout', values.timeout, { min: 0, max: 60, exclusiveMin: true }) ?? 5;
  const intervalSeconds = parseNumberFlag('interval', values.interval, { min: 0, max: 600 }) ?? 5;
  const rateWindowSeconds =
    parseNumberFlag('rate-window', values['rate-window'], { min: 1, max: 86_400, integer: true }) ?? 120;
  const queries = parseQueries(values.query ?? []);

  let metricsInput: unknown;
  if (scrapeUrls.length > 0) {
    for (const url of scrapeUrls) requireHttpUrl(url, '--scrape');
    if (values.selector !== undefined || values['rate-window'] !== undefined || queries !== undefined) {
      throw new InvalidInputError(
        '--scrape',
        '--selector, --rate-window and --query apply to --prometheus only',
      );
    }
    metricsInput = { scrape: { urls: scrapeUrls, timeoutSeconds } };
  } else {
    requireHttpUrl(values.prometheus as string, '--prometheus');
    metricsInput = {
      prometheus: {
        url: values.prometheus,
        selector: values.selector ?? '{}',
        rateWindowSeconds,
        timeoutSeconds,
        ...(queries === undefined ? {} : { queries }),
      },
    };
  }
  const parsed = metricsSpecSchema.safeParse(metricsInput);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field =
      issue?.path.at(-1) === 'selector'
        ? '--selector'
        : issue?.path.includes('scrape')
          ? '--scrape'
          : '--prometheus';
    throw new InvalidInputError(field, issue?.message ?? 'invalid value', { cause: parsed.error });
  }
  if (parsed.data.scrape !== undefined && !profile.supportsScrape) {
    throw new InvalidInputError(
      '--engine',
      `${profile.kind} works through PromQL only: give --prometheus URL and --query SIGNAL=PROMQL`,
    );
  }

  const source = createObservationSource(
    { engine: { kind: profile.kind }, metrics: parsed.data },
    {
      fetch: (url, init) => fetch(url, init),
      clockMs: io.nowMs,
      // Both scrapes must fall inside the window: interval x 2, plus slack for slow scrapes.
      scrapeRateWindowSeconds: Math.max(1, intervalSeconds * 2 + timeoutSeconds),
    },
  );
  let result: ObservationResult;
  if (source.path === 'scrape' && intervalSeconds > 0) {
    const first = await source.observe(io.nowMs() / 1000, io.signal);
    if (!first.ok) return fail(io, first);
    try {
      await sleep(intervalSeconds * 1000, undefined, { signal: io.signal });
    } catch {
      io.stderr('tokenscaler observe: interrupted\n');
      return EXIT_FAILURE;
    }
  }
  result = await source.observe(io.nowMs() / 1000, io.signal);
  if (!result.ok) return fail(io, result);

  for (const warning of result.warnings) io.stderr(`tokenscaler observe: warning: ${warning}\n`);
  const report = observationReport(profile.kind, source.path, result.observation);
  if (values.json) {
    const json = {
      engine: report.engine,
      source: report.source,
      observedAtSeconds: report.observedAtSeconds,
      pods: report.pods,
      ...report.values,
      provenance: report.provenance,
      ...(source.path === 'scrape' ? { rateWindowSeconds: intervalSeconds } : { rateWindowSeconds }),
      endpoints: result.pods.map((p) => ({
        pod: p.pod,
        ok: p.ok,
        ...(p.error === undefined ? {} : { error: { code: p.error.code, message: p.error.message } }),
      })),
      warnings: result.warnings,
    };
    io.stdout(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    const scope =
      source.path === 'scrape'
        ? `direct scrape of ${result.pods.length} endpoint${result.pods.length === 1 ? '' : 's'}, ${
            intervalSeconds > 0 ? `rates over ${intervalSeconds} s` : 'one scrape (no rates)'
          }`
        : `Prometheus ${parsed.data.prometheus?.url} ${parsed.data.prometheus?.selector}, rates over ${rateWindowSeconds} s`;
    io.stdout(renderTable(`${profile.displayName} via ${scope}`, report));
  }
  return EXIT_OK;
};

function fail(io: CommandIo, result: Extract<ObservationResult, { ok: false }>): number {
  io.stderr(`tokenscaler observe: ${result.error.message}\n`);
  return EXIT_FAILURE;
}

function requireHttpUrl(raw: string, flag: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidInputError(
      flag,
      `${JSON.stringify(raw)} is not a URL; expected http(s)://host:port/path`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidInputError(
      flag,
      `${JSON.stringify(raw)} is not allowed; expected an http:// or https:// URL`,
    );
  }
}

function parseQueries(raw: readonly string[]): GenericQueries | undefined {
  if (raw.length === 0) return undefined;
  const out: Partial<Record<GenericSignal, string>> = {};
  for (const entry of raw) {
    const eq = entry.indexOf('=');
    const signal = eq === -1 ? entry : entry.slice(0, eq);
    const query = eq === -1 ? '' : entry.slice(eq + 1).trim();
    if (!(GENERIC_SIGNALS as readonly string[]).includes(signal)) {
      throw new InvalidInputError(
        '--query',
        `${JSON.stringify(signal)} is not a signal; expected SIGNAL=PROMQL with SIGNAL one of ${GENERIC_SIGNALS.join(', ')}`,
      );
    }
    if (query === '')
      throw new InvalidInputError('--query', `${signal}= needs a PromQL expression after "="`);
    out[signal as GenericSignal] = query;
  }
  return out;
}

const LABELS: Record<string, string> = {
  inflightTokens: 'in-flight tokens',
  waitingTokens: 'waiting tokens',
  runningRequests: 'running requests',
  waitingRequests: 'waiting requests',
  inputTokensP50: 'input tokens P50',
  inputTokensP95: 'input tokens P95',
  inputTokensP99: 'input tokens P99',
  outputTokensP50: 'output tokens P50',
  outputTokensP95: 'output tokens P95',
  outputTokensP99: 'output tokens P99',
  requestTokensP95: 'request tokens P95 (in + out)',
  promptTokensPerSecond: 'prompt tokens/s',
  generationTokensPerSecond: 'generation tokens/s',
  preemptionsPerSecond: 'preemptions/s',
  kvCacheUsage: 'KV-cache usage',
  engineCapacityTokens: 'KV capacity per replica (tokens)',
};

function renderTable(title: string, report: ObserveReport): string {
  const rows: [string, string, string][] = [['pods reporting', String(report.pods), '']];
  for (const [field, label] of Object.entries(LABELS)) {
    const value = report.values[field];
    const shown =
      value === null || value === undefined
        ? '-'
        : field === 'kvCacheUsage'
          ? `${(value * 100).toFixed(1)}%`
          : formatNumber(value);
    rows.push([
      label,
      shown,
      value === null || value === undefined ? 'not measured' : (report.provenance[field] ?? ''),
    ]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`.trimEnd());
  return `${title}\n\n${lines.join('\n')}\n`;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) || Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toLocaleString('en-US', { maximumFractionDigits: 2 });
}
