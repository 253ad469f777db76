/**
 * @module The CustomResourceDefinition `tokenscalers.tokenscaler.dev`, generated from the zod schemas
 * so the API server and the controller validate the same thing (code-style anchors, principle 5).
 * `scripts/gen-crd.ts` writes it to charts/tokenscaler/crds/; a test fails when the file is stale.
 *
 * How the zod schema becomes a structural OpenAPI v3 schema:
 * - zod's JSON Schema (draft 2020-12, input side, so defaults show and defaulted fields are optional)
 *   is walked node by node; numeric `exclusiveMinimum: 0` becomes `minimum: 0, exclusiveMinimum:
 *   true` (OpenAPI 3.0); `additionalProperties: false` is dropped (the API server prunes unknown
 *   fields, and kubectl's strict field validation rejects them); a record of unknowns (a Hugging Face
 *   config.json) becomes `x-kubernetes-preserve-unknown-fields`. Any construct the converter does not
 *   know (anyOf, $ref, ...) stops generation, so a schema change cannot silently weaken the CRD.
 * - zod `.refine` rules (cross-field checks) have no JSON Schema form: each has a CEL rule in
 *   `CEL_RULES` with the same message. src/kube/crd.test.ts checks both accept and reject the same
 *   examples.
 * - Where zod checks something OpenAPI expresses differently (URLs, a regex with the `s` flag),
 *   `PATTERNS` gives the pattern, kept to the syntax RE2 and ECMAScript share.
 */
import { z } from 'zod';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { TOKENSCALER_GROUP, TOKENSCALER_KIND, TOKENSCALER_PLURAL, TOKENSCALER_VERSION } from './kube-api.ts';
import { tokenScalerStatusSchema } from './scaler-status.ts';

export type JsonSchema = Record<string, unknown>;

export interface CelRule {
  rule: string;
  message: string;
}

/** Cross-field rules, keyed by the dotted path of the object they sit on. Messages match the zod refines. */
export const CEL_RULES: Record<string, CelRule[]> = {
  spec: [
    { rule: 'self.minReplicas <= self.maxReplicas', message: 'minReplicas must not exceed maxReplicas' },
  ],
  'spec.model': [
    {
      rule: 'has(self.preset) != has(self.config)',
      message: 'set exactly one of model.preset or model.config',
    },
  ],
  'spec.accelerator': [
    {
      rule: 'has(self.preset) || has(self.memoryGiB)',
      message: 'set accelerator.preset or accelerator.memoryGiB',
    },
  ],
  'spec.metrics': [
    {
      rule: 'has(self.scrape) != has(self.prometheus)',
      message: 'set exactly one of metrics.scrape or metrics.prometheus',
    },
  ],
  'spec.metrics.scrape': [
    {
      rule: 'has(self.urls) != has(self.podSelector)',
      message: 'set exactly one of scrape.urls or scrape.podSelector',
    },
    { rule: '!has(self.podSelector) || has(self.port)', message: 'scrape.podSelector needs scrape.port' },
  ],
};

/**
 * URLs: zod asks for the http(s) protocol, the CRD for http(s) with a host (the same set in practice:
 * what the collectors can fetch). The selector regex carries
 * the `s` flag in zod; `[\s\S]` says the same in both regex dialects.
 */
const URL_PATTERN = '^https?://[^\\s/?#]+([/?#]\\S*)?$';
export const PATTERNS: Record<string, string> = {
  'spec.metrics.scrape.urls[]': URL_PATTERN,
  'spec.metrics.prometheus.url': URL_PATTERN,
  'spec.metrics.prometheus.selector': '^\\{[\\s\\S]*\\}$',
  'spec.metrics.scrape.path': '^/',
};

/** `kubectl explain` text for the fields a user sets. */
const DESCRIPTIONS: Record<string, string> = {
  spec: 'What to scale, on which model and GPUs, and where token metrics come from.',
  'spec.scaleTargetRef':
    'The workload to scale: anything with a /scale subresource (Deployment, StatefulSet, ...).',
  'spec.minReplicas': 'Fewest replicas, also while metrics are missing.',
  'spec.maxReplicas': 'Most replicas.',
  'spec.model':
    'The served model: a preset id (e.g. llama-3.1-70b) or a Hugging Face config.json (snake_case keys).',
  'spec.model.config': 'A Hugging Face config.json, as given.',
  'spec.model.weightsGiB': 'Whole-model weights in GiB; overrides parameters x weight dtype.',
  'spec.accelerator':
    'The GPUs of one replica: a preset id (e.g. h100-80gb) or memoryGiB per GPU, and the parallelism.',
  'spec.accelerator.memoryGiB': 'Memory of one GPU in GiB.',
  'spec.engine': 'The inference engine and its KV-cache settings.',
  'spec.engine.gpuMemoryUtilization':
    'Share of GPU memory the engine may use (vLLM --gpu-memory-utilization).',
  'spec.engine.reservedGiB': 'Per GPU: activations, non-torch memory and CUDA graphs.',
  'spec.metrics': 'Where token metrics come from: exactly one of scrape or prometheus.',
  'spec.metrics.scrape':
    'Scrape engine /metrics directly: fixed urls, or the ready pods matching podSelector on port.',
  'spec.metrics.prometheus':
    'Query a Prometheus server; selector holds the label matchers of the engine series.',
  'spec.target': 'Utilization targets.',
  'spec.target.kvCacheUtilization': "Share of one replica's KV capacity the fleet should run at.",
  'spec.demand': 'Demand estimate: the percentile of in-flight tokens over the window.',
  'spec.fallback':
    'What to do when metrics are missing: hold, then after afterSeconds run fallback replicas (never fewer than now, unless replicas is set).',
  'spec.behavior': 'Scale-down stabilization.',
  'spec.hpa': 'create: tokenscaler creates and owns an HPA that reads its external metric.',
  status: 'What the controller decided and why.',
};

export const PRINTER_COLUMNS = [
  {
    name: 'Target',
    type: 'string',
    jsonPath: '.spec.scaleTargetRef.name',
    description: 'The workload being scaled.',
  },
  { name: 'Min', type: 'integer', jsonPath: '.spec.minReplicas', description: 'minReplicas' },
  { name: 'Max', type: 'integer', jsonPath: '.spec.maxReplicas', description: 'maxReplicas' },
  {
    name: 'Desired',
    type: 'integer',
    jsonPath: '.status.desiredReplicas',
    description: 'Replicas the latest decision asks for.',
  },
  {
    name: 'Current',
    type: 'integer',
    jsonPath: '.status.currentReplicas',
    description: 'Replicas the target runs.',
  },
  {
    name: 'Demand',
    type: 'integer',
    jsonPath: '.status.demandTokens',
    description: 'Token demand (windowed percentile of tokens in flight).',
  },
  {
    name: 'Capacity',
    type: 'integer',
    jsonPath: '.status.tokensPerReplica',
    description: 'KV tokens one replica holds.',
  },
  {
    name: 'Bound',
    type: 'string',
    jsonPath: '.status.bindingConstraint',
    description: 'The constraint that set the replica count.',
  },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    priority: 1,
    description: 'Ready condition.',
  },
  {
    name: 'Metrics',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="MetricsAvailable")].status',
    priority: 1,
    description: 'MetricsAvailable condition.',
  },
  {
    name: 'Fits',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Fits")].status',
    priority: 1,
    description: 'Fits condition.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
] as const;

export class CrdGenerationError extends Error {
  readonly code = 'CRD_GENERATION';
}

/** The structural OpenAPI v3 schema of a zod schema; `path` keys CEL_RULES, PATTERNS and DESCRIPTIONS. */
export function openApiSchemaOf(schema: z.ZodType, path: string): JsonSchema {
  return convert(z.toJSONSchema(schema, { io: 'input' }) as JsonSchema, path);
}

/** The structural OpenAPI v3 schema of `spec`. */
export function specOpenApiSchema(): JsonSchema {
  return openApiSchemaOf(tokenScalerSpecSchema, 'spec');
}

export function statusOpenApiSchema(): JsonSchema {
  const schema = openApiSchemaOf(tokenScalerStatusSchema, 'status');
  const conditions = (schema.properties as Record<string, JsonSchema>).conditions as JsonSchema;
  conditions['x-kubernetes-list-type'] = 'map';
  conditions['x-kubernetes-list-map-keys'] = ['type'];
  return schema;
}

export function tokenScalerCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${TOKENSCALER_PLURAL}.${TOKENSCALER_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'tokenscaler', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: TOKENSCALER_GROUP,
      scope: 'Namespaced',
      names: {
        plural: TOKENSCALER_PLURAL,
        singular: 'tokenscaler',
        kind: TOKENSCALER_KIND,
        listKind: `${TOKENSCALER_KIND}List`,
        shortNames: ['tks'],
        categories: ['tokenscaler'],
      },
      versions: [
        {
          name: TOKENSCALER_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS.map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'TokenScaler scales an LLM inference workload on token demand against KV-cache capacity.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specOpenApiSchema(),
                status: statusOpenApiSchema(),
              },
            },
          },
        },
      ],
    },
  };
}

const DROPPED = new Set(['$schema', 'additionalProperties', 'propertyNames', 'format']);
const KEPT_NUMERIC = ['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems'] as const;

function convert(node: JsonSchema, path: string): JsonSchema {
  const known = new Set([
    ...DROPPED,
    ...KEPT_NUMERIC,
    'type',
    'properties',
    'required',
    'items',
    'enum',
    'default',
    'pattern',
    'exclusiveMinimum',
    'exclusiveMaximum',
    'description',
  ]);
  for (const key of Object.keys(node)) {
    if (!known.has(key))
      throw new CrdGenerationError(`${path}: the CRD generator does not translate "${key}"`);
  }
  const type = node.type;
  if (typeof type !== 'string')
    throw new CrdGenerationError(`${path}: every node needs one type (got ${JSON.stringify(type)})`);
  const out: JsonSchema = { type };
  const description =
    DESCRIPTIONS[path] ?? (typeof node.description === 'string' ? node.description : undefined);
  if (description !== undefined) out.description = description;
  if (node.default !== undefined) out.default = node.default;
  if (node.enum !== undefined) out.enum = node.enum;
  for (const key of KEPT_NUMERIC) if (node[key] !== undefined) out[key] = node[key];
  if (typeof node.exclusiveMinimum === 'number') {
    out.minimum = node.exclusiveMinimum;
    out.exclusiveMinimum = true;
  }
  if (typeof node.exclusiveMaximum === 'number') {
    out.maximum = node.exclusiveMaximum;
    out.exclusiveMaximum = true;
  }
  // A date-time is checked by its format; zod's equivalent regex would only add noise.
  const pattern =
    PATTERNS[path] ??
    (typeof node.pattern === 'string' && node.format !== 'date-time' ? node.pattern : undefined);
  if (pattern !== undefined) out.pattern = pattern;
  else if (node.format === 'uri')
    throw new CrdGenerationError(`${path}: a URL field needs an entry in PATTERNS`);
  if (node.format === 'date-time') out.format = 'date-time';

  if (type === 'object') {
    const properties = node.properties as Record<string, JsonSchema> | undefined;
    if (properties !== undefined) {
      out.properties = Object.fromEntries(
        Object.entries(properties).map(([key, child]) => [key, convert(child, `${path}.${key}`)]),
      );
      if (Array.isArray(node.required) && node.required.length > 0) out.required = node.required;
    } else {
      const values = node.additionalProperties;
      if (
        values === undefined ||
        (typeof values === 'object' && values !== null && Object.keys(values).length === 0)
      ) {
        out['x-kubernetes-preserve-unknown-fields'] = true;
      } else if (typeof values === 'object' && values !== null) {
        out.additionalProperties = convert(values as JsonSchema, `${path}{}`);
      } else {
        throw new CrdGenerationError(`${path}: an object needs properties or a value schema`);
      }
    }
    const rules = CEL_RULES[path];
    if (rules !== undefined) out['x-kubernetes-validations'] = rules.map((r) => ({ ...r }));
  } else if (type === 'array') {
    if (node.items === undefined || Array.isArray(node.items))
      throw new CrdGenerationError(`${path}: an array needs one items schema`);
    out.items = convert(node.items as JsonSchema, `${path}[]`);
  }
  return out;
}
