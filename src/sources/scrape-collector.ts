/**
 * @module Direct scrape: fetch every endpoint's `/metrics`, parse it, and evaluate the profile's
 * readings per pod. Counter rates and histogram windows need history, so the collector keeps, per
 * endpoint and per series, the samples of the last rate window (CounterWindow); the first tick has
 * no rates. History of an endpoint that is no longer listed is dropped at once, and so is a series
 * that vanished from a payload: a pod that went away never keeps its last value.
 *
 * A failing endpoint (unreachable, slow, malformed, wrong engine) is reported in the pod list and
 * left out of the fleet figures for this tick; its history is kept so its rates continue when it
 * comes back within the window.
 */

import { CounterWindow } from './counter-window.ts';
import type { EngineProfile } from './engine-profile.ts';
import { asSourceError, ExpositionError, MetricsSourceError } from './errors.ts';
import {
  type ExpositionLimits,
  formatFromContentType,
  type IndexedSeries,
  indexSamples,
  type Labels,
  type MetricType,
  parseExposition,
  type Sample,
} from './exposition-parser.ts';
import { addBucket, bucketsFromMap, parseLe } from './histogram.ts';
import { boundedFetch, type FetchLike, redactUrl } from './http-fetch.ts';
import {
  type HistogramRates,
  matches,
  type PerPod,
  type Reading,
  type ReadingResults,
  type SeriesRef,
  sampleNamesOf,
} from './readings.ts';

export interface ScrapeCollectorOptions {
  fetch: FetchLike;
  /** Wall clock in ms, to time scrapes and age explicit sample timestamps. */
  clockMs: () => number;
  timeoutSeconds: number;
  rateWindowSeconds: number;
  /** A sample carrying an explicit timestamp older than this is stale and ignored. */
  staleAfterSeconds: number;
  /** Endpoints scraped at once; a 1,000-pod fleet is fetched in waves of this size. */
  concurrency: number;
  limits: ExpositionLimits;
}

export interface PodReport {
  /** Endpoint URL (scrape) or pod label value (Prometheus). */
  readonly pod: string;
  readonly ok: boolean;
  readonly error?: MetricsSourceError;
  /** Readings this pod could not give although it answered (a series of the wrong type). */
  readonly problems?: readonly MetricsSourceError[];
  readonly scrapeSeconds?: number;
  readonly samples?: number;
}

export interface CollectOutcome {
  readonly results: ReadingResults;
  readonly pods: readonly PodReport[];
}

const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

const GAUGE_TYPES: ReadonlySet<MetricType> = new Set(['gauge', 'untyped', 'unknown']);
const COUNTER_TYPES: ReadonlySet<MetricType> = new Set([
  'counter',
  'untyped',
  'unknown',
  'histogram',
  'summary',
]);
const HISTOGRAM_TYPES: ReadonlySet<MetricType> = new Set(['histogram', 'untyped', 'unknown']);
const INFO_TYPES: ReadonlySet<MetricType> = new Set(['gauge', 'info', 'untyped', 'unknown']);

interface PodValues {
  perPod: Map<string, number>;
  histograms: Map<
    string,
    { buckets: Map<number, number>; sum: number | undefined; count: number | undefined }
  >;
  info: Map<string, Labels[]>;
}

export class ScrapeCollector {
  private readonly profile: EngineProfile;
  private readonly options: ScrapeCollectorOptions;
  private readonly wanted: ReadonlySet<string>;
  /** endpoint -> series key -> window. */
  private readonly history = new Map<string, Map<string, CounterWindow>>();

  constructor(profile: EngineProfile, options: ScrapeCollectorOptions) {
    this.profile = profile;
    this.options = options;
    this.wanted = new Set([...profile.presence, ...Object.values(profile.readings).flatMap(sampleNamesOf)]);
  }

  /** Number of series windows held, for tests and memory accounting. */
  get historySize(): number {
    let n = 0;
    for (const series of this.history.values()) n += series.size;
    return n;
  }

  async collect(
    endpoints: readonly string[],
    nowSeconds: number,
    signal: AbortSignal,
  ): Promise<CollectOutcome> {
    const unique = [...new Set(endpoints)];
    for (const endpoint of this.history.keys()) {
      if (!unique.includes(endpoint)) this.history.delete(endpoint);
    }
    const tickStartedMs = this.options.clockMs();
    const reports: PodReport[] = new Array(unique.length);
    const values = new Map<string, PodValues>();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= unique.length) return;
        const endpoint = unique[i] as string;
        const started = this.options.clockMs();
        // Samples are stamped when their scrape started (as Prometheus does), not when the tick
        // began: in a large fleet the last wave starts seconds after the first, and a pod's place in
        // the order varies between ticks. Anchored on `nowSeconds`, so a test clock that stands
        // still gives exactly the tick times.
        const sampleSeconds = nowSeconds + (started - tickStartedMs) / 1000;
        try {
          const { podValues, samples, problems } = await this.scrapeOne(endpoint, sampleSeconds, signal);
          values.set(endpoint, podValues);
          reports[i] = {
            pod: endpoint,
            ok: true,
            ...(problems.length > 0 ? { problems } : {}),
            samples,
            scrapeSeconds: (this.options.clockMs() - started) / 1000,
          };
        } catch (error) {
          const sourceError = asSourceError(error, 'SCRAPE_FAILED', redactUrl(endpoint));
          if (sourceError.code === 'ABORTED') throw sourceError;
          reports[i] = {
            pod: endpoint,
            ok: false,
            error: sourceError,
            scrapeSeconds: (this.options.clockMs() - started) / 1000,
          };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, unique.length) }, worker));
    return { results: toResults(values), pods: reports };
  }

  private async scrapeOne(
    endpoint: string,
    nowSeconds: number,
    signal: AbortSignal,
  ): Promise<{ podValues: PodValues; samples: number; problems: MetricsSourceError[] }> {
    const target = redactUrl(endpoint);
    const response = await boundedFetch(endpoint, {
      fetch: this.options.fetch,
      timeoutSeconds: this.options.timeoutSeconds,
      maxBytes: this.options.limits.maxBytes,
      signal,
      init: { headers: { accept: ACCEPT } },
      failure: 'SCRAPE_FAILED',
      timeout: 'SCRAPE_TIMEOUT',
      tooLarge: 'EXPOSITION_LIMIT',
      malformed: 'EXPOSITION_MALFORMED',
      target,
    });
    if (!response.ok) {
      throw new MetricsSourceError(
        'SCRAPE_FAILED',
        `${target}: HTTP ${response.status}${response.text.trim() === '' ? '' : `: ${clip(response.text.trim())}`}`,
        { target },
      );
    }
    let exposition: ReturnType<typeof parseExposition>;
    try {
      exposition = parseExposition(response.text, {
        format: formatFromContentType(response.contentType),
        limits: this.options.limits,
      });
    } catch (error) {
      if (error instanceof ExpositionError) throw error.withTarget(target);
      throw error;
    }
    const index = indexSamples(exposition, this.wanted);
    if (this.profile.presence.length > 0 && !this.profile.presence.some((name) => index.has(name))) {
      const seen = exposition.families
        .slice(0, 4)
        .map((f) => f.name)
        .join(', ');
      throw new MetricsSourceError(
        'ENGINE_METRICS_MISSING',
        `${target}: none of the ${this.profile.displayName} metrics (${this.profile.presence.join(', ')}) are served` +
          (seen === ''
            ? ' (the payload is empty)'
            : ` (it serves ${seen}${exposition.families.length > 4 ? ', ...' : ''})`) +
          '; check --engine / engine.kind, and that the engine exports metrics',
        { target },
      );
    }
    const { values, problems } = this.evaluate(endpoint, index, nowSeconds, target);
    return { podValues: values, samples: exposition.sampleCount, problems };
  }

  private evaluate(
    endpoint: string,
    index: Map<string, IndexedSeries>,
    nowSeconds: number,
    target: string,
  ): { values: PodValues; problems: MetricsSourceError[] } {
    const staleBeforeMs = this.options.clockMs() - this.options.staleAfterSeconds * 1000;
    const fresh = (samples: readonly Sample[], ref: SeriesRef) =>
      samples.filter(
        (s) => matches(ref, s.labels) && (s.timestampMs === undefined || s.timestampMs >= staleBeforeMs),
      );
    const problems: MetricsSourceError[] = [];
    /** First source with series on this pod, type-checked. */
    const pick = (
      sources: readonly SeriesRef[],
      suffix: string,
      types: ReadonlySet<MetricType>,
      as: string,
    ) => {
      for (const ref of sources) {
        const entry = index.get(ref.metric + suffix);
        if (entry === undefined) continue;
        if (!types.has(entry.type)) {
          // One mistyped series costs its reading on this pod, not the pod: the other signals stand.
          problems.push(
            new MetricsSourceError(
              'METRIC_TYPE_MISMATCH',
              `${target}: ${ref.metric + suffix} is a ${entry.type} (family ${entry.familyName}); the ${this.profile.displayName} profile reads it as ${as}, so it is ignored`,
              { target },
            ),
          );
          continue;
        }
        const samples = fresh(entry.samples, ref);
        if (samples.length > 0) return { ref, samples };
      }
      return undefined;
    };

    const previous = this.history.get(endpoint);
    const nextHistory = new Map<string, CounterWindow>();
    const windowFor = (key: string) => {
      let window = previous?.get(key);
      if (window === undefined) window = new CounterWindow(this.options.rateWindowSeconds);
      nextHistory.set(key, window);
      return window;
    };
    const rateOf = (sample: Sample) => {
      const window = windowFor(seriesKey(sample));
      window.push(nowSeconds, sample.value);
      return window.rate();
    };

    const out: PodValues = { perPod: new Map(), histograms: new Map(), info: new Map() };
    for (const [name, reading] of Object.entries(this.profile.readings) as [string, Reading][]) {
      switch (reading.kind) {
        case 'gauge': {
          const found = pick(reading.sources, '', GAUGE_TYPES, 'a gauge');
          if (found === undefined) break;
          const values = collapse(found.samples, reading.collapse).filter((v) => !Number.isNaN(v));
          if (values.length === 0) break;
          out.perPod.set(name, reduce(values, reading.perPod));
          break;
        }
        case 'rate': {
          const found = pick(reading.sources, '', COUNTER_TYPES, 'a counter');
          if (found === undefined) break;
          let total: number | undefined;
          for (const sample of found.samples) {
            const rate = rateOf(sample);
            if (rate !== undefined) total = (total ?? 0) + rate;
          }
          if (total !== undefined) out.perPod.set(name, total);
          break;
        }
        case 'histogram': {
          const found = pick(reading.sources, '_bucket', HISTOGRAM_TYPES, 'a histogram');
          if (found === undefined) break;
          const buckets = new Map<number, number>();
          for (const sample of found.samples) {
            const le = parseLe(sample.labels.le);
            const rate = rateOf(sample);
            if (le !== undefined && rate !== undefined) addBucket(buckets, le, rate);
          }
          const sumOf = (suffix: string) => {
            const entry = index.get(found.ref.metric + suffix);
            if (entry === undefined) return undefined;
            let total: number | undefined;
            for (const sample of fresh(entry.samples, found.ref)) {
              const rate = rateOf(sample);
              if (rate !== undefined) total = (total ?? 0) + rate;
            }
            return total;
          };
          const sum = sumOf('_sum');
          const count = sumOf('_count');
          if (buckets.size > 0 || sum !== undefined || count !== undefined) {
            out.histograms.set(name, { buckets, sum, count });
          }
          break;
        }
        case 'info': {
          const found = pick([reading.source], '', INFO_TYPES, 'an info gauge');
          if (found !== undefined)
            out.info.set(
              name,
              found.samples.map((s) => s.labels),
            );
          break;
        }
      }
    }
    this.history.set(endpoint, nextHistory);
    return { values: out, problems };
  }
}

function seriesKey(sample: Sample): string {
  const keys = Object.keys(sample.labels).sort();
  let key = sample.name;
  for (const k of keys) key += `\u0000${k}\u0001${sample.labels[k]}`;
  return key;
}

/** Max over series that differ only in the collapsed labels; one value per remaining label set. */
function collapse(samples: readonly Sample[], labels: readonly string[] | undefined): number[] {
  if (labels === undefined || labels.length === 0) return samples.map((s) => s.value);
  const groups = new Map<string, number>();
  for (const sample of samples) {
    const key = Object.keys(sample.labels)
      .filter((k) => !labels.includes(k))
      .sort()
      .map((k) => `${k}\u0001${sample.labels[k]}`)
      .join('\u0000');
    const previous = groups.get(key);
    if (previous === undefined || sample.value > previous || Number.isNaN(previous))
      groups.set(key, sample.value);
  }
  return [...groups.values()];
}

function reduce(values: readonly number[], how: 'sum' | 'mean' | 'max'): number {
  if (how === 'max') return Math.max(...values);
  let total = 0;
  for (const v of values) total += v;
  return how === 'sum' ? total : total / values.length;
}

function toResults(values: ReadonlyMap<string, PodValues>): ReadingResults {
  const pods = [...values.keys()];
  return {
    pods,
    perPod(name: string): PerPod {
      const out = new Map<string, number>();
      for (const [pod, v] of values) {
        const value = v.perPod.get(name);
        if (value !== undefined) out.set(pod, value);
      }
      return out;
    },
    histogram(name: string): HistogramRates | undefined {
      const buckets = new Map<number, number>();
      let sum: number | undefined;
      let count: number | undefined;
      let any = false;
      for (const v of values.values()) {
        const h = v.histograms.get(name);
        if (h === undefined) continue;
        any = true;
        for (const [le, rate] of h.buckets) addBucket(buckets, le, rate);
        if (h.sum !== undefined) sum = (sum ?? 0) + h.sum;
        if (h.count !== undefined) count = (count ?? 0) + h.count;
      }
      if (!any) return undefined;
      return { buckets: bucketsFromMap(buckets), sumPerSecond: sum, countPerSecond: count };
    },
    info(name: string) {
      const out = new Map<string, readonly Labels[]>();
      for (const [pod, v] of values) {
        const labels = v.info.get(name);
        if (labels !== undefined) out.set(pod, labels);
      }
      return out;
    },
  };
}

function clip(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}
