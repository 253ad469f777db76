/**
 * @module A small client for Prometheus' HTTP API (`POST /api/v1/query`, instant queries), as
 * prometheus-adapter keeps its own instead of a general library. Every call has a deadline; every
 * response body is validated with zod; Prometheus' own error bodies (`{"status":"error",
 * "errorType":"bad_data","error":"..."}`) are surfaced in the error message; `NaN` and `±Inf`
 * samples are dropped, so an empty vector and a NaN answer both read as "no data", never as zero
 * (the KEDA default that scaled production to its minimum during an outage, keda#3065).
 */
import { z } from 'zod';
import { MetricsSourceError } from './errors.ts';
import { boundedFetch, type FetchLike, redactUrl } from './http-fetch.ts';

export interface PrometheusClientOptions {
  /** Base URL, e.g. http://prometheus:9090 or https://host/prometheus (a path prefix is kept). */
  url: string;
  fetch: FetchLike;
  timeoutSeconds: number;
  /** Largest response accepted; a query that selects far too much fails instead of eating memory. */
  maxResponseBytes?: number;
  /** Extra headers (e.g. Authorization for a managed Prometheus). */
  headers?: Readonly<Record<string, string>>;
}

export interface InstantSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface InstantResult {
  /** Finite samples only; empty means no data. */
  readonly samples: readonly InstantSample[];
  readonly warnings: readonly string[];
}

const sampleValue = z.tuple([z.number(), z.string()]);

const successSchema = z.object({
  status: z.literal('success'),
  data: z.discriminatedUnion('resultType', [
    z.object({
      resultType: z.literal('vector'),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: sampleValue })),
    }),
    z.object({ resultType: z.literal('scalar'), result: sampleValue }),
    z.object({
      resultType: z.literal('matrix'),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sampleValue) })),
    }),
    z.object({ resultType: z.literal('string'), result: sampleValue }),
  ]),
  warnings: z.array(z.string()).optional(),
  infos: z.array(z.string()).optional(),
});

const errorSchema = z.object({
  status: z.literal('error'),
  errorType: z.string().optional(),
  error: z.string().optional(),
});

export class PrometheusClient {
  private readonly options: PrometheusClientOptions;
  private readonly endpoint: string;
  private readonly target: string;

  constructor(options: PrometheusClientOptions) {
    this.options = options;
    const base = options.url.endsWith('/') ? options.url : `${options.url}/`;
    this.endpoint = new URL('api/v1/query', base).toString();
    this.target = redactUrl(options.url);
  }

  /** Evaluates `query` at `timeSeconds` (Prometheus' own clock when omitted). */
  async instantQuery(
    query: string,
    opts?: { timeSeconds?: number; signal?: AbortSignal },
  ): Promise<InstantResult> {
    const form = new URLSearchParams({ query });
    if (opts?.timeSeconds !== undefined) form.set('time', String(opts.timeSeconds));
    // Prometheus evaluates with its own timeout too; keep it inside ours so its error body reaches us.
    form.set('timeout', `${Math.max(1, Math.floor(this.options.timeoutSeconds * 1000) - 250)}ms`);
    const response = await boundedFetch(this.endpoint, {
      fetch: this.options.fetch,
      timeoutSeconds: this.options.timeoutSeconds,
      maxBytes: this.options.maxResponseBytes ?? 32 * 1024 * 1024,
      signal: opts?.signal,
      init: {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          ...this.options.headers,
        },
        body: form.toString(),
      },
      failure: 'PROMETHEUS_UNREACHABLE',
      timeout: 'PROMETHEUS_TIMEOUT',
      tooLarge: 'PROMETHEUS_BAD_RESPONSE',
      malformed: 'PROMETHEUS_BAD_RESPONSE',
      target: this.target,
    });
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch (error) {
      const code = response.ok ? 'PROMETHEUS_BAD_RESPONSE' : 'PROMETHEUS_UNREACHABLE';
      throw new MetricsSourceError(
        code,
        `${this.target}: HTTP ${response.status} with a body that is not JSON (${clip(response.text)}); is this a Prometheus server?`,
        { cause: error, target: query },
      );
    }
    const failed = errorSchema.safeParse(body);
    if (failed.success) {
      throw new MetricsSourceError(
        'PROMETHEUS_QUERY_FAILED',
        `Prometheus rejected ${JSON.stringify(clip(query))}: ${failed.data.errorType ?? 'error'}: ${failed.data.error ?? `HTTP ${response.status}`}`,
        { target: query },
      );
    }
    if (!response.ok) {
      throw new MetricsSourceError(
        'PROMETHEUS_UNREACHABLE',
        `${this.target}: HTTP ${response.status}: ${clip(response.text)}`,
        {
          target: query,
        },
      );
    }
    const parsed = successSchema.safeParse(body);
    if (!parsed.success) {
      throw new MetricsSourceError(
        'PROMETHEUS_BAD_RESPONSE',
        `${this.target}: answer to ${JSON.stringify(clip(query))} does not match the Prometheus API: ${z.prettifyError(parsed.error).replace(/\s+/g, ' ')}`,
        { cause: parsed.error, target: query },
      );
    }
    const { data } = parsed.data;
    const warnings = [...(parsed.data.warnings ?? [])];
    switch (data.resultType) {
      case 'vector':
        return {
          samples: data.result.flatMap((r) => finite(r.metric, r.value[1])),
          warnings,
        };
      case 'scalar':
        return { samples: finite({}, data.result[1]), warnings };
      default:
        throw new MetricsSourceError(
          'PROMETHEUS_BAD_RESPONSE',
          `${this.target}: ${JSON.stringify(clip(query))} returned a ${data.resultType}; an instant vector or scalar is needed`,
          { target: query },
        );
    }
  }
}

function finite(labels: Record<string, string>, raw: string): InstantSample[] {
  const value = Number(raw);
  // Prometheus writes "NaN", "+Inf", "-Inf"; Number() reads "NaN" as NaN and the infinities as NaN too.
  return Number.isFinite(value) && raw.trim() !== '' ? [{ labels, value }] : [];
}

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat;
}
