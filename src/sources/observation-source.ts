/**
 * @module The one entry point the reconcile loop calls: `createObservationSource(spec, deps)` picks the
 * path (direct scrape or PromQL) from `spec.metrics` and the engine profile from `spec.engine.kind`,
 * and `observe(now, signal)` returns one fleet Observation per tick.
 *
 * Failures are values, not zeros: `observe` resolves to `{ ok: false, error }` with a coded
 * MetricsSourceError (the decision then holds, and falls back after `fallback.afterSeconds`). It
 * rejects only on programming errors. Pods that fail while others answer are listed in `pods` and
 * `warnings`; the observation then covers the pods that answered (`podsReporting` says how many).
 *
 * One source instance per scaler: the scrape path keeps counter history between ticks.
 */
import type { TokenScalerSpec } from '../config/tokenscaler-spec.ts';
import type { Observation } from '../core/observation.ts';
import { InvalidInputError } from '../errors.ts';
import type { EngineProfile } from './engine-profile.ts';
import { engineProfile } from './engines/registry.ts';
import { asSourceError, MetricsSourceError } from './errors.ts';
import { DEFAULT_EXPOSITION_LIMITS, type ExpositionLimits } from './exposition-parser.ts';
import type { FetchLike } from './http-fetch.ts';
import { PrometheusClient } from './prometheus-client.ts';
import { PrometheusCollector } from './prometheus-collector.ts';
import type { DerivedObservation } from './readings.ts';
import { type PodReport, ScrapeCollector } from './scrape-collector.ts';

export type { PodReport } from './scrape-collector.ts';

export type ScrapeSpec = NonNullable<TokenScalerSpec['metrics']['scrape']>;

/** What the source needs from a TokenScaler spec (the CLI builds the same shape from flags). */
export interface ObservationSpec {
  readonly engine: Pick<TokenScalerSpec['engine'], 'kind'>;
  readonly metrics: TokenScalerSpec['metrics'];
}

/**
 * Turns `spec.metrics.scrape` into endpoint URLs. The default handles `urls`; pod discovery for
 * `podSelector` (list ready pods, build `scheme://podIP:port/path`) is plugged in by the controller.
 */
export type EndpointResolver = (scrape: ScrapeSpec, signal: AbortSignal) => Promise<readonly string[]>;

export interface ObservationSourceDeps {
  fetch: FetchLike;
  /** Wall clock, Unix milliseconds. */
  clockMs: () => number;
  resolveEndpoints?: EndpointResolver;
  /**
   * Window for rates and histogram percentiles on the scrape path (the PromQL path uses
   * spec.metrics.prometheus.rateWindowSeconds). Default 120 s, the PromQL default.
   */
  scrapeRateWindowSeconds?: number;
  scrapeConcurrency?: number;
  limits?: Partial<ExpositionLimits>;
  /** Series older than this are stale (default 150 s: above the 60 s scrape interval many Prometheus setups use, x2.5). */
  staleAfterSeconds?: number;
  /** Label that identifies a pod in Prometheus (default `instance`). */
  podLabel?: string;
  /** Headers for Prometheus requests (e.g. Authorization). */
  prometheusHeaders?: Readonly<Record<string, string>>;
}

export type ObservationResult =
  | {
      readonly ok: true;
      readonly observation: Observation;
      readonly pods: readonly PodReport[];
      readonly warnings: readonly string[];
    }
  | {
      readonly ok: false;
      readonly error: MetricsSourceError;
      readonly pods: readonly PodReport[];
    };

export interface ObservationSource {
  readonly path: 'scrape' | 'prometheus';
  readonly profile: EngineProfile;
  observe(nowSeconds: number, signal: AbortSignal): Promise<ObservationResult>;
}

export const DEFAULT_SCRAPE_RATE_WINDOW_SECONDS = 120;
export const DEFAULT_STALE_AFTER_SECONDS = 150;
export const DEFAULT_SCRAPE_CONCURRENCY = 32;

const defaultResolver: EndpointResolver = async (scrape) => {
  if (scrape.urls !== undefined) return scrape.urls;
  throw new MetricsSourceError(
    'ENDPOINTS_UNRESOLVED',
    'metrics.scrape.podSelector needs pod discovery, which runs inside the controller; outside it give metrics.scrape.urls',
  );
};

/** Throws InvalidInputError for a spec no source can serve (generic without Prometheus). */
export function createObservationSource(
  spec: ObservationSpec,
  deps: ObservationSourceDeps,
): ObservationSource {
  const profile = engineProfile(spec.engine.kind);
  const staleAfterSeconds = deps.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS;
  const { scrape, prometheus } = spec.metrics;
  if (scrape !== undefined) {
    if (!profile.supportsScrape) {
      throw new InvalidInputError(
        'engine.kind',
        `${JSON.stringify(profile.kind)} reads user-supplied PromQL and needs metrics.prometheus (with queries), not metrics.scrape`,
      );
    }
    const collector = new ScrapeCollector(profile, {
      fetch: deps.fetch,
      clockMs: deps.clockMs,
      timeoutSeconds: scrape.timeoutSeconds,
      rateWindowSeconds: deps.scrapeRateWindowSeconds ?? DEFAULT_SCRAPE_RATE_WINDOW_SECONDS,
      staleAfterSeconds,
      concurrency: deps.scrapeConcurrency ?? DEFAULT_SCRAPE_CONCURRENCY,
      limits: { ...DEFAULT_EXPOSITION_LIMITS, ...deps.limits },
    });
    const resolve = deps.resolveEndpoints ?? defaultResolver;
    return {
      path: 'scrape',
      profile,
      observe: (nowSeconds, signal) =>
        settle(async () => {
          let endpoints: readonly string[];
          try {
            endpoints = await resolve(scrape, signal);
          } catch (error) {
            throw asSourceError(error, 'ENDPOINTS_UNRESOLVED');
          }
          if (endpoints.length === 0) {
            throw new MetricsSourceError(
              'NO_PODS_REPORTING',
              'no endpoints to scrape (the pod selector matched no ready pod)',
            );
          }
          const outcome = await collector.collect(endpoints, nowSeconds, signal);
          const failed = outcome.pods.filter((p) => !p.ok);
          if (outcome.results.pods.length === 0) throw allFailed(profile, failed);
          return {
            observation: finish(nowSeconds, outcome.results.pods.length, profile.derive(outcome.results)),
            pods: outcome.pods,
            warnings: [
              ...failed.map((p) => p.error?.message ?? `${p.pod}: failed`),
              ...outcome.pods.flatMap((p) => (p.problems ?? []).map((e) => e.message)),
            ],
          };
        }),
    };
  }
  if (prometheus === undefined) {
    throw new InvalidInputError('metrics', 'set exactly one of metrics.scrape or metrics.prometheus');
  }
  if (profile.kind === 'generic' && Object.keys(prometheus.queries ?? {}).length === 0) {
    throw new InvalidInputError(
      'metrics.prometheus.queries',
      'engine kind "generic" needs at least one PromQL query per signal (e.g. inflightTokens)',
    );
  }
  const client = new PrometheusClient({
    url: prometheus.url,
    fetch: deps.fetch,
    timeoutSeconds: prometheus.timeoutSeconds,
    ...(deps.prometheusHeaders === undefined ? {} : { headers: deps.prometheusHeaders }),
  });
  const collector = new PrometheusCollector(profile, {
    client,
    selector: prometheus.selector,
    rateWindowSeconds: prometheus.rateWindowSeconds,
    staleAfterSeconds,
    podLabel: deps.podLabel ?? 'instance',
    queries: prometheus.queries,
  });
  return {
    path: 'prometheus',
    profile,
    observe: (nowSeconds, signal) =>
      settle(async () => {
        const outcome = await collector.collect(signal);
        const derived = mergeOverrides(profile.derive(outcome.results), outcome.overrides);
        const measuredAnything = Object.keys(derived.provenance).length > 0;
        if (outcome.results.pods.length === 0 && !measuredAnything) {
          throw new MetricsSourceError(
            'NO_PODS_REPORTING',
            profile.presence.length === 0
              ? `no query returned data for ${prometheus.selector}`
              : `no series of ${profile.presence.join(', ')} matched ${prometheus.selector} in the last ${staleAfterSeconds} s; check the selector and engine kind`,
          );
        }
        return {
          observation: finish(nowSeconds, outcome.results.pods.length, derived),
          pods: outcome.pods,
          warnings: outcome.warnings,
        };
      }),
  };
}

async function settle(
  run: () => Promise<{ observation: Observation; pods: readonly PodReport[]; warnings: readonly string[] }>,
): Promise<ObservationResult> {
  try {
    return { ok: true, ...(await run()) };
  } catch (error) {
    // Collection failures are results; anything else is a bug and should surface as one.
    if (error instanceof MetricsSourceError) return { ok: false, error, pods: [] };
    throw error;
  }
}

function finish(nowSeconds: number, pods: number, derived: DerivedObservation): Observation {
  return { observedAtSeconds: nowSeconds, podsReporting: pods, ...derived };
}

function mergeOverrides(base: DerivedObservation, overrides: DerivedObservation): DerivedObservation {
  const merged: DerivedObservation = {
    ...base,
    ...overrides,
    provenance: { ...base.provenance, ...overrides.provenance },
  };
  if (overrides.requestInputTokens !== undefined) {
    merged.requestInputTokens = { ...base.requestInputTokens, ...overrides.requestInputTokens };
  }
  if (overrides.requestOutputTokens !== undefined) {
    merged.requestOutputTokens = { ...base.requestOutputTokens, ...overrides.requestOutputTokens };
  }
  return merged;
}

function allFailed(profile: EngineProfile, failed: readonly PodReport[]): MetricsSourceError {
  const errors = failed.flatMap((p) => (p.error === undefined ? [] : [p.error]));
  if (errors.length === 1) return errors[0] as MetricsSourceError;
  const shown = errors.slice(0, 3).map((e) => e.message);
  const more = errors.length > 3 ? `; and ${errors.length - 3} more` : '';
  return new MetricsSourceError(
    'NO_PODS_REPORTING',
    `no endpoint reported ${profile.displayName} metrics (${failed.length} failed): ${shown.join('; ')}${more}`,
    { cause: new AggregateError(errors, 'every endpoint failed') },
  );
}
