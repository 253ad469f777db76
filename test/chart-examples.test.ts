import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capacityOfSpec } from '../src/capacity/from-spec.ts';
import { type TokenScaler, tokenScalerSchema } from '../src/config/tokenscaler-spec.ts';
import { find, findAll, type KubeObject, parseManifests, repoRoot, validateObject } from './chart-support.ts';

const examplesDir = join(repoRoot, 'deploy', 'examples');

async function loadExamples(): Promise<Map<string, KubeObject[]>> {
  const files = (await readdir(examplesDir)).filter((f) => f.endsWith('.yaml')).sort();
  const examples = new Map<string, KubeObject[]>();
  for (const file of files)
    examples.set(file, parseManifests(await readFile(join(examplesDir, file), 'utf8')));
  return examples;
}

function scaler(object: KubeObject): TokenScaler {
  const parsed = tokenScalerSchema.safeParse(object);
  if (!parsed.success) throw new Error(`${object.metadata.name}: ${JSON.stringify(parsed.error.issues)}`);
  return parsed.data;
}

describe('deploy/examples', () => {
  it('has the examples the install guide points to', async () => {
    expect([...(await loadExamples()).keys()]).toEqual([
      'gateway-sidecar.yaml',
      'hpa-custom-metric.yaml',
      'hpa-external-metric.yaml',
      'keda-metrics-api.yaml',
      'sglang-direct-scrape.yaml',
      'vllm-llama-3.1-70b-tp4-prometheus.yaml',
    ]);
  });

  it('validates every Kubernetes object against its OpenAPI schema with no unknown fields', async () => {
    for (const [file, objects] of await loadExamples()) {
      const problems = objects.filter((o) => o.kind !== 'TokenScaler').flatMap(validateObject);
      expect(problems, file).toEqual([]);
    }
  });

  it('accepts every example TokenScaler with the controller schema, and each fits its GPUs', async () => {
    let count = 0;
    for (const [file, objects] of await loadExamples()) {
      for (const object of findAll(objects, 'TokenScaler')) {
        const parsed = scaler(object);
        const capacity = capacityOfSpec(parsed.spec);
        expect(capacity.fits, `${file}: ${capacity.notes.join('; ')}`).toBe(true);
        expect(capacity.tokensPerReplica, file).toBeGreaterThan(0);
        if (parsed.spec.model.maxContextTokens !== undefined)
          expect(capacity.tokensPerReplica, file).toBeGreaterThanOrEqual(parsed.spec.model.maxContextTokens);
        // The scale target is in the same file and namespace, and the scaler's replica bounds are sane.
        const target = find(objects, parsed.spec.scaleTargetRef.kind, parsed.spec.scaleTargetRef.name);
        expect(target.metadata.namespace).toBe(parsed.metadata.namespace);
        count += 1;
      }
    }
    expect(count).toBe(4);
  });

  it('vLLM on Llama-3.1-70B TP4: the TokenScaler describes the Deployment it scales, via Prometheus', async () => {
    const objects = (await loadExamples()).get('vllm-llama-3.1-70b-tp4-prometheus.yaml') ?? [];
    const tks = scaler(find(objects, 'TokenScaler'));
    expect(tks.spec.model.preset).toBe('llama-3.1-70b');
    expect(tks.spec.accelerator).toMatchObject({ preset: 'h100-80gb', tensorParallel: 4 });
    expect(tks.spec.metrics.prometheus?.url).toMatch(/^http/);
    expect(tks.spec.hpa.create).toBe(true);
    const container = find(objects, 'Deployment', tks.spec.scaleTargetRef.name).spec.template.spec
      .containers[0];
    expect(container.args).toContain('--tensor-parallel-size=4');
    expect(container.args).toContain(`--gpu-memory-utilization=${tks.spec.engine.gpuMemoryUtilization}`);
    expect(container.args).toContain(`--block-size=${tks.spec.engine.blockSize}`);
    expect(container.args).toContain(`--max-model-len=${tks.spec.model.maxContextTokens}`);
    expect(container.resources.limits['nvidia.com/gpu']).toBe('4');
  });

  it('SGLang scrapes its pods directly: the pod selector and port match the Deployment', async () => {
    const objects = (await loadExamples()).get('sglang-direct-scrape.yaml') ?? [];
    const tks = scaler(find(objects, 'TokenScaler'));
    expect(tks.spec.engine.kind).toBe('sglang');
    const scrape = tks.spec.metrics.scrape;
    expect(scrape?.podSelector?.matchLabels).toBeDefined();
    const pod = find(objects, 'Deployment', tks.spec.scaleTargetRef.name).spec.template;
    expect(pod.metadata.labels).toMatchObject(scrape?.podSelector?.matchLabels ?? {});
    expect(pod.spec.containers[0].ports.map((p: { containerPort: number }) => p.containerPort)).toContain(
      scrape?.port,
    );
    expect(pod.spec.containers[0].command).toContain('--enable-metrics');
  });

  it('the HPA examples read tokenscaler_desired_replicas of an example TokenScaler with AverageValue 1', async () => {
    const examples = await loadExamples();
    const scalers = [...examples.values()].flat().filter((o) => o.kind === 'TokenScaler');
    for (const file of ['hpa-external-metric.yaml', 'hpa-custom-metric.yaml']) {
      const hpa = find(examples.get(file) ?? [], 'HorizontalPodAutoscaler');
      const [metric] = hpa.spec.metrics;
      const spec = metric.type === 'External' ? metric.external : metric.object;
      expect(spec.metric.name, file).toBe('tokenscaler_desired_replicas');
      expect(spec.target, file).toEqual({ type: 'AverageValue', averageValue: '1' });
      const name =
        metric.type === 'External'
          ? spec.metric.selector.matchLabels['tokenscaler.dev/name']
          : spec.describedObject.name;
      if (metric.type === 'Object')
        expect(spec.describedObject).toMatchObject({
          apiVersion: 'tokenscaler.dev/v1alpha1',
          kind: 'TokenScaler',
        });
      const target = scalers.find(
        (s) => s.metadata.name === name && s.metadata.namespace === hpa.metadata.namespace,
      );
      expect(target, `${file} names TokenScaler ${name}`).toBeDefined();
      expect(hpa.spec.scaleTargetRef).toEqual(target?.spec.scaleTargetRef);
      expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([
        target?.spec.minReplicas,
        target?.spec.maxReplicas,
      ]);
    }
  });

  it('KEDA mode: the metrics-api trigger reads /keda/v1 of its TokenScaler with the chart credentials', async () => {
    const objects = (await loadExamples()).get('keda-metrics-api.yaml') ?? [];
    const tks = scaler(find(objects, 'TokenScaler'));
    expect(tks.spec.hpa.create).toBe(false); // KEDA owns the HPA
    const scaledObject = find(objects, 'ScaledObject');
    expect(scaledObject.spec.scaleTargetRef.name).toBe(tks.spec.scaleTargetRef.name);
    expect([scaledObject.spec.minReplicaCount, scaledObject.spec.maxReplicaCount]).toEqual([
      tks.spec.minReplicas,
      tks.spec.maxReplicas,
    ]);
    const [trigger] = scaledObject.spec.triggers;
    expect(trigger.type).toBe('metrics-api');
    expect(trigger.metadata).toMatchObject({
      valueLocation: 'desiredReplicas',
      targetValue: '1',
      authMode: 'tls',
    });
    const url = new URL(trigger.metadata.url);
    expect(url.protocol).toBe('https:');
    expect(url.hostname).toBe('tokenscaler.tokenscaler-system.svc');
    expect(url.pathname).toBe(
      `/keda/v1/namespaces/${tks.metadata.namespace}/tokenscalers/${tks.metadata.name}`,
    );
    expect(trigger.authenticationRef).toEqual({ kind: 'ClusterTriggerAuthentication', name: 'tokenscaler' });
    expect(scaledObject.spec.fallback.behavior).toBe('currentReplicas');
  });

  it('the gateway runs as a native sidecar and the TokenScaler scrapes its metrics port', async () => {
    const objects = (await loadExamples()).get('gateway-sidecar.yaml') ?? [];
    const tks = scaler(find(objects, 'TokenScaler'));
    expect(tks.spec.engine.kind).toBe('tokenscaler-gateway');
    const pod = find(objects, 'Deployment', tks.spec.scaleTargetRef.name).spec.template;
    const gateway = pod.spec.initContainers[0];
    expect(gateway.restartPolicy).toBe('Always');
    expect(gateway.args[0]).toBe('gateway');
    expect(gateway.args).toEqual(
      expect.arrayContaining(['--upstream=http://127.0.0.1:8000', '--metrics-listen=0.0.0.0:9464']),
    );
    expect(gateway.ports.map((p: { containerPort: number }) => p.containerPort)).toContain(
      tks.spec.metrics.scrape?.port,
    );
    expect(pod.metadata.labels).toMatchObject(tks.spec.metrics.scrape?.podSelector?.matchLabels ?? {});
    expect(find(objects, 'Service').spec.ports[0].targetPort).toBe('proxy');
  });
});

describe('validateObject', () => {
  it('rejects a misspelt field, a wrong type and an unknown kind (so the checks above can fail)', () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: {
        replicas: 'two',
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b' } },
          spec: { containers: [{ name: 'c', image: 'i', securityContext: { readOnlyRootFilesytem: true } }] },
        },
      },
    };
    const problems = validateObject(deployment);
    expect(problems.some((p) => p.includes('replicas'))).toBe(true);
    expect(problems).toContain(
      'Deployment/x: unknown field .spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem',
    );
    expect(validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(
      ['Widget/w: no schema known for example.com/v1/Widget'],
    );
  });
});
