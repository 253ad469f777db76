/**
 * Starts a real Prometheus server (the Debian package `prometheus`, listed in .ci/apt-packages) for
 * integration tests: a temporary config and TSDB directory, a free loopback port, file-based service
 * discovery so a test can add and remove targets while it runs, and a clean stop that removes
 * everything. Reusable by any suite that needs PromQL against real scrapes.
 *
 *   const prom = await startPrometheus({ targets: ['127.0.0.1:8001'], scrapeIntervalSeconds: 1 });
 *   await prom.waitForTargets(1);
 *   ... query prom.url ...
 *   await prom.stop();
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrometheusServerOptions {
  /** host:port of the endpoints to scrape. */
  targets: readonly string[];
  scrapeIntervalSeconds?: number;
  metricsPath?: string;
  /** Labels added to every target (e.g. { namespace: 'inference', app: 'vllm' }). */
  labels?: Readonly<Record<string, string>>;
  /** Path of the prometheus binary; default $PROMETHEUS_BIN or `prometheus` on PATH. */
  binary?: string;
}

export interface PrometheusServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Replaces the scraped targets (file service discovery; Prometheus notices within a second or two). */
  setTargets(targets: readonly string[]): Promise<void>;
  /** Resolves when `count` targets are up (last scrape succeeded); rejects after `timeoutMs`. */
  waitForTargets(count: number, timeoutMs?: number): Promise<void>;
  /** Runs an instant query and returns the raw `data.result`. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

/** Finds the binary or explains how to get it. */
export function prometheusBinary(explicit?: string): string {
  const candidate = explicit ?? process.env.PROMETHEUS_BIN ?? 'prometheus';
  try {
    execFileSync(candidate, ['--version'], { stdio: 'ignore' });
    return candidate;
  } catch (error) {
    throw new Error(
      `Prometheus binary "${candidate}" not found: install the Debian package (apt-get install -y prometheus, listed in .ci/apt-packages) or set PROMETHEUS_BIN`,
      { cause: error },
    );
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startPrometheus(options: PrometheusServerOptions): Promise<PrometheusServer> {
  const binary = prometheusBinary(options.binary);
  const dir = await mkdtemp(join(tmpdir(), 'tokenscaler-prometheus-'));
  const targetsFile = join(dir, 'targets.json');
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const writeTargets = async (targets: readonly string[]) => {
    const tmp = `${targetsFile}.tmp`;
    await writeFile(tmp, JSON.stringify([{ targets, labels: options.labels ?? {} }]));
    await rename(tmp, targetsFile); // atomic: Prometheus never reads half a file
  };
  await writeTargets(options.targets);
  // JSON is YAML: no YAML writer needed for the config.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: 'engines',
        metrics_path: options.metricsPath ?? '/metrics',
        file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }],
      },
    ],
  };
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(url, child, () => stderr);
      return handle(url, port, dir, child, writeTargets);
    } catch (error) {
      lastError = error;
      await stopChild(child);
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr()}`);
    try {
      const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`prometheus did not become ready within 30 s: ${stderr()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function handle(
  url: string,
  port: number,
  dir: string,
  child: ChildProcess,
  writeTargets: (targets: readonly string[]) => Promise<void>,
): PrometheusServer {
  const query = async (promql: string) => {
    const response = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      body: new URLSearchParams({ query: promql }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await response.json()) as { status: string; error?: string; data?: { result: unknown } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
    return body.data?.result as { metric: Record<string, string>; value: [number, string] }[];
  };
  return {
    url,
    port,
    dataDir: join(dir, 'data'),
    setTargets: writeTargets,
    query,
    async waitForTargets(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let up = 0;
      while (Date.now() < deadline) {
        const value = (await query('sum(up)'))[0]?.value[1];
        up = value === undefined ? 0 : Number(value);
        if (up >= count) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(`only ${up} of ${count} targets up after ${timeoutMs} ms`);
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
