/**
 * Benchmark: parse a 1,000-pod fleet scrape of realistic vLLM 0.11 payloads (the token and latency
 * histograms, counters with `_created`, cache_config_info, process metrics; see
 * test/support/engine-payloads.ts) with tokenscaler's parser and, in the same run, with the npm
 * peer `parse-prometheus-text-format`, plus a floor: splitting the text into lines and finding each
 * sample's value, which any line-oriented parser must at least do.
 *
 * Each parser runs in its own child process so the memory peak (max RSS) is its own; `baseline`
 * only generates the payloads, so `peak - baseline` is what parsing and keeping the 1,000 results
 * costs. Time is the median of timed passes after a warm-up pass.
 *
 *   node bench/exposition-parser.ts            # table + one JSON line
 *   node bench/exposition-parser.ts --pods 200 # smaller fleet
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseExposition } from '../src/sources/exposition-parser.ts';
import { engineState, vllmMetrics } from '../test/support/engine-payloads.ts';

const PARSERS = ['baseline', 'line-split', 'tokenscaler', 'parse-prometheus-text-format'] as const;
type ParserName = (typeof PARSERS)[number];

interface WorkerResult {
  parser: ParserName;
  pods: number;
  bytes: number;
  series: number;
  medianSeconds: number;
  passes: number;
  maxRssBytes: number;
  heapUsedBytes: number;
}

function fleet(pods: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < pods; i++) {
    const state = engineState({
      modelName: `org-${i % 7}/model-${i % 3}-instruct`,
      runningRequests: (i * 7) % 61,
      waitingRequests: (i * 3) % 17,
      kvUsage: ((i * 37) % 100) / 100,
      numGpuBlocks: 20_000 + ((i * 131) % 20_000),
      requestsPerSecond: 1 + (i % 5),
      engines: 1 + (i % 2),
    });
    out.push(vllmMetrics(state, 3600 + i, { full: true, createdAt: 1_753_795_326.9 + i }));
  }
  return out;
}

/**
 * Series the peer returned. It loses some: histogram `_count`/`_sum` of labelled series, and it keeps
 * the last of duplicate series silently, so this is below the payload's true count.
 */
function peerSeries(families: unknown[]): number {
  let n = 0;
  for (const family of families as {
    metrics: { buckets?: object; quantiles?: object; count?: unknown; sum?: unknown }[];
  }[]) {
    for (const m of family.metrics) {
      const parts = m.buckets ?? m.quantiles;
      if (parts !== undefined)
        n += Object.keys(parts).length + (m.count === undefined ? 0 : 1) + (m.sum === undefined ? 0 : 1);
      else n += 1;
    }
  }
  return n;
}

function lineSplit(text: string): number {
  // The least a parser must do: walk every line and read the number at its end.
  let series = 0;
  let start = 0;
  for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
    if (text.charCodeAt(start) !== 35 && end > start) {
      const space = text.lastIndexOf(' ', end);
      if (!Number.isNaN(Number(text.slice(space + 1, end)))) series++;
    }
    start = end + 1;
  }
  return series;
}

function runWorker(parser: ParserName, pods: number, passes: number): WorkerResult {
  const payloads = fleet(pods);
  const bytes = payloads.reduce((a, p) => a + Buffer.byteLength(p), 0);
  const peer = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => unknown[];
  const parseAll = (): { series: number; kept: unknown[] } => {
    const kept: unknown[] = [];
    let series = 0;
    for (const text of payloads) {
      switch (parser) {
        case 'baseline':
          break;
        case 'line-split':
          series += lineSplit(text);
          break;
        case 'tokenscaler': {
          const e = parseExposition(text);
          series += e.sampleCount;
          kept.push(e);
          break;
        }
        case 'parse-prometheus-text-format': {
          const families = peer(text);
          series += peerSeries(families);
          kept.push(families);
          break;
        }
      }
    }
    return { series, kept };
  };
  let result = parseAll(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < passes; i++) {
    result = { series: 0, kept: [] };
    const started = process.hrtime.bigint();
    result = parseAll();
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  times.sort((a, b) => a - b);
  const heapUsedBytes = process.memoryUsage().heapUsed;
  if (result.kept.length < 0) console.log('unreachable'); // keeps the results alive until measured
  return {
    parser,
    pods,
    bytes,
    series: result.series,
    medianSeconds: times[Math.floor(times.length / 2)] ?? 0,
    passes,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes,
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const pods = Number(flag('--pods') ?? 1000);
  const passes = Number(flag('--passes') ?? 5);
  const worker = flag('--worker') as ParserName | undefined;
  if (worker !== undefined) {
    process.stdout.write(`${JSON.stringify(runWorker(worker, pods, passes))}\n`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const results: WorkerResult[] = [];
  for (const parser of PARSERS) {
    const child = spawnSync(
      process.execPath,
      [self, '--worker', parser, '--pods', String(pods), '--passes', String(passes)],
      {
        encoding: 'utf8',
        maxBuffer: 1024 * 1024,
      },
    );
    if (child.status !== 0) throw new Error(`worker ${parser} failed: ${child.stderr}`);
    results.push(JSON.parse(child.stdout) as WorkerResult);
  }
  const baseline = results.find((r) => r.parser === 'baseline') as WorkerResult;
  const ours = results.find((r) => r.parser === 'tokenscaler') as WorkerResult;
  const MB = 1e6;
  const rows = results
    .filter((r) => r.parser !== 'baseline')
    .map((r) => ({
      parser: r.parser,
      mbPerSecond: r.bytes / MB / r.medianSeconds,
      // Same input for every parser: series/s counts the payload's series, not what a parser returned.
      seriesPerSecond: ours.series / r.medianSeconds,
      fleetParseMs: r.medianSeconds * 1000,
      peakRssMB: r.maxRssBytes / MB,
      parseRssMB: (r.maxRssBytes - baseline.maxRssBytes) / MB,
      seriesReturned: r.series,
      oursSpeedup: r.medianSeconds / ours.medianSeconds,
    }));
  const header = [
    'parser',
    'MB/s',
    'series/s',
    'fleet ms',
    'peak RSS MB',
    'parse RSS MB',
    'series out',
    'time / ours',
  ];
  const table = [
    header,
    ...rows.map((r) => [
      r.parser,
      r.mbPerSecond.toFixed(1),
      Math.round(r.seriesPerSecond).toLocaleString('en-US'),
      r.fleetParseMs.toFixed(0),
      r.peakRssMB.toFixed(0),
      r.parseRssMB.toFixed(0),
      r.seriesReturned.toLocaleString('en-US'),
      `${r.oursSpeedup.toFixed(2)}x`,
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] as string).length)));
  console.log(
    `exposition parser: ${pods} vLLM pods, ${(baseline.bytes / MB).toFixed(1)} MB, ${ours.series.toLocaleString('en-US')} series; median of ${passes} passes; node ${process.version}\n`,
  );
  for (const row of table)
    console.log(
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
        .join('  '),
    );
  const peer = rows.find((r) => r.parser === 'parse-prometheus-text-format');
  console.log(
    JSON.stringify({
      benchmark: 'exposition-parser',
      pods,
      bytes: baseline.bytes,
      series: ours.series,
      baselineRssBytes: baseline.maxRssBytes,
      results: rows,
      oursVsPeerSpeedup: peer === undefined ? null : peer.fleetParseMs / (ours.medianSeconds * 1000),
    }),
  );
}

main();
