import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { validateStructural } from '../../test/support/fake-apiserver-validation.ts';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import {
  CEL_RULES,
  CrdGenerationError,
  openApiSchemaOf,
  PRINTER_COLUMNS,
  specOpenApiSchema,
  statusOpenApiSchema,
  tokenScalerCrd,
} from './crd.ts';
import { crdYaml } from './crd-yaml.ts';

const base = {
  scaleTargetRef: { name: 'vllm-llama-70b' },
  maxReplicas: 16,
  model: { preset: 'llama-3.1-70b' },
  accelerator: { preset: 'h100-80gb', tensorParallel: 4 },
  engine: { kind: 'vllm' },
  metrics: { prometheus: { url: 'http://prometheus:9090', selector: '{namespace="inference",app="vllm"}' } },
};

type Spec = Record<string, unknown>;
const withField = (patch: (s: Spec) => void): Spec => {
  const copy = structuredClone(base) as Spec;
  patch(copy);
  return copy;
};

const VALID: Array<[string, Spec]> = [
  ['the DESIGN.md example with defaults left out', base],
  [
    'every optional field set',
    {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'sglang' },
      minReplicas: 2,
      maxReplicas: 2,
      model: {
        config: { num_hidden_layers: 32, num_key_value_heads: 8, head_dim: 128 },
        weightsGiB: 15,
        weightDtype: 'fp8',
        maxContextTokens: 32768,
      },
      accelerator: { memoryGiB: 80, tensorParallel: 2, pipelineParallel: 2 },
      engine: { kind: 'sglang', gpuMemoryUtilization: 1, blockSize: 1, kvCacheDtype: 'fp8', reservedGiB: 0 },
      metrics: {
        scrape: {
          podSelector: { matchLabels: { app: 'sglang' } },
          port: 30000,
          path: '/metrics',
          scheme: 'https',
          timeoutSeconds: 60,
        },
      },
      target: {
        kvCacheUtilization: 0.7,
        prefillTokensPerSecondPerReplica: 40000,
        prefillUtilization: 0.9,
        queueToleranceTokens: 5000,
      },
      demand: { percentile: 99.5, windowSeconds: 600 },
      fallback: { afterSeconds: 60, replicas: 3 },
      behavior: { scaleDownStabilizationSeconds: 0 },
      hpa: { create: true },
    },
  ],
  [
    'scrape urls',
    withField((s) => {
      s.metrics = {
        scrape: { urls: ['http://10.0.0.5:8000/metrics', 'https://vllm-1.inference.svc:8443/metrics'] },
      };
    }),
  ],
  [
    'a multi-line PromQL selector',
    withField((s) => {
      s.metrics = { prometheus: { url: 'https://prom.example:9090/prefix', selector: '{\n  app="vllm"\n}' } };
    }),
  ],
  [
    'generic engine with queries',
    withField((s) => {
      s.engine = { kind: 'generic' };
      s.metrics = {
        prometheus: { url: 'http://p:9090', selector: '{a="b"}', queries: { inflightTokens: 'sum(x)' } },
      };
    }),
  ],
  [
    'minReplicas equal to maxReplicas',
    withField((s) => {
      s.minReplicas = 16;
    }),
  ],
];

const INVALID: Array<[string, Spec, RegExp]> = [
  [
    'minReplicas above maxReplicas',
    withField((s) => {
      s.minReplicas = 17;
    }),
    /minReplicas must not exceed maxReplicas/,
  ],
  [
    'no maxReplicas',
    withField((s) => {
      delete s.maxReplicas;
    }),
    /maxReplicas/,
  ],
  [
    'maxReplicas 0',
    withField((s) => {
      s.maxReplicas = 0;
    }),
    /maxReplicas/,
  ],
  [
    'fractional replicas',
    withField((s) => {
      s.maxReplicas = 2.5;
    }),
    /maxReplicas/,
  ],
  [
    'both model preset and config',
    withField((s) => {
      s.model = { preset: 'llama-3.1-8b', config: { a: 1 } };
    }),
    /exactly one of model.preset or model.config/,
  ],
  [
    'neither model preset nor config',
    withField((s) => {
      s.model = { weightsGiB: 10 };
    }),
    /exactly one of model.preset or model.config/,
  ],
  [
    'accelerator without preset or memory',
    withField((s) => {
      s.accelerator = { tensorParallel: 2 };
    }),
    /accelerator.preset or accelerator.memoryGiB/,
  ],
  [
    'both metrics sources',
    withField((s) => {
      (s.metrics as Spec).scrape = { urls: ['http://a:1/metrics'] };
    }),
    /exactly one of metrics.scrape or metrics.prometheus/,
  ],
  [
    'no metrics source',
    withField((s) => {
      s.metrics = {};
    }),
    /exactly one of metrics.scrape or metrics.prometheus/,
  ],
  [
    'scrape with urls and podSelector',
    withField((s) => {
      s.metrics = { scrape: { urls: ['http://a:1/m'], podSelector: { matchLabels: { a: 'b' } }, port: 1 } };
    }),
    /exactly one of scrape.urls or scrape.podSelector/,
  ],
  [
    'podSelector without port',
    withField((s) => {
      s.metrics = { scrape: { podSelector: { matchLabels: { a: 'b' } } } };
    }),
    /podSelector needs scrape.port/,
  ],
  [
    'empty urls list',
    withField((s) => {
      s.metrics = { scrape: { urls: [] } };
    }),
    /urls/,
  ],
  [
    'a URL that is not one',
    withField((s) => {
      s.metrics = { scrape: { urls: ['not a url'] } };
    }),
    /urls/,
  ],
  [
    'a selector without braces',
    withField((s) => {
      (s.metrics as { prometheus: Spec }).prometheus.selector = 'app="vllm"';
    }),
    /selector/,
  ],
  [
    'an unknown engine',
    withField((s) => {
      s.engine = { kind: 'llamacpp' };
    }),
    /engine.kind|kind/,
  ],
  [
    'utilization above 1',
    withField((s) => {
      s.engine = { kind: 'vllm', gpuMemoryUtilization: 1.2 };
    }),
    /gpuMemoryUtilization/,
  ],
  [
    'utilization 0',
    withField((s) => {
      s.target = { kvCacheUtilization: 0 };
    }),
    /kvCacheUtilization/,
  ],
  [
    'a negative reserve',
    withField((s) => {
      s.engine = { kind: 'vllm', reservedGiB: -1 };
    }),
    /reservedGiB/,
  ],
  [
    'percentile above 100',
    withField((s) => {
      s.demand = { percentile: 101 };
    }),
    /percentile/,
  ],
  [
    'port out of range',
    withField((s) => {
      s.metrics = { scrape: { podSelector: {}, port: 70000 } };
    }),
    /port/,
  ],
  [
    'a path without a slash',
    withField((s) => {
      s.metrics = { scrape: { urls: ['http://a:1/m'], path: 'metrics' } };
    }),
    /path/,
  ],
  [
    'a misspelt field',
    withField((s) => {
      s.maxReplica = 3;
    }),
    /maxReplica/,
  ],
  [
    'a misspelt nested field',
    withField((s) => {
      s.engine = { kind: 'vllm', blocksize: 16 };
    }),
    /blocksize/,
  ],
  [
    'a string where a number goes',
    withField((s) => {
      s.maxReplicas = '16';
    }),
    /maxReplicas/,
  ],
  [
    'an empty target name',
    withField((s) => {
      s.scaleTargetRef = { name: '' };
    }),
    /name/,
  ],
];

/** URLs that are not http(s) with a host: both schemas reject them (zod by protocol, the CRD by pattern). */
const NOT_HTTP_URLS: Array<[string, Spec]> = [
  [
    'a host:port without scheme',
    withField((s) => {
      (s.metrics as { prometheus: Spec }).prometheus.url = 'prometheus:9090';
    }),
  ],
  [
    'a non-HTTP scheme',
    withField((s) => {
      s.metrics = { scrape: { urls: ['ftp://a/metrics'] } };
    }),
  ],
];

describe('CRD schema and zod schema agree', () => {
  const schema = specOpenApiSchema();

  it.each(VALID)('both accept %s, and the API server defaults equal zod defaults', (_name, spec) => {
    const zod = tokenScalerSpecSchema.safeParse(spec);
    expect(zod.success, zod.success ? '' : z.prettifyError(zod.error)).toBe(true);
    const crd = validateStructural(schema, spec, 'spec');
    expect(crd.errors).toEqual([]);
    expect(crd.value).toEqual(zod.data);
  });

  it.each(INVALID)('both reject %s', (_name, spec, message) => {
    const zod = tokenScalerSpecSchema.safeParse(spec);
    expect(zod.success).toBe(false);
    const crd = validateStructural(schema, spec, 'spec');
    expect(crd.errors.length).toBeGreaterThan(0);
    expect(crd.errors.join('; ')).toMatch(message);
    if (!zod.success)
      expect(`${zod.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`).toMatch(
        message,
      );
  });

  it.each(NOT_HTTP_URLS)('both reject %s', (_name, spec) => {
    expect(tokenScalerSpecSchema.safeParse(spec).success).toBe(false);
    expect(validateStructural(schema, spec, 'spec').errors.join()).toMatch(/should match/);
  });

  it('has a CEL rule for every zod refine, each on a node that exists', () => {
    const paths = Object.keys(CEL_RULES);
    const nodeAt = (path: string) =>
      path
        .split('.')
        .slice(1)
        .reduce<Record<string, unknown> | undefined>(
          (node, key) => (node?.properties as Record<string, Record<string, unknown>> | undefined)?.[key],
          schema,
        );
    for (const path of paths) expect(nodeAt(path)?.['x-kubernetes-validations'], path).toBeDefined();
    const source = readFileSync(join(import.meta.dirname, '..', 'config', 'tokenscaler-spec.ts'), 'utf8');
    const refines = source.match(/\.refine\(/g)?.length ?? 0;
    expect(Object.values(CEL_RULES).flat()).toHaveLength(refines);
  });
});

describe('the generated CRD', () => {
  const crd = tokenScalerCrd() as {
    spec: { names: Record<string, unknown>; versions: Array<Record<string, unknown>> };
  };

  it('is the file the chart ships (run npm run gen:crd when this fails)', () => {
    const file = join(
      import.meta.dirname,
      '..',
      '..',
      'charts',
      'tokenscaler',
      'crds',
      'tokenscalers.tokenscaler.dev.yaml',
    );
    expect(readFileSync(file, 'utf8')).toBe(crdYaml());
    expect(parse(readFileSync(file, 'utf8'))).toEqual(crd);
  });

  it('names the resource as DESIGN.md does, with the status subresource and the printer columns', () => {
    expect(crd.spec.names).toMatchObject({
      plural: 'tokenscalers',
      kind: 'TokenScaler',
      shortNames: ['tks'],
      categories: ['tokenscaler'],
    });
    const version = crd.spec.versions[0] as Record<string, unknown>;
    expect(version.name).toBe('v1alpha1');
    expect(version.subresources).toEqual({ status: {} });
    expect(
      (version.additionalPrinterColumns as Array<{ name: string; priority?: number }>)
        .filter((c) => !c.priority)
        .map((c) => c.name.toUpperCase()),
    ).toEqual(['TARGET', 'MIN', 'MAX', 'DESIRED', 'CURRENT', 'DEMAND', 'CAPACITY', 'BOUND', 'AGE']);
  });

  it('is structural: every node has a type, no node mixes properties with additionalProperties', () => {
    const walk = (node: Record<string, unknown>, path: string) => {
      expect(typeof node.type, path).toBe('string');
      expect(node.properties !== undefined && node.additionalProperties !== undefined, path).toBe(false);
      for (const key of ['anyOf', 'oneOf', 'allOf', '$ref', 'not'])
        expect(node[key], `${path}.${key}`).toBeUndefined();
      for (const [k, child] of Object.entries(
        (node.properties as Record<string, Record<string, unknown>>) ?? {},
      ))
        walk(child, `${path}.${k}`);
      if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
      if (node.additionalProperties) walk(node.additionalProperties as Record<string, unknown>, `${path}{}`);
    };
    walk(specOpenApiSchema(), 'spec');
    walk(statusOpenApiSchema(), 'status');
  });

  it('every printer column reads a field the schema declares', () => {
    const spec = specOpenApiSchema();
    const status = statusOpenApiSchema();
    for (const column of PRINTER_COLUMNS) {
      const [root, ...rest] = column.jsonPath
        .replace(/\[\?\(.*\)\]/, '')
        .split('.')
        .filter((p) => p !== '');
      if (root === 'metadata') continue;
      let node: Record<string, unknown> | undefined = root === 'spec' ? spec : status;
      for (const key of rest) {
        node =
          (node?.properties as Record<string, Record<string, unknown>> | undefined)?.[key] ??
          (node?.items as Record<string, unknown> | undefined)?.properties?.[key as never];
      }
      expect(node, column.jsonPath).toBeDefined();
    }
  });
});

describe('the converter refuses what it cannot translate', () => {
  it.each([
    ['a union', z.object({ a: z.union([z.string(), z.number()]) })],
    ['a URL without a pattern', z.object({ a: z.url() })],
    ['a nullable field', z.object({ a: z.string().nullable() })],
  ])('stops at %s instead of emitting a weaker schema', (_name, schema) => {
    expect(() => openApiSchemaOf(schema, 'probe')).toThrow(CrdGenerationError);
  });
});
