import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLAIN_NAMESPACE, renderPlainManifests, VARIANTS } from '../scripts/render-manifests.ts';
import { chartDir, find, findAll, parseManifests, repoRoot, validateObject } from './chart-support.ts';

const CRD = 'tokenscalers.tokenscaler.dev.yaml';

describe('deploy/ plain manifests', () => {
  it('are up to date with the chart (regenerate with: node scripts/render-manifests.ts)', async () => {
    const rendered = await renderPlainManifests();
    for (const [path, content] of rendered) {
      const onDisk = await readFile(join(repoRoot, path), 'utf8').catch(() => '(missing)');
      expect(onDisk === content, `${path} is out of date: run node scripts/render-manifests.ts`).toBe(true);
    }
    expect([...rendered.keys()]).toEqual(expect.arrayContaining(VARIANTS.map((v) => v.file)));
  });

  it('carry the same CRD as the chart, byte for byte', async () => {
    const chartCrd = await readFile(join(chartDir, 'crds', CRD), 'utf8');
    const deployCrd = await readFile(join(repoRoot, 'deploy', 'crds', CRD), 'utf8');
    expect(deployCrd).toBe(chartCrd);
    const objects = parseManifests(chartCrd);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'CustomResourceDefinition/tokenscalers.tokenscaler.dev',
    ]);
    expect(objects.flatMap(validateObject)).toEqual([]);
  });

  it.each(VARIANTS.map((v) => v.file))(
    '%s applies on its own: namespace first, valid objects',
    async (file) => {
      const objects = parseManifests(await readFile(join(repoRoot, file), 'utf8'));
      expect(objects[0]).toMatchObject({
        kind: 'Namespace',
        metadata: { name: PLAIN_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
      });
      expect(objects.flatMap(validateObject)).toEqual([]);
      // Deterministic: cert-manager issues the certificate, so nothing random is rendered.
      expect(findAll(objects, 'Secret')).toEqual([]);
      expect(find(objects, 'Certificate', 'tokenscaler-tls').spec.secretName).toBe('tokenscaler-tls');
      expect(findAll(objects, 'APIService')).toHaveLength(1);
    },
  );
});
