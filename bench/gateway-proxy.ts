/**
 * Proxy overhead: the same requests sent directly to a fake OpenAI-compatible upstream and through
 * the gateway to it, side by side in one run, in alternating rounds so drift hits both equally.
 *
 *   node bench/gateway-proxy.ts [--requests 1000] [--concurrency 16] [--rounds 3]
 *
 * The upstream and the gateway each run in their own process (as in production, where they do not
 * share a CPU thread with the client); this process only generates load. Workloads: non-streaming
 * chat and streaming chat (16 output chunks, default passthrough mode), each with a ~1,000-token
 * prompt whose system part repeats across requests. Latency is to the last byte of the response.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    upstream: { type: 'string' },
    requests: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
  },
});

/** Child roles print their URL on stdout and serve until killed. */
if (values.role === 'upstream') {
  const { FakeUpstream } = await import('../test/gateway-fake-upstream.ts');
  const fake = new FakeUpstream();
  console.log(await fake.start());
  // Keep only the counts the benchmark does not need to grow without bound.
  setInterval(() => fake.received.splice(0), 1000).unref();
} else if (values.role === 'gateway') {
  const { GatewayConfigSchema } = await import('../src/gateway/config.ts');
  const { Gateway } = await import('../src/gateway/gateway.ts');
  const config = GatewayConfigSchema.parse({
    upstream: values.upstream,
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
  });
  const quiet = () => undefined;
  const gateway = new Gateway({
    config,
    logger: { info: quiet, warn: quiet, error: quiet },
    registry: new Registry(),
  });
  console.log((await gateway.start()).proxyUrl);
  process.once('SIGINT', () => void gateway.stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void gateway.stop().then(() => process.exit(0)));
} else {
  await orchestrate();
}

function startChild(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding('utf8');
    child.stdout?.once('data', (text: string) => resolve({ child, url: text.trim().split('\n')[0] ?? '' }));
    child.once('exit', (code) => reject(new Error(`child ${args.join(' ')} exited with ${code}`)));
  });
}

function post(url: string, body: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`status ${res.statusCode}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function load(url: string, bodies: string[], concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] ?? '';
        latencies.push(await post(url, body, agent));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, seconds };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

async function orchestrate(): Promise<void> {
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const upstream = await startChild(['--role', 'upstream']);
  const gateway = await startChild(['--role', 'gateway', '--upstream', upstream.url]);
  const system = 'You are the capacity planner of an inference platform. '.repeat(60);
  const bodies = (stream: boolean) =>
    Array.from({ length: requests }, (_, i) =>
      JSON.stringify({
        model: 'gpt-4o',
        max_tokens: 16,
        stream,
        messages: [
          { role: 'system', content: system },
          {
            role: 'user',
            content: `Request ${i}: how many replicas for ${i % 97} requests per second of ${1000 + i} tokens?`,
          },
        ],
      }),
    );
  const workloads = { 'chat, non-streaming': bodies(false), 'chat, streaming': bodies(true) };
  const results: Record<string, Record<'direct' | 'gateway', { latencies: number[]; seconds: number }>> = {};
  try {
    for (const [name, list] of Object.entries(workloads)) {
      // Warm both paths (connections, JIT, the gateway's caches) before measuring.
      await load(`${upstream.url}/v1/chat/completions`, list.slice(0, 200), concurrency);
      await load(`${gateway.url}/v1/chat/completions`, list.slice(0, 200), concurrency);
      const acc = {
        direct: { latencies: [] as number[], seconds: 0 },
        gateway: { latencies: [] as number[], seconds: 0 },
      };
      for (let r = 0; r < rounds; r++) {
        for (const [path, base] of [
          ['direct', upstream.url],
          ['gateway', gateway.url],
        ] as const) {
          const { latencies, seconds } = await load(`${base}/v1/chat/completions`, list, concurrency);
          acc[path].latencies.push(...latencies);
          acc[path].seconds += seconds;
        }
      }
      results[name] = acc;
    }
  } finally {
    gateway.child.kill('SIGTERM');
    upstream.child.kill('SIGTERM');
  }

  const rows = Object.entries(results).map(([name, r]) => {
    const stats = (x: { latencies: number[]; seconds: number }) => {
      const sorted = [...x.latencies].sort((a, b) => a - b);
      return {
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        requestsPerSecond: sorted.length / x.seconds,
      };
    };
    const direct = stats(r.direct);
    const viaGateway = stats(r.gateway);
    return {
      workload: name,
      direct,
      gateway: viaGateway,
      overheadP50Ms: viaGateway.p50Ms - direct.p50Ms,
      overheadP99Ms: viaGateway.p99Ms - direct.p99Ms,
      throughputRatio: viaGateway.requestsPerSecond / direct.requestsPerSecond,
    };
  });
  const f = (n: number, d = 2) => n.toFixed(d).padStart(9);
  console.log(
    `\nProxy overhead: ${rounds} rounds x ${requests} requests per path, concurrency ${concurrency}\n`,
  );
  console.log(
    `${'workload'.padEnd(22)}${'path'.padEnd(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'req/s'.padStart(9)}`,
  );
  for (const row of rows) {
    for (const path of ['direct', 'gateway'] as const) {
      const s = row[path];
      console.log(
        `${row.workload.padEnd(22)}${path.padEnd(9)}${f(s.p50Ms)}${f(s.p99Ms)}${f(s.requestsPerSecond, 0)}`,
      );
    }
    console.log(
      `${''.padEnd(22)}${'overhead'.padEnd(9)}${f(row.overheadP50Ms)}${f(row.overheadP99Ms)}${`${(100 * row.throughputRatio).toFixed(0)}%`.padStart(9)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'gateway-proxy', requests, concurrency, rounds, rows }));
}
