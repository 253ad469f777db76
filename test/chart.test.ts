import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { ControllerMetrics } from '../src/telemetry/controller-metrics.ts';
import {
  chartDir,
  find,
  findAll,
  helm,
  helmWithValues,
  type KubeObject,
  NAMESPACE,
  RELEASE,
  renderChart,
  repoRoot,
  validateObject,
} from './chart-support.ts';

const MODES = ['external', 'custom', 'keda'] as const;
const SOURCES = ['generate', 'cert-manager', 'secret'] as const;
type Mode = (typeof MODES)[number];
type Source = (typeof SOURCES)[number];

const FULLNAME = 'tokenscaler'; // release "tokenscaler" contains the chart name
const SERVICE_DNS = `${FULLNAME}.${NAMESPACE}.svc`;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/** A real CA and serving certificate for the "existing Secret" option, made by helm's own generator. */
let externalCaPem: string | undefined;
async function externalCa(): Promise<string> {
  if (externalCaPem !== undefined) return externalCaPem;
  const objects = await renderChart({
    metricsApi: { mode: 'external' },
    certificates: { source: 'generate' },
  });
  const secret = find(objects, 'Secret', `${FULLNAME}-tls`);
  externalCaPem = Buffer.from(secret.data['ca.crt'], 'base64').toString('utf8');
  return externalCaPem;
}

async function valuesFor(mode: Mode, source: Source): Promise<Record<string, unknown>> {
  const certificates: Record<string, unknown> = { source };
  if (source === 'secret') certificates.secret = { name: 'my-serving-cert', caBundle: await externalCa() };
  return {
    metricsApi: { mode },
    certificates,
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } } },
    networkPolicy: {
      enabled: true,
      metricsFrom: [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }],
    },
    grafanaDashboard: { enabled: true },
  };
}

function decode(secret: KubeObject, key: string): string {
  const value = secret.data?.[key];
  if (typeof value !== 'string') throw new Error(`Secret ${secret.metadata.name} has no key ${key}`);
  return Buffer.from(value, 'base64').toString('utf8');
}

function argsOf(deployment: KubeObject): string[] {
  return deployment.spec.template.spec.containers[0].args;
}

describe('helm lint', () => {
  it('passes with the default values (strict)', async () => {
    const result = await helm(['lint', chartDir, '--strict', '--namespace', NAMESPACE]);
    expect(result.stderr + result.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(result.code).toBe(0);
  });

  it.each(MODES.flatMap((mode) => SOURCES.map((source) => [mode, source] as const)))(
    'passes for mode %s with certificates %s',
    async (mode, source) => {
      const result = await helmWithValues(['lint', chartDir, '--strict', '--namespace', NAMESPACE], {
        ...(await valuesFor(mode, source)),
      });
      expect(result.code, result.stdout + result.stderr).toBe(0);
    },
  );
});

describe.each(MODES)('metricsApi.mode %s', (mode) => {
  describe.each(SOURCES)('certificates.source %s', (source) => {
    let objects: KubeObject[] = [];
    const rendered = async () => {
      if (objects.length === 0) objects = await renderChart(await valuesFor(mode, source));
      return objects;
    };

    it('renders only objects valid against the Kubernetes OpenAPI schemas, with no unknown fields', async () => {
      const problems = (await rendered()).flatMap(validateObject);
      expect(problems).toEqual([]);
    });

    it('names every object once, in the release namespace unless cluster-scoped or deliberately elsewhere', async () => {
      const all = await rendered();
      const keys = all.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
      expect(new Set(keys).size).toBe(keys.length);
      const clusterScoped = new Set([
        'ClusterRole',
        'ClusterRoleBinding',
        'APIService',
        'ClusterTriggerAuthentication',
      ]);
      for (const o of all) {
        if (clusterScoped.has(o.kind))
          expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined();
        else if (o.kind === 'RoleBinding' && o.metadata.name === `${FULLNAME}-auth-reader`)
          expect(o.metadata.namespace).toBe('kube-system');
        else if (o.kind === 'Secret' && o.metadata.name === `${FULLNAME}-keda-client`)
          expect(o.metadata.namespace).toBe('keda');
        else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
      }
    });

    it('runs the controller hardened: non-root, read-only root, no escalation, no capabilities, seccomp', async () => {
      const deployment = find(await rendered(), 'Deployment', FULLNAME);
      const pod = deployment.spec.template.spec;
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      expect(pod.hostIPC ?? false).toBe(false);
      expect(pod.volumes.some((v: Record<string, unknown>) => 'hostPath' in v)).toBe(false);
      expect(pod.containers).toHaveLength(1);
      const container = pod.containers[0];
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container.image).toMatch(/^[^:]+:\d+\.\d+\.\d+/);
      expect(container.image).not.toMatch(/:latest$/);
      for (const kind of ['requests', 'limits'] as const) {
        expect(container.resources[kind].cpu, kind).toBeDefined();
        expect(container.resources[kind].memory, kind).toBeDefined();
      }
    });

    it('probes /livez and /readyz over HTTPS on the secure port', async () => {
      const deployment = find(await rendered(), 'Deployment', FULLNAME);
      const container = deployment.spec.template.spec.containers[0];
      expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'https', scheme: 'HTTPS' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
      const ports = Object.fromEntries(
        container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      );
      expect(ports).toEqual({ https: 6443, metrics: 8080 });
      expect(argsOf(deployment)).toEqual(
        expect.arrayContaining([
          'controller',
          '--secure-port=6443',
          '--tls-cert-file=/etc/tokenscaler/tls/tls.crt',
          '--tls-private-key-file=/etc/tokenscaler/tls/tls.key',
          '--metrics-bind-address=:8080',
          '--leader-elect=true',
        ]),
      );
      expect(argsOf(deployment)[0]).toBe('controller');
    });

    it('runs two replicas with leader election, a PodDisruptionBudget and topology spread', async () => {
      const all = await rendered();
      const deployment = find(all, 'Deployment', FULLNAME);
      expect(deployment.spec.replicas).toBe(2);
      expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
      const podLabels = deployment.spec.template.metadata.labels;
      const pdb = find(all, 'PodDisruptionBudget', FULLNAME);
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(pdb.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
      expect(podLabels).toMatchObject(pdb.spec.selector.matchLabels);
      const spread = deployment.spec.template.spec.topologySpreadConstraints;
      expect(spread.map((c: { topologyKey: string }) => c.topologyKey)).toEqual([
        'kubernetes.io/hostname',
        'topology.kubernetes.io/zone',
      ]);
      for (const constraint of spread) expect(podLabels).toMatchObject(constraint.labelSelector.matchLabels);
    });

    it('exposes the secure port as Service port 443 and the metrics port, both selecting the pods', async () => {
      const all = await rendered();
      const service = find(all, 'Service', FULLNAME);
      expect(service.spec.ports).toEqual([
        { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' },
        { name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' },
      ]);
      const podLabels = find(all, 'Deployment', FULLNAME).spec.template.metadata.labels;
      expect(podLabels).toMatchObject(service.spec.selector);
      const monitor = find(all, 'ServiceMonitor', FULLNAME);
      expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
      expect(monitor.metadata.labels?.release).toBe('kube-prometheus-stack');
      expect(monitor.spec.endpoints).toEqual([
        expect.objectContaining({ port: 'metrics', path: '/metrics', scheme: 'http', honorLabels: true }),
      ]);
      const policy = find(all, 'NetworkPolicy', FULLNAME);
      expect(podLabels).toMatchObject(policy.spec.podSelector.matchLabels);
      expect(policy.spec.ingress).toEqual([
        { ports: [{ port: 'https', protocol: 'TCP' }] },
        {
          ports: [{ port: 'metrics', protocol: 'TCP' }],
          from: [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }],
        },
      ]);
    });

    it('registers the APIService of the mode, verified with a CA bundle, never insecureSkipTLSVerify', async () => {
      const all = await rendered();
      const apiServices = findAll(all, 'APIService');
      const expected = {
        external: ['v1beta1.external.metrics.k8s.io'],
        custom: ['v1beta2.custom.metrics.k8s.io'],
        keda: [],
      }[mode];
      expect(apiServices.map((a) => a.metadata.name)).toEqual(expected);
      for (const apiService of apiServices) {
        expect(apiService.metadata.name).toBe(`${apiService.spec.version}.${apiService.spec.group}`);
        expect(apiService.spec.insecureSkipTLSVerify).toBe(false);
        expect(apiService.spec.service).toEqual({ name: FULLNAME, namespace: NAMESPACE, port: 443 });
        expect(apiService.spec.groupPriorityMinimum).toBe(100);
        expect(apiService.spec.versionPriority).toBe(100);
        if (source === 'cert-manager') {
          expect(apiService.spec.caBundle).toBeUndefined();
          const injectFrom = apiService.metadata.annotations?.['cert-manager.io/inject-ca-from'];
          expect(injectFrom).toBe(`${NAMESPACE}/${FULLNAME}-tls`);
          const certificate = find(all, 'Certificate', `${FULLNAME}-tls`);
          expect(certificate.spec.secretName).toBe(servingSecretName(all));
        } else {
          const caBundle = Buffer.from(apiService.spec.caBundle, 'base64').toString('utf8');
          if (source === 'secret') expect(caBundle).toBe(await externalCa());
          else expect(caBundle).toBe(decode(find(all, 'Secret', `${FULLNAME}-tls`), 'ca.crt'));
        }
      }
    });

    it('mounts the serving certificate from the Secret the certificate option provides', async () => {
      const all = await rendered();
      const secretName = servingSecretName(all);
      expect(secretName).toBe(source === 'secret' ? 'my-serving-cert' : `${FULLNAME}-tls`);
      if (source === 'generate') {
        const secret = find(all, 'Secret', secretName);
        expect(secret.type).toBe('kubernetes.io/tls');
        const ca = new X509Certificate(decode(secret, 'ca.crt'));
        const leaf = new X509Certificate(decode(secret, 'tls.crt'));
        expect(ca.ca).toBe(true);
        expect(leaf.verify(ca.publicKey)).toBe(true);
        expect(leaf.checkHost(SERVICE_DNS)).toBe(SERVICE_DNS);
        expect(leaf.subjectAltName).toContain(`DNS:${SERVICE_DNS}`);
        expect(
          leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(decode(secret, 'tls.key'))),
        ).toBe(true);
        // The annotation that decides reuse on upgrades matches the certificate's real expiry (within a minute).
        const notAfter = Date.parse(secret.metadata.annotations?.['tokenscaler.dev/not-after'] ?? '');
        expect(Math.abs(notAfter - Date.parse(leaf.validTo))).toBeLessThan(60_000);
        expect(Date.parse(leaf.validTo) - Date.now()).toBeGreaterThan(3000 * 86_400_000);
      }
      if (source === 'cert-manager') {
        const certificate = find(all, 'Certificate', `${FULLNAME}-tls`);
        expect(certificate.spec.dnsNames).toContain(SERVICE_DNS);
        expect(certificate.spec.usages).toEqual(['server auth', 'digital signature']);
        const issuer = find(all, 'Issuer', certificate.spec.issuerRef.name);
        expect(issuer.spec.ca.secretName).toBe(`${FULLNAME}-ca`);
        if (mode === 'keda') {
          // The CA is made by the chart so KEDA can be handed it; cert-manager signs with it.
          const caSecret = find(all, 'Secret', `${FULLNAME}-ca`);
          expect(new X509Certificate(decode(caSecret, 'tls.crt')).ca).toBe(true);
          expect(findAll(all, 'Issuer').map((i) => i.metadata.name)).toEqual([`${FULLNAME}-ca`]);
        } else {
          const caCertificate = find(all, 'Certificate', `${FULLNAME}-ca`);
          expect(caCertificate.spec).toMatchObject({ isCA: true, secretName: `${FULLNAME}-ca` });
          expect(find(all, 'Issuer', caCertificate.spec.issuerRef.name).spec.selfSigned).toEqual({});
        }
      }
    });

    it('gives KEDA a client certificate the controller trusts, only in keda mode', async () => {
      const all = await rendered();
      const deployment = find(all, 'Deployment', FULLNAME);
      if (mode !== 'keda') {
        expect(argsOf(deployment).some((a) => a.startsWith('--client-ca-file'))).toBe(false);
        expect(findAll(all, 'ClusterTriggerAuthentication')).toEqual([]);
        return;
      }
      expect(argsOf(deployment)).toContain('--client-ca-file=/etc/tokenscaler/client-ca/ca.crt');
      const volume = deployment.spec.template.spec.volumes.find(
        (v: { name: string }) => v.name === 'client-ca',
      );
      expect(volume.secret.secretName).toBe(`${FULLNAME}-client-ca`);
      const clientCa = new X509Certificate(decode(find(all, 'Secret', `${FULLNAME}-client-ca`), 'ca.crt'));
      const kedaSecret = find(all, 'Secret', `${FULLNAME}-keda-client`);
      const clientCert = new X509Certificate(decode(kedaSecret, 'cert'));
      expect(clientCa.ca).toBe(true);
      expect(clientCert.verify(clientCa.publicKey)).toBe(true);
      expect(clientCert.subject).toContain('CN=tokenscaler-keda');
      expect(clientCert.keyUsage).toContain(CLIENT_AUTH_OID);
      // KEDA verifies the controller with `ca`: the CA that signed (or will sign) the serving certificate.
      const servingCa = decode(kedaSecret, 'ca');
      if (source === 'secret') expect(servingCa).toBe(await externalCa());
      else if (source === 'generate')
        expect(servingCa).toBe(decode(find(all, 'Secret', `${FULLNAME}-tls`), 'ca.crt'));
      else expect(servingCa).toBe(decode(find(all, 'Secret', `${FULLNAME}-ca`), 'tls.crt'));
      // The client CA is not the serving CA (nor, being the chart's own, the cluster's front-proxy CA).
      expect(clientCa.fingerprint256).not.toBe(new X509Certificate(servingCa).fingerprint256);
      const auth = find(all, 'ClusterTriggerAuthentication', 'tokenscaler');
      expect(auth.spec.secretTargetRef).toEqual(
        ['cert', 'key', 'ca'].map((p) => ({ parameter: p, name: `${FULLNAME}-keda-client`, key: p })),
      );
    });

    it('grants least privilege and binds what an aggregated API server needs', async () => {
      const all = await rendered();
      const sa = find(all, 'ServiceAccount', FULLNAME);
      expect(sa.automountServiceAccountToken).toBe(false);
      expect(find(all, 'Deployment', FULLNAME).spec.template.spec.automountServiceAccountToken).toBe(true);

      const controllerRole = find(all, 'ClusterRole', `${FULLNAME}-controller`);
      expect(rulesOf(controllerRole)).toEqual(
        [
          'tokenscaler.dev/tokenscalers: get,list,watch',
          'tokenscaler.dev/tokenscalers/status: get,patch,update',
          'tokenscaler.dev/tokenscalers/finalizers: update',
          'apps/deployments/scale: get',
          'apps/statefulsets/scale: get',
          '/pods: list,watch',
          'events.k8s.io/events: create,patch',
          'autoscaling/horizontalpodautoscalers: create,delete,get,list,patch,update,watch',
        ].sort(),
      );
      const leases = find(all, 'Role', `${FULLNAME}-leader-election`);
      expect(rulesOf(leases)).toEqual(['coordination.k8s.io/leases: create,get,patch,update']);

      // No role of this chart reads Secrets or uses wildcards, except the metrics reader's resource list
      // (metric names are resources of the metrics groups).
      for (const role of [...findAll(all, 'ClusterRole'), ...findAll(all, 'Role')]) {
        for (const rule of role.rules) {
          expect(rule.resources, role.metadata.name).not.toContain('secrets');
          expect(rule.verbs, role.metadata.name).not.toContain('*');
          expect(rule.apiGroups, role.metadata.name).not.toContain('*');
        }
      }

      const bindings = [...findAll(all, 'ClusterRoleBinding'), ...findAll(all, 'RoleBinding')];
      const boundTo = (roleName: string) => bindings.filter((b) => b.roleRef.name === roleName);
      const ourSubject = [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }];
      expect(boundTo('system:auth-delegator').map((b) => [b.kind, b.subjects])).toEqual([
        ['ClusterRoleBinding', ourSubject],
      ]);
      const authReader = boundTo('extension-apiserver-authentication-reader');
      expect(authReader.map((b) => [b.kind, b.metadata.namespace, b.subjects])).toEqual([
        ['RoleBinding', 'kube-system', ourSubject],
      ]);
      // Every binding points at a role this chart renders or a built-in one.
      const roles = new Set(
        [...findAll(all, 'ClusterRole'), ...findAll(all, 'Role')].map((r) => r.metadata.name),
      );
      for (const binding of bindings) {
        expect(
          roles.has(binding.roleRef.name) ||
            ['system:auth-delegator', 'extension-apiserver-authentication-reader'].includes(
              binding.roleRef.name,
            ),
          binding.metadata.name,
        ).toBe(true);
      }

      const hpaBindings = bindings.filter((b) =>
        b.subjects.some(
          (s: { name: string; namespace?: string }) =>
            s.name === 'horizontal-pod-autoscaler' && s.namespace === 'kube-system',
        ),
      );
      if (mode === 'keda') {
        expect(hpaBindings).toEqual([]);
      } else {
        const group = mode === 'external' ? 'external.metrics.k8s.io' : 'custom.metrics.k8s.io';
        expect(hpaBindings).toHaveLength(1);
        const reader = find(all, 'ClusterRole', hpaBindings[0]?.roleRef.name);
        expect(reader.rules).toEqual([
          { apiGroups: [group], resources: ['*'], verbs: ['get', 'list', 'watch'] },
        ]);
      }

      const view = find(all, 'ClusterRole', `${FULLNAME}-view`);
      expect(view.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
      expect(rulesOf(view)).toEqual(
        [
          'tokenscaler.dev/tokenscalers: get,list,watch',
          'tokenscaler.dev/tokenscalers/status: get,list,watch',
        ].sort(),
      );
    });
  });
});

function servingSecretName(objects: readonly KubeObject[]): string {
  const deployment = find(objects, 'Deployment', FULLNAME);
  const volume = deployment.spec.template.spec.volumes.find(
    (v: { name: string }) => v.name === 'serving-certificate',
  );
  expect(volume.secret.items).toEqual([
    { key: 'tls.crt', path: 'tls.crt' },
    { key: 'tls.key', path: 'tls.key' },
  ]);
  return volume.secret.secretName;
}

/** "group/resource: verbs" per resource, sorted, for exact comparison of rule sets. */
function rulesOf(role: KubeObject): string[] {
  const lines: string[] = [];
  for (const rule of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        lines.push(`${group}/${resource}: ${[...rule.verbs].sort().join(',')}`);
      }
    }
  }
  return lines.sort();
}

describe('values', () => {
  it.each([
    [{ replicaCont: 3 }, /replicaCont/],
    [{ image: { tg: 'v1' } }, /tg/],
    [{ metricsApi: { mode: 'externl' } }, /metricsApi\.mode|mode/],
    [{ certificates: { source: 'selfsigned' } }, /certificates\.source|source/],
    [{ securePort: 70000 }, /securePort/],
    [{ certificates: { certManager: { issuerRef: { nam: 'x' } } } }, /nam/],
    [{ extraArgs: ['leader-elect=false'] }, /extraArgs/],
  ])('a typo or bad value fails the install: %j', async (values, message) => {
    const result = await helmWithValues(['template', RELEASE, chartDir, '-n', NAMESPACE], values);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/schema/i);
    expect(result.stderr).toMatch(message);
  });

  it.each([
    [{ replicaCount: 3, leaderElection: { enabled: false } }, /leaderElection\.enabled/],
    [{ certificates: { source: 'secret' } }, /certificates\.secret\.name/],
    [
      { metricsApi: { mode: 'keda' }, certificates: { source: 'secret', secret: { name: 'x' } } },
      /certificates\.secret\.caBundle/,
    ],
    [
      {
        metricsApi: { mode: 'keda' },
        certificates: {
          source: 'cert-manager',
          certManager: { issuerRef: { name: 'corp', kind: 'ClusterIssuer' } },
        },
      },
      /certificates\.certManager\.caBundle/,
    ],
  ])('inconsistent values fail with a message naming the values: %j', async (values, message) => {
    const result = await helmWithValues(['template', RELEASE, chartDir, '-n', NAMESPACE], values);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it('honours the switches: one replica without leader election, no PDB, read-only HPAs, extra scale targets', async () => {
    const objects = await renderChart({
      replicaCount: 1,
      leaderElection: { enabled: false },
      podDisruptionBudget: { enabled: false },
      rbac: {
        manageHorizontalPodAutoscalers: false,
        scaleTargets: [
          { apiGroup: 'apps', resource: 'deployments' },
          { apiGroup: 'leaderworkerset.x-k8s.io', resource: 'leaderworkersets' },
        ],
      },
      image: { digest: `sha256:${'a'.repeat(64)}` },
      extraArgs: ['--log-level=debug'],
    });
    expect(objects.flatMap(validateObject)).toEqual([]);
    const deployment = find(objects, 'Deployment', FULLNAME);
    expect(deployment.spec.replicas).toBe(1);
    expect(argsOf(deployment)).toContain('--leader-elect=false');
    expect(argsOf(deployment).at(-1)).toBe('--log-level=debug');
    expect(deployment.spec.template.spec.containers[0].image).toBe(
      `ghcr.io/tokenscaler/tokenscaler:0.1.0@sha256:${'a'.repeat(64)}`,
    );
    expect(findAll(objects, 'PodDisruptionBudget')).toEqual([]);
    const rules = rulesOf(find(objects, 'ClusterRole', `${FULLNAME}-controller`));
    expect(rules).toContain('autoscaling/horizontalpodautoscalers: get,list,watch');
    expect(rules).not.toContain('tokenscaler.dev/tokenscalers/finalizers: update');
    expect(rules).toContain('leaderworkerset.x-k8s.io/leaderworkersets/scale: get');
    expect(rules).not.toContain('apps/statefulsets/scale: get');
  });

  it('documents every key of values.yaml with a comment on it or on its enclosing block', async () => {
    const text = await readFile(join(chartDir, 'values.yaml'), 'utf8');
    const undocumented: string[] = [];
    const walk = (node: YamlNode | null | undefined, path: string, documented: boolean) => {
      if (!isMap(node)) return;
      for (const [index, pair] of node.items.entries()) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        const keyNode = pair.key as YamlNode & { commentBefore?: string | null };
        // The yaml library attaches the comment above a map's first key to the map itself.
        const comment = keyNode.commentBefore ?? (index === 0 ? node.commentBefore : undefined);
        const here = documented || Boolean(comment?.trim());
        const full = path === '' ? key : `${path}.${key}`;
        if (isMap(pair.value)) walk(pair.value, full, here);
        else if (!here) undocumented.push(full);
        if (isSeq(pair.value) && !here) undocumented.push(full);
      }
    };
    walk(parseDocument(text).contents, '', false);
    expect(undocumented).toEqual([]);
  });

  it('closes every object in values.schema.json (additionalProperties: false) unless it passes Kubernetes fields through', async () => {
    const schema = JSON.parse(await readFile(join(chartDir, 'values.schema.json'), 'utf8'));
    const open: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (node === null || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.properties !== undefined && n.additionalProperties !== false) open.push(path);
      for (const [k, v] of Object.entries(n)) walk(v, `${path}/${k}`);
    };
    walk(schema, '#');
    expect(open).toEqual([]);
    // Every top-level key of values.yaml is in the schema (helm lint above would fail otherwise; this names it).
    const values = parseDocument(await readFile(join(chartDir, 'values.yaml'), 'utf8')).toJS() as Record<
      string,
      unknown
    >;
    expect(Object.keys(values).filter((k) => !(k in schema.properties))).toEqual([]);
  });

  it('keeps the chart appVersion equal to the package version', async () => {
    const chart = parseDocument(await readFile(join(chartDir, 'Chart.yaml'), 'utf8')).toJS();
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
    expect(chart.appVersion).toBe(pkg.version);
  });
});

describe('Grafana dashboard', () => {
  it('queries only metrics the controller exports, and has the panels operators look for', async () => {
    const objects = await renderChart({
      grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Autoscaling' } },
    });
    const configMap = find(objects, 'ConfigMap', `${FULLNAME}-dashboard`);
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    expect(configMap.metadata.annotations).toEqual({ grafana_folder: 'Autoscaling' });
    const dashboard = JSON.parse(configMap.data['tokenscaler.json']);
    const onDisk = JSON.parse(await readFile(join(chartDir, 'dashboards', 'tokenscaler.json'), 'utf8'));
    expect(dashboard).toEqual(onDisk);

    const registry = new Registry();
    new ControllerMetrics(registry);
    const exported = new Set<string>();
    for (const metric of await registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) exported.add(metric.name + s);
      if (String(metric.type) === 'counter' && !metric.name.endsWith('_total'))
        exported.add(`${metric.name}_total`);
    }
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
      expect(panel.datasource.uid).toBe('${datasource}');
      for (const target of panel.targets) {
        for (const name of target.expr.match(/tokenscaler_[a-z_]+/g) ?? []) used.add(name);
      }
    }
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    for (const needed of [
      'tokenscaler_demand_tokens',
      'tokenscaler_tokens_per_replica',
      'tokenscaler_desired_replicas',
      'tokenscaler_current_replicas',
      'tokenscaler_binding_constraint',
      'tokenscaler_request_tokens',
      'tokenscaler_input_output_ratio',
    ]) {
      expect(used, needed).toContain(needed);
    }
    expect(dashboard.panels.map((p: { title: string }) => p.title)).toEqual(
      expect.arrayContaining([
        'Token demand vs KV capacity',
        'Desired vs current replicas',
        'Binding constraint',
        'Request tokens (percentiles)',
        'Input/output token ratio',
      ]),
    );
  });
});
