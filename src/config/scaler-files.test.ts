import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScalerFiles, parseScalerDocuments } from './scaler-files.ts';

const valid = (name: string, extra = '') => `apiVersion: tokenscaler.dev/v1alpha1
kind: TokenScaler
metadata: {name: ${name}, namespace: inference}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: vllm-${name}}
  minReplicas: 1
  maxReplicas: 16
  model: {preset: llama-3.1-70b}
  accelerator: {preset: h100-80gb, tensorParallel: 4}
  engine: {kind: vllm, gpuMemoryUtilization: 0.9, blockSize: 16, kvCacheDtype: auto, reservedGiB: 2}
  metrics:
    prometheus: {url: "http://prometheus:9090", selector: '{namespace="inference",app="vllm"}'}
  target: {kvCacheUtilization: 0.8}
  demand: {percentile: 95, windowSeconds: 300}
  fallback: {afterSeconds: 120}
${extra}`;

describe('TokenScaler files', () => {
  it('loads the DESIGN.md example with its defaults', () => {
    const [d] = parseScalerDocuments(valid('llama-70b'), 'a.yaml');
    expect(d).toMatchObject({ namespace: 'inference', name: 'llama-70b' });
    expect(d?.spec.hpa.create).toBe(false);
    expect(d?.spec.behavior.scaleDownStabilizationSeconds).toBe(300);
    expect(typeof d?.generation).toBe('string');
  });

  it('loads every document of every file in a directory and rejects duplicates', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'scalers-'));
    await writeFile(join(dir, 'a.yaml'), `${valid('a')}---\n${valid('b')}`);
    await writeFile(join(dir, 'notes.txt'), 'ignored');
    expect((await loadScalerFiles(dir)).map((d) => d.name)).toEqual(['a', 'b']);
    await writeFile(join(dir, 'b.yml'), valid('a'));
    await expect(loadScalerFiles(dir)).rejects.toThrow(/TokenScaler inference\/a is defined twice/);
  });

  it.each([
    [valid('x').replace('maxReplicas: 16', 'maxReplicas: 0'), /spec\.maxReplicas: .* \(got 0\)/],
    [
      valid('x').replace('minReplicas: 1', 'minReplicas: 20'),
      /spec\.minReplicas: minReplicas must not exceed maxReplicas/,
    ],
    [valid('x').replace('kind: vllm', 'kind: vllmm'), /spec\.engine\.kind: .*\(got "vllmm"\)/],
    [
      valid('x').replace('windowSeconds: 300', 'windowSecs: 300'),
      /spec\.demand: Unrecognized key: "windowSecs"/,
    ],
    [
      valid('x').replace('preset: llama-3.1-70b', 'preset: llama-70b'),
      /inference\/x: spec\.model\.preset: unknown preset "llama-70b"/,
    ],
    [valid('x').replace('tensorParallel: 4', 'tensorParallel: 1'), /the model does not fit/],
    [`${valid('x')}  bogus: [`, /is not valid YAML/],
    [valid('x').replace('kind: TokenScaler', 'kind: Deployment'), /kind: .*\(got "Deployment"\)/],
  ])('rejects an invalid file naming the field (%#)', (text, message) => {
    expect(() => parseScalerDocuments(text, 'bad.yaml')).toThrow(message);
  });

  it('names the document in a multi-document file', () => {
    expect(() =>
      parseScalerDocuments(
        `${valid('a')}---\n${valid('b').replace('maxReplicas: 16', 'maxReplicas: -1')}`,
        'm.yaml',
      ),
    ).toThrow(/m\.yaml \(document 2\): spec\.maxReplicas/);
  });

  it('says when the path cannot be read', async () => {
    await expect(loadScalerFiles('/nonexistent/scalers')).rejects.toThrow(
      /--scalers: cannot read \/nonexistent\/scalers/,
    );
  });
});
