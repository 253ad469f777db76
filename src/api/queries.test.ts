import { describe, expect, it } from 'vitest';
import { decision, sampleStore } from '../../test/api-fixtures.ts';
import { InMemoryDecisionStore } from './decision-store.ts';
import { parseLabelSelector, selectorMatches } from './label-selector.ts';
import {
  apiGroupList,
  customDiscovery,
  externalDiscovery,
  formatTimestamp,
  scalerLabels,
} from './payloads.ts';
import { queryCustomMetric, queryExternalMetric, queryKeda, selectScalers } from './queries.ts';
import { ApiStatusError } from './status.ts';

const NAME = 'tokenscaler.dev/name';

function statusOf(run: () => unknown): { code: number; reason: string; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiStatusError)
      return { code: error.httpStatus, reason: error.reason, message: error.message };
    throw error;
  }
  throw new Error('expected an ApiStatusError');
}

describe('discovery documents', () => {
  it('lists the four metrics of DESIGN.md for external.metrics.k8s.io/v1beta1', () => {
    expect(externalDiscovery()).toEqual({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'external.metrics.k8s.io/v1beta1',
      resources: [
        'tokenscaler_desired_replicas',
        'tokenscaler_demand_tokens',
        'tokenscaler_inflight_tokens',
        'tokenscaler_tokens_per_replica',
      ].map((name) => ({
        name,
        singularName: '',
        namespaced: true,
        kind: 'ExternalMetricValueList',
        verbs: ['get'],
      })),
    });
  });

  it('lists TokenScaler object metrics for custom.metrics.k8s.io/v1beta2, all namespaced', () => {
    const list = customDiscovery();
    expect(list.groupVersion).toBe('custom.metrics.k8s.io/v1beta2');
    expect(list.resources.map((r) => r.name)).toEqual([
      'tokenscalers.tokenscaler.dev/tokenscaler_desired_replicas',
      'tokenscalers.tokenscaler.dev/tokenscaler_demand_tokens',
      'tokenscalers.tokenscaler.dev/tokenscaler_inflight_tokens',
      'tokenscalers.tokenscaler.dev/tokenscaler_tokens_per_replica',
    ]);
    expect(list.resources.every((r) => r.namespaced && r.kind === 'MetricValueList')).toBe(true);
  });

  it('serves both groups in the legacy APIGroupList', () => {
    expect(apiGroupList().groups.map((g) => g.preferredVersion.groupVersion)).toEqual([
      'external.metrics.k8s.io/v1beta1',
      'custom.metrics.k8s.io/v1beta2',
    ]);
  });

  it('formats metav1.Time with second precision in UTC', () => {
    expect(formatTimestamp(1_787_306_400.9)).toBe('2026-08-21T10:00:00Z');
  });
});

describe('queryExternalMetric', () => {
  const store = sampleStore();

  it('serves one labelled item for the selected scaler', () => {
    expect(
      queryExternalMetric(store, 'inference', 'tokenscaler_desired_replicas', `${NAME}=llama-70b`),
    ).toEqual({
      kind: 'ExternalMetricValueList',
      apiVersion: 'external.metrics.k8s.io/v1beta1',
      metadata: {},
      items: [
        {
          metricName: 'tokenscaler_desired_replicas',
          metricLabels: { [NAME]: 'llama-70b' },
          timestamp: '2026-08-21T10:00:00Z',
          value: '3',
        },
      ],
    });
  });

  it('matches metric names case-insensitively and answers with the canonical name', () => {
    const list = queryExternalMetric(store, 'inference', 'TokenScaler_Desired_Replicas', `${NAME}=llama-70b`);
    expect(list.items[0]?.metricName).toBe('tokenscaler_desired_replicas');
  });

  it('emits canonical milli quantities, never float artefacts (1.1 x 3 -> 3300m)', () => {
    const list = queryExternalMetric(store, 'inference', 'tokenscaler_demand_tokens', `${NAME}=llama-8b`);
    expect(list.items[0]?.value).toBe('3300m');
  });

  it('carries the demand window on the windowed metric only', () => {
    const demand = queryExternalMetric(store, 'inference', 'tokenscaler_demand_tokens', `${NAME}=llama-70b`);
    const replicas = queryExternalMetric(
      store,
      'inference',
      'tokenscaler_desired_replicas',
      `${NAME}=llama-70b`,
    );
    expect(demand.items[0]?.window).toBe(300);
    expect(replicas.items[0] && 'window' in replicas.items[0]).toBe(false);
  });

  it('applies the full selector grammar across the namespace', () => {
    const list = queryExternalMetric(
      store,
      'inference',
      'tokenscaler_tokens_per_replica',
      `${NAME} in (llama-70b,llama-8b)`,
    );
    expect(list.items.map((item) => [item.metricLabels[NAME], item.value])).toEqual([
      ['llama-70b', '120000'],
      ['llama-8b', '500000'],
    ]);
    const others = queryExternalMetric(
      store,
      'inference',
      'tokenscaler_desired_replicas',
      `${NAME}!=new,${NAME}!=llama-8b`,
    );
    expect(others.items.map((item) => item.metricLabels[NAME])).toEqual(['llama-70b']);
  });

  it.each([
    {
      why: 'an unknown metric',
      args: ['inference', 'requests_per_second', `${NAME}=llama-70b`],
      code: 404,
      message: /could not find the metric requests_per_second .*served metrics: tokenscaler_desired_replicas/,
    },
    {
      why: 'a selector that matches no scaler',
      args: ['inference', 'tokenscaler_desired_replicas', `${NAME}=gone`],
      code: 404,
      message:
        /selector "tokenscaler.dev\/name=gone": no TokenScaler matches \(TokenScalers there: llama-70b, llama-8b, new\)/,
    },
    {
      why: 'a namespace without scalers',
      args: ['empty', 'tokenscaler_desired_replicas', undefined],
      code: 404,
      message: /there are none/,
    },
    {
      why: 'a scaler with no decision yet',
      args: ['inference', 'tokenscaler_desired_replicas', `${NAME}=new`],
      code: 503,
      message: /TokenScaler inference\/new has no decision yet/,
    },
    {
      why: 'a scaler whose figure is not measured',
      args: ['inference', 'tokenscaler_inflight_tokens', `${NAME}=llama-8b`],
      code: 503,
      message: /tokenscaler_inflight_tokens of TokenScaler inference\/llama-8b is not measured/,
    },
    {
      why: 'a selector that does not parse',
      args: ['inference', 'tokenscaler_desired_replicas', `${NAME}=`.concat('(')],
      code: 400,
      message: /^labelSelector: unable to parse requirement/,
    },
  ] as const)('answers $code for $why', ({ args, code, message }) => {
    const status = statusOf(() => queryExternalMetric(store, args[0], args[1], args[2]));
    expect(status.code).toBe(code);
    expect(status.message).toMatch(message);
  });

  it('never serves a partial sum: one matched scaler without a decision fails the whole list', () => {
    expect(
      statusOf(() => queryExternalMetric(store, 'inference', 'tokenscaler_desired_replicas', '')).code,
    ).toBe(503);
  });

  it('answers 500 without details when a decision holds a value that is not a quantity', () => {
    const broken = new InMemoryDecisionStore();
    broken.publish('ns', 'a', decision({ demandTokens: Number.NaN }));
    const status = statusOf(() => queryExternalMetric(broken, 'ns', 'tokenscaler_demand_tokens', ''));
    expect(status).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(status.message).not.toMatch(/NaN/);
  });
});

describe('queryCustomMetric', () => {
  const store = sampleStore();
  const base = { namespace: 'inference', resource: 'tokenscalers.tokenscaler.dev', name: 'llama-70b' };

  it('serves exactly one Object metric item describing the TokenScaler', () => {
    expect(queryCustomMetric(store, { ...base, metric: 'tokenscaler_demand_tokens' })).toEqual({
      kind: 'MetricValueList',
      apiVersion: 'custom.metrics.k8s.io/v1beta2',
      metadata: {},
      items: [
        {
          describedObject: {
            kind: 'TokenScaler',
            namespace: 'inference',
            name: 'llama-70b',
            apiVersion: 'tokenscaler.dev/v1alpha1',
          },
          metric: { name: 'tokenscaler_demand_tokens', selector: null },
          timestamp: '2026-08-21T10:00:00Z',
          windowSeconds: 300,
          value: '250000',
        },
      ],
    });
  });

  it('lists every matching scaler for the name "*"', () => {
    const list = queryCustomMetric(store, {
      ...base,
      name: '*',
      metric: 'tokenscaler_tokens_per_replica',
      labelSelector: `${NAME} notin (new)`,
    });
    expect(list.items.map((item) => item.describedObject.name)).toEqual(['llama-70b', 'llama-8b']);
  });

  it.each([
    {
      why: 'another resource',
      request: { resource: 'deployments.apps' },
      code: 404,
      message: /only tokenscalers/,
    },
    {
      why: 'an unknown scaler',
      request: { name: 'gone' },
      code: 404,
      message: /no TokenScaler inference\/gone/,
    },
    {
      why: 'an unknown metric',
      request: { metric: 'qps' },
      code: 404,
      message: /could not find the metric qps/,
    },
    {
      why: 'a metric selector that excludes the scaler',
      request: { metricLabelSelector: `${NAME}=other` },
      code: 404,
      message: /with the given selectors/,
    },
    { why: 'no decision yet', request: { name: 'new' }, code: 503, message: /no decision yet/ },
    {
      why: 'a bad metric selector',
      request: { metricLabelSelector: 'a in' },
      code: 400,
      message: /^metricLabelSelector:/,
    },
  ])('answers $code for $why', ({ request, code, message }) => {
    const status = statusOf(() =>
      queryCustomMetric(store, { ...base, metric: 'tokenscaler_desired_replicas', ...request }),
    );
    expect(status.code).toBe(code);
    expect(status.message).toMatch(message);
  });
});

describe('queryKeda', () => {
  const store = sampleStore();

  it('returns desiredReplicas and the demand figures, unmeasured ones as null', () => {
    expect(queryKeda(store, 'inference', 'llama-8b')).toEqual({
      namespace: 'inference',
      name: 'llama-8b',
      timestamp: '2026-08-21T10:00:00Z',
      desiredReplicas: 5,
      demandTokens: 3.3,
      inflightTokens: null,
      waitingTokens: 1000,
      tokensPerReplica: 500_000,
      requestTokensP95: 9000,
      bindingConstraint: 'kv-memory',
      reason: expect.stringContaining('kv-memory'),
      fits: true,
      metricsAvailable: true,
      fallbackActive: false,
      demandWindowSeconds: null,
    });
  });

  it.each([
    ['gone', 404],
    ['new', 503],
  ])('%s -> %d', (name, code) => {
    expect(statusOf(() => queryKeda(store, 'inference', name)).code).toBe(code);
  });
});

describe('selectScalers', () => {
  const store = sampleStore();
  const fullScan = (selector: string) =>
    store
      .list('inference')
      .filter((scaler) => selectorMatches(parseLabelSelector(selector), scalerLabels(scaler)))
      .map((scaler) => scaler.name);

  it.each([
    `${NAME}=llama-70b`,
    `${NAME}==llama-8b`,
    `${NAME} in (new,llama-70b,gone)`,
    `${NAME} in (llama-70b),${NAME}!=llama-70b`,
    `${NAME}!=new`,
    `!${NAME}`,
    '',
  ])('%j selects what a full scan selects', (selector) => {
    expect(selectScalers(store, 'inference', parseLabelSelector(selector)).map((s) => s.name)).toEqual(
      fullScan(selector),
    );
  });

  it('looks a pinned name up instead of scanning the namespace', () => {
    let listed = 0;
    const counting = {
      get: store.get.bind(store),
      list: (namespace?: string) => {
        listed += 1;
        return store.list(namespace);
      },
      synced: () => true,
    };
    selectScalers(counting, 'inference', parseLabelSelector(`${NAME}=llama-70b`));
    expect(listed).toBe(0);
    selectScalers(counting, 'inference', parseLabelSelector(`${NAME}!=llama-70b`));
    expect(listed).toBe(1);
  });
});
