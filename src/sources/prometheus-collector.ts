/**
 * @module The PromQL path: each reading of the engine profile becomes one instant query (three for a
 * histogram), evaluated by Prometheus over `rateWindowSeconds`, returned per pod (`by (instance)`)
 * and fed to the same `derive` as the scrape path.
 *
 * Stale series: Prometheus drops a target's series as soon as a scrape fails or the target goes away
 * (staleness markers), but without a marker (Prometheus restarted, federation, exporters with explicit
 * timestamps) an instant selector keeps showing the last sample for 5 minutes. Gauges and info series
 * are therefore read through a freshness guard, `x and ((time() - timestamp(x)) < staleAfterSeconds)`,
 * so a pod that disappeared does not keep its last value. Rates need no guard: a vanished pod's
 * counter contributes what it really did inside the window and nothing after.
 *
 * Absent vs zero: a pod without the series is missing from the per-pod map (absent); a pod that
 * reports 0 is there with 0.
 */
import type { TokenScalerSpec } from '../config/tokenscaler-spec.ts';
import type { EngineProfile } from './engine-profile.ts';
import { MetricsSourceError } from './errors.ts';
import type { Labels } from './exposition-parser.ts';
import { addBucket, bucketsFromMap, parseLe } from './histogram.ts';
import type { InstantResult, PrometheusClient } from './prometheus-client.ts';
import {
  type DerivedObservation,
  type HistogramRates,
  ObservationBuilder,
  type PerPod,
  type Reading,
  type ReadingResults,
  type SeriesRef,
} from './readings.ts';
import type { PodReport } from './scrape-collector.ts';

type PrometheusSpec = NonNullable<TokenScalerSpec['metrics']['prometheus']>;
export type GenericQueries = NonNullable<PrometheusSpec['queries']>;
export type GenericSignal = keyof GenericQueries;

export const GENERIC_SIGNALS: readonly GenericSignal[] = [
  'inflightTokens',
  'waitingTokens',
  'runningRequests',
  'waitingRequests',
  'promptTokensPerSecond',
  'generationTokensPerSecond',
  'requestInputTokensP95',
  'requestOutputTokensP95',
  'engineKvUsageRatio',
];

export interface PrometheusCollectorOptions {
  client: PrometheusClient;
  /** Label matchers in braces, from spec.metrics.prometheus.selector. */
  selector: string;
  rateWindowSeconds: number;
  staleAfterSeconds: number;
  /** Label that tells pods apart; `instance` is set on every scraped target. */
  podLabel: string;
  /** User PromQL per signal: the whole profile for `generic`, overrides for the others. */
  queries: GenericQueries | undefined;
}

export interface PrometheusOutcome {
  readonly results: ReadingResults;
  readonly pods: readonly PodReport[];
  readonly overrides: DerivedObservation;
  readonly warnings: readonly string[];
  /** The queries that were run, keyed by reading name, for `--explain` style output and tests. */
  readonly queries: Readonly<Record<string, string>>;
}

/** Builds the PromQL for a profile. Pure; exported for tests and for printing what will be asked. */
export class PromQlBuilder {
  private readonly inner: string;
  private readonly window: string;
  private readonly stale: number;
  private readonly podLabel: string;

  constructor(options: {
    selector: string;
    rateWindowSeconds: number;
    staleAfterSeconds: number;
    podLabel: string;
  }) {
    this.inner = options.selector
      .trim()
      .replace(/^\{/, '')
      .replace(/\}$/, '')
      .trim()
      .replace(/,$/, '')
      .trim();
    this.window = `${options.rateWindowSeconds}s`;
    this.stale = options.staleAfterSeconds;
    this.podLabel = options.podLabel;
  }

  select(ref: SeriesRef, suffix = ''): string {
    const parts = this.inner === '' ? [] : [this.inner];
    for (const [name, value] of Object.entries(ref.match ?? {}))
      parts.push(`${name}=${JSON.stringify(value)}`);
    return `${ref.metric}${suffix}{${parts.join(',')}}`;
  }

  fresh(ref: SeriesRef): string {
    const s = this.select(ref);
    return `(${s} and ((time() - timestamp(${s})) < ${this.stale}))`;
  }

  gauge(reading: Extract<Reading, { kind: 'gauge' }>): string {
    let x = reading.sources.map((s) => this.fresh(s)).join(' or ');
    if (reading.collapse !== undefined && reading.collapse.length > 0) {
      x = `max without (${reading.collapse.join(', ')}) (${x})`;
    }
    const op = reading.perPod === 'mean' ? 'avg' : reading.perPod;
    return `${op} by (${this.podLabel}) (${x})`;
  }

  rate(reading: Extract<Reading, { kind: 'rate' }>): string {
    return `sum by (${this.podLabel}) (${reading.sources.map((s) => `rate(${this.select(s)}[${this.window}])`).join(' or ')})`;
  }

  histogram(reading: Extract<Reading, { kind: 'histogram' }>): {
    buckets: string;
    sum: string;
    count: string;
  } {
    const rates = (suffix: string) =>
      reading.sources.map((s) => `rate(${this.select(s, suffix)}[${this.window}])`).join(' or ');
    return {
      buckets: `sum by (le) (${rates('_bucket')})`,
      sum: `sum(${rates('_sum')})`,
      count: `sum(${rates('_count')})`,
    };
  }

  info(reading: Extract<Reading, { kind: 'info' }>): string {
    return this.fresh(reading.source);
  }

  pods(profile: EngineProfile): string {
    if (profile.presence.length === 0) return `count by (${this.podLabel}) (up{${this.inner}} == 1)`;
    return `count by (${this.podLabel}) (${profile.presence.map((metric) => this.fresh({ metric })).join(' or ')})`;
  }
}

export class PrometheusCollector {
  private readonly profile: EngineProfile;
  private readonly options: PrometheusCollectorOptions;
  private readonly builder: PromQlBuilder;

  constructor(profile: EngineProfile, options: PrometheusCollectorOptions) {
    this.profile = profile;
    this.options = options;
    this.builder = new PromQlBuilder(options);
  }

  async collect(signal: AbortSignal): Promise<PrometheusOutcome> {
    const { builder, options } = this;
    const queries: Record<string, string> = { pods: builder.pods(this.profile) };
    for (const [name, reading] of Object.entries(this.profile.readings) as [string, Reading][]) {
      switch (reading.kind) {
        case 'gauge':
          queries[name] = builder.gauge(reading);
          break;
        case 'rate':
          queries[name] = builder.rate(reading);
          break;
        case 'histogram': {
          const h = builder.histogram(reading);
          queries[`${name}:buckets`] = h.buckets;
          queries[`${name}:sum`] = h.sum;
          queries[`${name}:count`] = h.count;
          break;
        }
        case 'info':
          queries[name] = builder.info(reading);
          break;
      }
    }
    for (const signalName of GENERIC_SIGNALS) {
      const query = options.queries?.[signalName];
      if (query !== undefined) queries[`override:${signalName}`] = query;
    }

    const entries = Object.entries(queries);
    const answers = await Promise.all(
      entries.map(([, query]) => options.client.instantQuery(query, { signal })),
    );
    const byName = new Map<string, InstantResult>(
      entries.map(([name], i) => [name, answers[i] as InstantResult]),
    );
    const warnings = [...new Set(answers.flatMap((a) => a.warnings))];

    const podOf = (labels: Readonly<Record<string, string>>) =>
      labels[options.podLabel] ?? `(no ${options.podLabel} label)`;
    const pods = [...new Set((byName.get('pods')?.samples ?? []).map((s) => podOf(s.labels)))].sort();

    const results: ReadingResults = {
      pods,
      perPod: (name: string): PerPod => {
        const out = new Map<string, number>();
        for (const s of byName.get(name)?.samples ?? []) {
          const pod = podOf(s.labels);
          out.set(pod, (out.get(pod) ?? 0) + s.value);
        }
        return out;
      },
      histogram: (name: string): HistogramRates | undefined => {
        const buckets = new Map<number, number>();
        for (const s of byName.get(`${name}:buckets`)?.samples ?? []) {
          const le = parseLe(s.labels.le);
          if (le !== undefined) addBucket(buckets, le, s.value);
        }
        const sum = byName.get(`${name}:sum`)?.samples[0]?.value;
        const count = byName.get(`${name}:count`)?.samples[0]?.value;
        if (buckets.size === 0 && sum === undefined && count === undefined) return undefined;
        return { buckets: bucketsFromMap(buckets), sumPerSecond: sum, countPerSecond: count };
      },
      info: (name: string) => {
        const out = new Map<string, Labels[]>();
        for (const s of byName.get(name)?.samples ?? []) {
          const pod = podOf(s.labels);
          const list = out.get(pod) ?? [];
          list.push(s.labels);
          out.set(pod, list);
        }
        return out;
      },
    };

    const overrides = new ObservationBuilder();
    for (const signalName of GENERIC_SIGNALS) {
      const answer = byName.get(`override:${signalName}`);
      if (answer === undefined) continue;
      if (answer.samples.length > 1) {
        throw new MetricsSourceError(
          'PROMETHEUS_BAD_RESPONSE',
          `the query for ${signalName} returned ${answer.samples.length} series; it must return one number (wrap it in sum(...) or avg(...))`,
          { target: options.queries?.[signalName] ?? signalName },
        );
      }
      const value = answer.samples[0]?.value;
      if (signalName === 'requestInputTokensP95' || signalName === 'requestOutputTokensP95') {
        if (value !== undefined) {
          overrides.percentiles(
            signalName === 'requestInputTokensP95' ? 'requestInputTokens' : 'requestOutputTokens',
            { p95: value },
          );
        }
      } else {
        overrides.measured(signalName, value);
      }
    }

    return {
      results,
      pods: pods.map((pod) => ({ pod, ok: true })),
      overrides: overrides.result,
      warnings,
      queries,
    };
  }
}
