import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceCsv } from '../src/sim/trace.ts';
import { runCli } from './support/run-cli.ts';

/**
 * `tokenscaler simulate` on the real traces of ../shared/data/traces (see its README for sources
 * and licences). Small loads keep this suite quick; the full-size comparison is bench/autoscaling.ts.
 */
const TRACES = resolve(import.meta.dirname, '../../shared/data/traces');
const available = existsSync(join(TRACES, 'azure2023_code.csv'));

describe.skipIf(!available)('simulate on the shipped traces', () => {
  it.each([
    ['azure2023_code.csv', 'timed', 8_819],
    ['azure2023_conv.csv', 'timed', 19_366],
    ['burstgpt1_first400.csv', 'timed', 400],
    ['mooncake_synthetic.csv', 'timed', 3_993],
    ['sharegpt_lengths.csv', 'lengths', 30_731],
    ['arxiv_summarization_lengths.csv', 'lengths', 28_257],
  ])('parses %s (%s, %d requests)', (file, kind, rows) => {
    const parsed = parseTraceCsv(readFileSync(join(TRACES, file), 'utf8'));
    expect(parsed.kind).toBe(kind);
    expect(parsed.kind === 'timed' ? parsed.requests.length : parsed.lengths.length).toBe(rows);
  });

  it('replays azure2023_conv under every policy with the DESIGN.md JSON contract', async () => {
    const r = await runCli([
      'simulate',
      '--trace',
      join(TRACES, 'azure2023_conv.csv'),
      '--load-multiplier',
      '2',
      '--peer-tuning',
      'defaults',
      '--oracle-utilization',
      '0.7',
      '--max-replicas',
      '8',
      '--json',
      '--quiet',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.trace).toMatchObject({ name: 'azure2023_conv', loadMultiplier: 2, loadMethod: 'overlay' });
    expect(report.trace.requests).toBeGreaterThan(38_000);
    expect(report.fleet).toMatchObject({ model: 'llama-3.1-70b', gpu: 'h100-80gb', tensorParallel: 4 });
    expect(report.fleet.tokensPerReplica).toBe(477_456);
    for (const p of report.policies) {
      expect(Object.keys(p)).toEqual(
        expect.arrayContaining([
          'name',
          'sloAttainment',
          'gpuHours',
          'gpuHoursVsOracle',
          'costUsd',
          'replicaMinutes',
          'ttftP50Seconds',
          'ttftP95Seconds',
          'ttftP99Seconds',
          'tpotP50Seconds',
          'tpotP95Seconds',
          'tpotP99Seconds',
          'preemptions',
        ]),
      );
      // Cost is GPU-hours at the default $2.5, and GPU-hours are replica-minutes x 4 GPUs / 60.
      expect(p.costUsd).toBeCloseTo(p.gpuHours * 2.5, 6);
      expect(p.gpuHours).toBeCloseTo((p.replicaMinutes * 4) / 60, 6);
    }
  });

  it('shows the physics: an ample static fleet meets the SLO, one overloaded replica preempts and misses it', async () => {
    const run = async (replicas: string) => {
      const r = await runCli([
        'simulate',
        '--trace',
        join(TRACES, 'mooncake_synthetic.csv'),
        '--model',
        'llama-3.1-8b',
        '--gpu',
        'h100-80gb',
        '--tp',
        '1',
        '--policies',
        'static',
        '--static-replicas',
        replicas,
        // Mooncake prompts reach 40,000+ tokens: their prefill alone takes seconds.
        '--slo-ttft',
        '10',
        '--json',
        '--quiet',
      ]);
      return JSON.parse(r.stdout).policies[0];
    };
    const ample = await run('12');
    const one = await run('1');
    expect(ample.sloAttainment).toBeGreaterThan(0.95);
    expect(ample.preemptions).toBe(0);
    expect(one.sloAttainment).toBeLessThan(0.5);
    expect(one.ttftP99Seconds).toBeGreaterThan(60);
    expect(one.gpuHours).toBeLessThan(ample.gpuHours);
  });
});
