/**
 * Objects the Kubernetes tests seed into the fake API server: a CRD-validated store, a scale target
 * with ready pods, and TokenScalers built from the DESIGN.md example.
 */
import { PRINTER_COLUMNS, tokenScalerCrd } from '../../src/kube/crd.ts';
import type { PrinterColumn } from './fake-apiserver.ts';
import { FakeStore, resourceKey, type StoredObject } from './fake-apiserver-store.ts';
import { crdValidator } from './fake-apiserver-validation.ts';

export const TKS = resourceKey('tokenscaler.dev', 'v1alpha1', 'tokenscalers');
export const DEPLOYMENTS = resourceKey('apps', 'v1', 'deployments');
export const PODS = resourceKey('', 'v1', 'pods');
export const HPAS = resourceKey('autoscaling', 'v2', 'horizontalpodautoscalers');
export const EVENTS = resourceKey('events.k8s.io', 'v1', 'events');
export const LEASES = resourceKey('coordination.k8s.io', 'v1', 'leases');

/** A store that admits TokenScalers through the generated CRD's schema, defaults and CEL rules. */
export function crdStore(options: { historySize?: number } = {}): FakeStore {
  const crd = tokenScalerCrd() as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> };
  };
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema as Record<string, unknown>;
  return new FakeStore({ ...options, validators: { [TKS]: crdValidator(schema) } });
}

export const printerColumns: Record<string, PrinterColumn[]> = {
  [TKS]: PRINTER_COLUMNS.map((c) => ({ ...c })),
};

export function seedWorkload(
  store: FakeStore,
  namespace: string,
  name: string,
  replicas: number,
  readyPods: number,
): void {
  store.create(DEPLOYMENTS, namespace, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } } },
    status: { replicas },
  });
  for (let i = 0; i < replicas; i += 1) {
    store.create(PODS, namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${name}-${i}`, labels: { app: name } },
      status: {
        phase: 'Running',
        podIP: `10.0.0.${i + 10}`,
        conditions: [{ type: 'Ready', status: i < readyPods ? 'True' : 'False' }],
      },
    });
  }
}

export function tokenScaler(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
): StoredObject {
  return {
    apiVersion: 'tokenscaler.dev/v1alpha1',
    kind: 'TokenScaler',
    metadata: { name, namespace },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'vllm' },
      minReplicas: 1,
      maxReplicas: 8,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://10.0.0.10:8000/metrics'] } },
      ...spec,
    },
  };
}
