import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runDemo } from './run-demo.ts';

describe('tokenscaler demo', () => {
  it('replays the shipped trace through the real controller and an emulated HPA that scales the fleet', async () => {
    const traceCsv = await readFile(new URL('../../data/traces/azure2023_conv.csv', import.meta.url), 'utf8');
    let output = '';
    const warnings: string[] = [];
    const summary = await runDemo(
      {
        traceCsv,
        traceName: 'azure2023_conv',
        modelId: 'llama-3.1-8b',
        gpuId: 'a10g',
        speed: 150,
        loadMultiplier: 1.5,
        durationSeconds: 6,
        apiPort: 0,
        coldStartSeconds: 60,
      },
      {
        write: (text) => {
          output += text;
        },
        isTty: false,
        signal: new AbortController().signal,
        logger: { info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
        realNowMs: () => Date.now(),
        sleep: (ms, signal) => sleep(ms, undefined, { signal }),
      },
    );
    // 6 real seconds at 150x: several hundred simulated seconds of the trace.
    expect(summary.simulatedSeconds).toBeGreaterThan(300);
    expect(summary.requestsCompleted).toBeGreaterThan(500);
    // 1.5x the conversation trace needs more than the one replica the fleet starts with.
    expect(summary.peakReplicas).toBeGreaterThan(1);
    expect(Object.values(summary.bindingConstraints).reduce((a, b) => a + b, 0)).toBeGreaterThan(10);
    expect(output).toMatch(/try: {2}curl -s 'http:\/\/127\.0\.0\.1:\d+\/apis\/external\.metrics\.k8s\.io/);
    expect(output).toMatch(/demand [\d,]+ tokens {2}capacity [\d,]+\/replica {2}desired \d+/);
  }, 30_000);
});
