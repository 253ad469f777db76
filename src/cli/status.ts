/**
 * @module `tokenscaler status` and `kubectl tokenscaler status [name] [-n ns] [-A] [-o json|yaml]`:
 * what each TokenScaler decided and why, read from the cluster (the status the controller writes and
 * the HPA it feeds). Readable at a glance: one block per scaler with demand, capacity and how it was
 * derived, replicas, the binding constraint and its reason, conditions with ages, the last decisions,
 * and the HPA's own view. Colour only on a terminal (and never with NO_COLOR).
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { InvalidInputError, TokenscalerError } from '../errors.ts';
import { ClientNodeKubeApi } from '../kube/client-node-api.ts';
import { hasCode } from '../kube/errors.ts';
import { hpaNameOf } from '../kube/hpa-manager.ts';
import type { KubeApi, KubeObject } from '../kube/kube-api.ts';
import { type KubeConfigSource, loadKubeConfig } from '../kube/kube-config.ts';
import { parseStoredStatus, type TokenScalerStatus } from '../kube/scaler-status.ts';
import { type CommandHandler, EXIT_FAILURE, EXIT_OK } from './command.ts';
import { parseEnumFlag, parseFlags } from './flags.ts';

const HELP = `usage: tokenscaler status [NAME] [flags]
       kubectl tokenscaler status [NAME] [flags]

Shows what each TokenScaler decided and why: demand, KV capacity per replica and how it was derived,
desired/current/ready replicas, the binding constraint and its reason, conditions with ages, the last
decisions, and the HorizontalPodAutoscaler it feeds.

  -n, --namespace NS      namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces    every namespace
  -o, --output FORMAT     json or yaml (default: text)
      --kubeconfig PATH   kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)
      --context NAME      kubeconfig context
`;

const FLAGS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  output: { type: 'string', short: 'o' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface StatusDeps {
  /** Builds the Kubernetes port from the kubeconfig source; `namespace` is the context's default. */
  connect(source: KubeConfigSource): { api: KubeApi; namespace: string | undefined };
  /** True when stdout is a terminal (the composition root knows). */
  stdoutIsTty(): boolean;
}

export const realStatusDeps = (stdoutIsTty: () => boolean): StatusDeps => ({
  connect(source) {
    const { config, namespace } = loadKubeConfig(source);
    return { api: new ClientNodeKubeApi(config, { requestTimeoutSeconds: 15 }), namespace };
  },
  stdoutIsTty,
});

/** One scaler as `-o json` prints it (camelCase, DESIGN.md field names). */
export interface ScalerReport {
  namespace: string;
  name: string;
  ageSeconds: number | undefined;
  target: { apiVersion: string; kind: string; name: string };
  minReplicas: number;
  maxReplicas: number;
  desiredReplicas: number | undefined;
  currentReplicas: number | undefined;
  readyReplicas: number | undefined;
  bindingConstraint: string | undefined;
  reason: string | undefined;
  fallbackActive: boolean | undefined;
  demand: {
    demandTokens: number | undefined;
    inflightTokens: number | undefined;
    waitingTokens: number | undefined;
    percentile: number;
    windowSeconds: number;
    requestTokensP95: number | undefined;
  };
  capacity: {
    tokensPerReplica: number | undefined;
    source: string | undefined;
    modelTokensPerReplica: number | undefined;
    engineTokensPerReplica: number | undefined;
    drift: string | undefined;
    kvBytesPerToken: number | undefined;
    model: string;
    accelerator: string;
    engine: string;
    targetKvCacheUtilization: number;
  };
  conditions: Array<{
    type: string;
    status: string;
    reason: string;
    message: string;
    lastTransitionTime: string;
    ageSeconds: number | undefined;
  }>;
  recentDecisions: Array<{
    time: string;
    ageSeconds: number | undefined;
    fromReplicas?: number;
    desiredReplicas: number;
    bindingConstraint: string;
    reason: string;
  }>;
  lastScaleTime: string | undefined;
  lastDecisionTime: string | undefined;
  observedGeneration: number | undefined;
  generation: number | undefined;
  hpa: HpaReport | null;
  /** Set when the stored spec does not parse (the controller reports it as InvalidSpec). */
  specError?: string;
}

export interface HpaReport {
  name: string;
  found: boolean;
  managedByTokenscaler: boolean;
  minReplicas: number | undefined;
  maxReplicas: number | undefined;
  currentReplicas: number | undefined;
  desiredReplicas: number | undefined;
  lastScaleTime: string | undefined;
  metrics: Array<{ name: string; current: string | undefined; target: string | undefined }>;
  conditions: Array<{
    type: string;
    status: string;
    reason: string | undefined;
    message: string | undefined;
  }>;
}

export function createStatusCommand(deps: StatusDeps): CommandHandler {
  return async (args, io) => {
    const { values, positionals } = parseFlags(args, FLAGS, true);
    if (values.help === true) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 1)
      throw new InvalidInputError(
        'NAME',
        `${JSON.stringify(positionals.join(' '))} is not allowed; give at most one TokenScaler name`,
      );
    const output = parseEnumFlag('output', values.output, ['json', 'yaml', 'text'] as const) ?? 'text';
    const all = values['all-namespaces'] === true;
    const name = positionals[0];
    if (all && name !== undefined)
      throw new InvalidInputError(
        '--all-namespaces',
        'cannot be combined with a NAME; give -n NAMESPACE instead',
      );
    const { api, namespace: contextNamespace } = deps.connect({
      kubeconfigPath: values.kubeconfig,
      context: values.context,
      env: io.env,
    });
    const namespace = values.namespace ?? contextNamespace ?? 'default';
    const signal = AbortSignal.any([io.signal, AbortSignal.timeout(30_000)]);

    let objects: KubeObject[];
    try {
      objects =
        name !== undefined
          ? [await api.getTokenScaler(namespace, name, signal)]
          : (await api.listTokenScalers(all ? undefined : namespace, signal)).items;
    } catch (error) {
      if (hasCode(error, 'KUBE_NOT_FOUND') && name !== undefined) {
        io.stderr(`tokenscaler status: TokenScaler ${namespace}/${name} not found\n`);
        return EXIT_FAILURE;
      }
      if (hasCode(error, 'KUBE_NOT_FOUND'))
        throw new TokenscalerError(
          'CRD_NOT_INSTALLED',
          'the API server does not serve tokenscalers.tokenscaler.dev: is the CRD installed?',
          { cause: error },
        );
      throw error;
    }
    const nowMs = io.nowMs();
    const reports = await Promise.all(objects.map((o) => reportOf(o, api, nowMs, signal)));

    if (output === 'json') {
      io.stdout(`${JSON.stringify({ scalers: reports }, null, 2)}\n`);
      return EXIT_OK;
    }
    if (output === 'yaml') {
      io.stdout(stringify({ scalers: reports }, { lineWidth: 0 }));
      return EXIT_OK;
    }
    if (reports.length === 0) {
      io.stdout(all ? 'No TokenScalers found.\n' : `No TokenScalers found in namespace ${namespace}.\n`);
      return EXIT_OK;
    }
    const colour = deps.stdoutIsTty() && io.env.NO_COLOR === undefined && io.env.TERM !== 'dumb';
    io.stdout(reports.map((r) => renderText(r, colour)).join('\n'));
    return EXIT_OK;
  };
}

const hpaSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), labels: z.record(z.string(), z.string()).optional() }),
  spec: z
    .looseObject({
      minReplicas: z.number().optional(),
      maxReplicas: z.number().optional(),
      metrics: z.array(z.unknown()).optional(),
    })
    .optional(),
  status: z
    .looseObject({
      currentReplicas: z.number().optional(),
      desiredReplicas: z.number().optional(),
      lastScaleTime: z.string().optional(),
      currentMetrics: z.array(z.unknown()).optional(),
      conditions: z
        .array(
          z.looseObject({
            type: z.string(),
            status: z.string(),
            reason: z.string().optional(),
            message: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});

async function reportOf(
  object: KubeObject,
  api: KubeApi,
  nowMs: number,
  signal: AbortSignal,
): Promise<ScalerReport> {
  const namespace = object.metadata.namespace ?? 'default';
  const name = object.metadata.name;
  const parsedSpec = tokenScalerSpecSchema.safeParse((object as KubeObject & { spec?: unknown }).spec);
  const spec = parsedSpec.success ? parsedSpec.data : undefined;
  const rawSpec = ((object as KubeObject & { spec?: Record<string, unknown> }).spec ?? {}) as Record<
    string,
    unknown
  >;
  const status: TokenScalerStatus = parseStoredStatus(object.status) ?? {};
  const age = (iso: string | undefined) => {
    const at = iso === undefined ? Number.NaN : Date.parse(iso);
    return Number.isFinite(at) ? Math.max(0, Math.round((nowMs - at) / 1000)) : undefined;
  };
  const hpaName = status.hpaName ?? (spec?.hpa.create ? hpaNameOf(name) : undefined);
  let hpa: HpaReport | null = null;
  if (hpaName !== undefined) {
    const raw = await api.getHpa(namespace, hpaName, signal).catch((error: unknown) => {
      if (hasCode(error, 'KUBE_FORBIDDEN')) return undefined;
      throw error;
    });
    hpa = hpaReport(hpaName, raw);
  }
  const ref =
    spec?.scaleTargetRef ??
    (rawSpec.scaleTargetRef as { apiVersion?: string; kind?: string; name?: string } | undefined) ??
    {};
  return {
    namespace,
    name,
    ageSeconds: age(object.metadata.creationTimestamp),
    target: { apiVersion: ref.apiVersion ?? 'apps/v1', kind: ref.kind ?? 'Deployment', name: ref.name ?? '' },
    minReplicas: spec?.minReplicas ?? Number(rawSpec.minReplicas ?? 1),
    maxReplicas: spec?.maxReplicas ?? Number(rawSpec.maxReplicas ?? 0),
    desiredReplicas: status.desiredReplicas,
    currentReplicas: status.currentReplicas,
    readyReplicas: status.readyReplicas,
    bindingConstraint: status.bindingConstraint,
    reason: status.reason,
    fallbackActive: status.fallbackActive,
    demand: {
      demandTokens: status.demandTokens,
      inflightTokens: status.inflightTokens,
      waitingTokens: status.waitingTokens,
      percentile: spec?.demand.percentile ?? 95,
      windowSeconds: spec?.demand.windowSeconds ?? 300,
      requestTokensP95: status.requestTokensP95,
    },
    capacity: {
      tokensPerReplica: status.tokensPerReplica,
      source: status.capacitySource,
      modelTokensPerReplica: status.modelTokensPerReplica,
      engineTokensPerReplica: status.engineTokensPerReplica,
      drift: status.capacityDrift,
      kvBytesPerToken: status.kvBytesPerToken,
      model: spec?.model.preset ?? (spec?.model.config !== undefined ? 'config.json' : '?'),
      accelerator:
        spec === undefined
          ? '?'
          : `${spec.accelerator.tensorParallel * spec.accelerator.pipelineParallel}x ${spec.accelerator.preset ?? `${spec.accelerator.memoryGiB} GiB GPU`}${spec.accelerator.pipelineParallel > 1 ? ` (TP ${spec.accelerator.tensorParallel}, PP ${spec.accelerator.pipelineParallel})` : ''}`,
      engine:
        spec === undefined
          ? '?'
          : `${spec.engine.kind}, KV ${spec.engine.kvCacheDtype}, block ${spec.engine.blockSize}, GPU memory ${spec.engine.gpuMemoryUtilization}`,
      targetKvCacheUtilization: spec?.target.kvCacheUtilization ?? 0.8,
    },
    conditions: (status.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: c.lastTransitionTime,
      ageSeconds: age(c.lastTransitionTime),
    })),
    recentDecisions: (status.recentDecisions ?? []).map((d) => ({ ...d, ageSeconds: age(d.time) })),
    lastScaleTime: status.lastScaleTime,
    lastDecisionTime: status.lastDecisionTime,
    observedGeneration: status.observedGeneration,
    generation: object.metadata.generation,
    hpa,
    ...(parsedSpec.success ? {} : { specError: z.prettifyError(parsedSpec.error).replace(/\n/g, ' ') }),
  };
}

function hpaReport(name: string, raw: KubeObject | undefined): HpaReport {
  const parsed = raw === undefined ? undefined : hpaSchema.safeParse(raw);
  const hpa = parsed?.success ? parsed.data : undefined;
  const metrics = (hpa?.spec?.metrics ?? []).map((m, i) => {
    const spec = m as {
      external?: { metric?: { name?: string }; target?: { averageValue?: string; value?: string } };
    };
    const current = hpa?.status?.currentMetrics?.[i] as
      | { external?: { current?: { averageValue?: string; value?: string } } }
      | undefined;
    return {
      name: spec.external?.metric?.name ?? '?',
      current: current?.external?.current?.averageValue ?? current?.external?.current?.value,
      target: spec.external?.target?.averageValue ?? spec.external?.target?.value,
    };
  });
  return {
    name,
    found: hpa !== undefined,
    managedByTokenscaler: hpa?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'tokenscaler',
    minReplicas: hpa?.spec?.minReplicas,
    maxReplicas: hpa?.spec?.maxReplicas,
    currentReplicas: hpa?.status?.currentReplicas,
    desiredReplicas: hpa?.status?.desiredReplicas,
    lastScaleTime: hpa?.status?.lastScaleTime,
    metrics,
    conditions: (hpa?.status?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
    })),
  };
}

const fmt = (n: number | undefined) => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));

/** kubectl's age style: 45s, 12m, 5h, 3d. */
export function shortAge(seconds: number | undefined): string {
  if (seconds === undefined) return '?';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

function renderText(r: ScalerReport, colour: boolean): string {
  const paint = (code: number, text: string) => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);
  const bold = (t: string) => paint(1, t);
  const state = (status: string, good: boolean) => paint(status === 'Unknown' ? 33 : good ? 32 : 31, status);
  const label = (t: string) => `  ${t.padEnd(11)}`;
  const lines: string[] = [];
  const ready = r.conditions.find((c) => c.type === 'Ready');
  lines.push(
    `${bold(`${r.namespace}/${r.name}`)} -> ${r.target.kind}/${r.target.name}   ${ready === undefined ? paint(33, 'not reconciled yet') : `Ready=${state(ready.status, ready.status === 'True')}`}   age ${shortAge(r.ageSeconds)}`,
  );
  if (r.specError !== undefined) lines.push(`${label('Spec')}${paint(31, `invalid: ${r.specError}`)}`);
  lines.push(
    `${label('Replicas')}desired ${bold(r.desiredReplicas === undefined ? '-' : String(r.desiredReplicas))}, current ${r.currentReplicas ?? '-'}, ready ${r.readyReplicas ?? '-'}  (min ${r.minReplicas}, max ${r.maxReplicas})${r.fallbackActive ? paint(31, '  FALLBACK') : ''}`,
  );
  if (r.bindingConstraint !== undefined)
    lines.push(
      `${label('Bound by')}${bold(r.bindingConstraint)}: ${stripConstraint(r.reason ?? '', r.bindingConstraint)}`,
    );
  const d = r.demand;
  lines.push(
    `${label('Demand')}${fmt(d.demandTokens)} tokens (P${d.percentile} over ${d.windowSeconds}s), in flight ${fmt(d.inflightTokens)}, waiting ${fmt(d.waitingTokens)}, P95 request ${d.requestTokensP95 === undefined ? 'not measured' : `${fmt(d.requestTokensP95)} tokens`}`,
  );
  const c = r.capacity;
  const source =
    c.source === 'engine'
      ? `reported by the engine (model ${fmt(c.modelTokensPerReplica)}${c.drift === undefined ? '' : `, drift ${(Number(c.drift) * 100).toFixed(1)}%`})`
      : c.source === 'model'
        ? 'from the capacity model'
        : 'not computed yet';
  lines.push(
    `${label('Capacity')}${fmt(c.tokensPerReplica)} tokens/replica ${source}, target ${Math.round(c.targetKvCacheUtilization * 100)}% KV`,
  );
  lines.push(
    `${label('')}${c.model} on ${c.accelerator}; ${c.engine}${c.kvBytesPerToken === undefined ? '' : `; ${fmt(c.kvBytesPerToken)} bytes/token`}`,
  );
  if (r.conditions.length > 0) {
    const good = (type: string, status: string) =>
      type === 'ReplicasContested' ? status === 'False' : status === 'True';
    r.conditions.forEach((cond, i) => {
      lines.push(
        `${label(i === 0 ? 'Conditions' : '')}${cond.type}=${state(cond.status, good(cond.type, cond.status))} ${cond.reason} (${shortAge(cond.ageSeconds)})${good(cond.type, cond.status) ? '' : `: ${cond.message}`}`,
      );
    });
  }
  if (r.recentDecisions.length > 0) {
    r.recentDecisions.forEach((dec, i) => {
      const change =
        dec.fromReplicas === undefined
          ? `${dec.desiredReplicas}`
          : `${dec.fromReplicas} -> ${dec.desiredReplicas}`;
      lines.push(
        `${label(i === 0 ? 'Decisions' : '')}${shortAge(dec.ageSeconds).padStart(4)} ago  ${change.padEnd(8)} ${dec.bindingConstraint}`,
      );
    });
  }
  if (r.hpa !== null) {
    const h = r.hpa;
    if (!h.found)
      lines.push(
        `${label('HPA')}${h.name}: ${paint(33, 'not found (the controller creates it when it leads)')}`,
      );
    else {
      const metric = h.metrics
        .map((m) => `${m.name} ${m.current ?? '<unknown>'}/${m.target ?? '?'}`)
        .join(', ');
      lines.push(
        `${label('HPA')}${h.name}${h.managedByTokenscaler ? '' : ' (not managed by tokenscaler)'}: current ${h.currentReplicas ?? '-'}, desired ${h.desiredReplicas ?? '-'} (min ${h.minReplicas ?? '-'}, max ${h.maxReplicas ?? '-'}); ${metric}`,
      );
      const bad = h.conditions.filter((x) => x.status !== 'True' && x.type !== 'ScalingLimited');
      const limited = h.conditions.find((x) => x.type === 'ScalingLimited' && x.status === 'True');
      for (const x of [...bad, ...(limited ? [limited] : [])])
        lines.push(`${label('')}${x.type}=${state(x.status, false)} ${x.reason ?? ''}: ${x.message ?? ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The reason repeats its constraint as a prefix ("kv-memory: ..."); the line already shows it. */
function stripConstraint(reason: string, constraint: string): string {
  return reason.startsWith(`${constraint}: `) ? reason.slice(constraint.length + 2) : reason;
}
