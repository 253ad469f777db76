/**
 * @module Pod discovery for `metrics.scrape.podSelector`: the ready pods of the scaler's namespace
 * that match the selector, as `scheme://podIP:port/path` URLs for the scrape collector
 * (src/sources/observation-source.ts `EndpointResolver`). Pods that are not Ready (still loading
 * weights) or terminating are left out: they take no traffic, and a half-started engine would only
 * add scrape errors.
 *
 * The sources' resolver receives the scrape spec alone, not the namespace. `resolverFor(scaler)` is
 * the clean form (one resolver per scaler). `resolve` serves runtimes that hand one resolver to every
 * scaler: it finds the namespace from the scrape spec object the feed produced (the reconcile loop
 * passes that very object down), and fails with ENDPOINTS_UNRESOLVED for one it does not know.
 */
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import { MetricsSourceError } from '../sources/errors.ts';
import type { EndpointResolver } from '../sources/observation-source.ts';
import { type KubeApi, selectorOfMatchLabels } from './kube-api.ts';
import { isServing } from './replica-reader.ts';

type ScrapeSpec = Parameters<EndpointResolver>[0];

export class PodEndpointResolver {
  readonly #api: KubeApi;
  readonly #namespaces = new WeakMap<object, string>();

  constructor(api: KubeApi) {
    this.#api = api;
  }

  /** Remembers which namespace a scaler's scrape spec belongs to (called by the cluster runtime). */
  register(scaler: ScalerDefinition): void {
    const scrape = scaler.spec.metrics.scrape;
    if (scrape !== undefined) this.#namespaces.set(scrape, scaler.namespace);
  }

  resolverFor(scaler: ScalerDefinition): EndpointResolver {
    return (scrape, signal) => this.#resolveIn(scaler.namespace, scrape, signal);
  }

  readonly resolve: EndpointResolver = (scrape, signal) => {
    const namespace = this.#namespaces.get(scrape);
    if (namespace === undefined)
      return Promise.reject(
        new MetricsSourceError(
          'ENDPOINTS_UNRESOLVED',
          'metrics.scrape.podSelector: the scaler of this scrape spec is unknown to pod discovery',
        ),
      );
    return this.#resolveIn(namespace, scrape, signal);
  };

  async #resolveIn(namespace: string, scrape: ScrapeSpec, signal: AbortSignal): Promise<readonly string[]> {
    if (scrape.urls !== undefined) return scrape.urls;
    if (scrape.podSelector === undefined || scrape.port === undefined)
      throw new MetricsSourceError(
        'ENDPOINTS_UNRESOLVED',
        'metrics.scrape needs urls, or podSelector with port',
      );
    const selector = selectorOfMatchLabels(scrape.podSelector.matchLabels ?? {});
    const pods = await this.#api.listPods(namespace, selector, signal);
    return pods
      .filter(isServing)
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((pod) => {
        const host = (pod.ip as string).includes(':') ? `[${pod.ip}]` : (pod.ip as string);
        return `${scrape.scheme}://${host}:${scrape.port}${scrape.path}`;
      });
  }
}
