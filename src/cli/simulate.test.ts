import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/run-cli.ts';

let dir: string;
let trace: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenscaler-simulate-'));
  trace = join(dir, 'small.csv');
  // Five minutes of Llama-3.1-8B traffic with a burst in the middle.
  const rows = ['arrival_s,input_tokens,output_tokens'];
  for (let t = 0; t < 300; t += t > 100 && t < 200 ? 0.1 : 0.5)
    rows.push(`${t.toFixed(2)},${600 + (rows.length % 7) * 100},80`);
  await writeFile(trace, `${rows.join('\n')}\n`);
});

const FAST = [
  '--model',
  'llama-3.1-8b',
  '--gpu',
  'l4',
  '--tp',
  '1',
  '--cold-start',
  '30',
  '--peer-tuning',
  'defaults',
];

describe('tokenscaler simulate', () => {
  it('prints the DESIGN.md --json fields for every policy', async () => {
    const r = await runCli([
      'simulate',
      '--trace',
      trace,
      ...FAST,
      '--oracle-utilization',
      '0.7',
      '--json',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.policies.map((p: { name: string }) => p.name)).toEqual([
      'tokenscaler',
      'rps-hpa',
      'concurrency',
      'kv-utilization-hpa',
      'queue-keda',
      'static',
      'oracle',
    ]);
    for (const p of report.policies) {
      expect(p.sloAttainment).toBeGreaterThanOrEqual(0);
      expect(p.sloAttainment).toBeLessThanOrEqual(1);
      expect(p.gpuHours).toBeGreaterThan(0);
      expect(p.ttftP50Seconds).toBeGreaterThan(0);
      expect(p.ttftP99Seconds).toBeGreaterThanOrEqual(p.ttftP50Seconds);
      expect(typeof p.preemptions).toBe('number');
      expect(p.gpuHoursVsOracle).toBeGreaterThan(0);
      expect(p.requests).toBe(report.trace.requests);
    }
    expect(report.fleet).toMatchObject({
      model: 'llama-3.1-8b',
      gpu: 'l4',
      tensorParallel: 1,
      gpusPerReplica: 1,
    });
    expect(report.fleet.tokensPerReplica).toBeGreaterThan(0);
    expect(report.slo).toEqual({ ttftSeconds: 2, tpotSeconds: 0.2, goal: 0.99 });
  });

  it('is deterministic for a seed', async () => {
    const args = [
      'simulate',
      '--trace',
      trace,
      ...FAST,
      '--policies',
      'tokenscaler,rps-hpa',
      '--load-multiplier',
      '1.5',
      '--json',
    ];
    const strip = (text: string) =>
      JSON.parse(text).policies.map((p: Record<string, unknown>) => ({ ...p, wallSeconds: 0 }));
    const a = await runCli(args);
    const b = await runCli(args);
    const c = await runCli([...args, '--seed', '2']);
    expect(strip(a.stdout)).toEqual(strip(b.stdout));
    expect(strip(a.stdout)).not.toEqual(strip(c.stdout));
  });

  it('writes the plot as SVG or HTML and prints the table', async () => {
    const svg = join(dir, 'out.svg');
    const html = join(dir, 'out.html');
    const r = await runCli([
      'simulate',
      '--trace',
      trace,
      ...FAST,
      '--policies',
      'static,oracle',
      '--plot',
      svg,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/policy\s+SLO met\s+GPU-h/);
    expect(r.stdout).toMatch(/^static /m);
    expect(r.stderr).toContain(`wrote ${svg}`);
    expect(await readFile(svg, 'utf8')).toMatch(/^<svg /);
    const h = await runCli([
      'simulate',
      '--trace',
      trace,
      ...FAST,
      '--policies',
      'static',
      '--plot',
      html,
      '--quiet',
    ]);
    expect(h.stderr).toBe('');
    expect(await readFile(html, 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('applies fixed peer thresholds and tokenscaler settings as given', async () => {
    const r = await runCli([
      'simulate',
      '--trace',
      trace,
      ...FAST,
      '--policies',
      'tokenscaler,rps-hpa,static',
      '--rps-target',
      '3',
      '--static-replicas',
      '2',
      '--prefill-utilization',
      '0.5',
      '--queue-tolerance-tokens',
      '50000',
      '--json',
    ]);
    const report = JSON.parse(r.stdout);
    const byName = Object.fromEntries(report.policies.map((p: { name: string }) => [p.name, p]));
    expect(byName['rps-hpa'].settings).toEqual({ targetRequestsPerSecondPerReplica: 3, tuned: false });
    expect(byName.static.settings).toEqual({ replicas: 2, tuned: false });
    expect(byName.static.meanReplicas).toBeCloseTo(2, 6);
    expect(byName.tokenscaler.settings).toMatchObject({
      prefillUtilization: 0.5,
      queueToleranceTokens: 50_000,
    });
  });

  it('synthesizes arrivals for a length-only file', async () => {
    const lengths = join(dir, 'lengths.csv');
    await writeFile(
      lengths,
      'num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n500,100,600,5\n900,50,950,18\n',
    );
    const r = await runCli([
      'simulate',
      '--trace',
      lengths,
      ...FAST,
      '--policies',
      'static',
      '--arrival-rate',
      '2',
      '--duration',
      '120',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.trace.description).toMatch(/synthetic Poisson arrivals at 2 requests\/s/);
    expect(report.trace.requests).toBeGreaterThan(180);
    expect(report.trace.requests).toBeLessThan(300);
  });

  it.each([
    [['simulate'], /--trace: is required/],
    [['simulate', '--trace', '/nonexistent/t.csv'], /--trace: cannot read \/nonexistent\/t.csv/],
    [
      ['simulate', '--trace', 'x.csv', '--policies', 'tokenscaler,hpa'],
      /--policies: "tokenscaler,hpa" is not allowed; expected a comma-separated list of tokenscaler, rps-hpa/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--plot', 'out.png'],
      /--plot: "out.png" is not allowed; expected a path ending in .svg or .html/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--load-multiplier', '0'],
      /--load-multiplier: "0" is not allowed; expected a number greater than 0/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--gpu', 'h100-80gbb'],
      /--gpu: unknown preset "h100-80gbb"; did you mean h100, h100-80gb/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--gpu-memory-gib', '48'],
      /--gpu-tflops: a custom GPU has no roofline figures; give --gpu-tflops/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--min-replicas', '9', '--max-replicas', '4'],
      /--min-replicas: 9 is above --max-replicas 4/,
    ],
    [
      ['simulate', '--trace', 'x.csv', '--load-method', 'stretch'],
      /--load-method: "stretch" is not allowed; expected one of overlay, compress/,
    ],
    [['simulate', '--trace', 'x.csv', '--bogus'], /flags: Unknown option '--bogus'/],
  ])('rejects %j with one line naming the flag', async (argv, message) => {
    const r = await runCli(argv as string[], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('rejects a model that does not fit the GPUs', async () => {
    const r = await runCli([
      'simulate',
      '--trace',
      trace,
      '--model',
      'llama-3.1-70b',
      '--gpu',
      'l4',
      '--tp',
      '1',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--model: llama-3.1-70b does not fit 1 x l4/);
  });

  it('prints its help', async () => {
    const r = await runCli(['simulate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage: tokenscaler simulate --trace <file.csv>/);
    expect(r.stdout).toContain('--peer-tuning match-cost|defaults');
  });
});
