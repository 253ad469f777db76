/**
 * External metrics API under HPA load: the real metrics API server (startApiServer: its fast path for
 * the polled reads in front of the express app, front-proxy authentication, prom-client request
 * metrics, 1,000 scalers in an InMemoryDecisionStore)
 * against a bare `node:https` server that answers every request with a fixed body of the same bytes
 * (the physical limit: TLS, loopback, HTTP parsing and nothing else), side by side in one run.
 *
 *   node bench/metrics-api.ts [--rates 100,1000,2000] [--seconds 3] [--rounds 4] [--connections 5]
 *                             [--scalers 1000] [--max-seconds 3] [--goal 1.5] [--publish none|tick]
 *
 * How the HPA calls us, and how this bench does:
 * - kube-apiserver proxies each HPA read over mutual TLS: a front-proxy client certificate
 *   (CN front-proxy-client, signed by the request-header CA) plus `X-Remote-User`/`X-Remote-Group`
 *   (one header line per group) and `X-Remote-Extra-*`, over pooled keep-alive HTTP/1.1
 *   connections. The load generator presents a certificate made with the real `openssl` CLI
 *   (test/support/certs.ts) and the same headers; the server is configured as kubeadm configures an
 *   extension API server (`--requestheader-allowed-names=front-proxy-client`, client CA too).
 * - Requests are `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/tokenscaler_desired_replicas
 *   ?labelSelector=tokenscaler.dev%2Fname%3D{name}`, cycling over all scalers (20 namespaces x 50).
 * - The HPA controller runs 5 workers (`--concurrent-horizontal-pod-autoscaler-syncs`,
 *   reference/external-metrics-contract.md §5.1), so at most 5 reads are in flight: 5 connections.
 * - Load comes from autocannon at a FIXED overall rate. Its limiter gives each connection a quota per
 *   second, sent back to back at the start of the second, then idles: bursts of 5 in flight, like the
 *   HPA's resync that re-queues every HPA each 15 s. 1,000 HPAs / 15 s is about 67 reads per second,
 *   so 100 req/s is a real fleet with headroom and the higher rates are stress.
 *
 * With `--publish none` (the default) nothing is published while the load runs, so the real server
 * answers every read after the first of each URL from the answer it kept for the store's version
 * (src/api/fast-path.ts). In a cluster the reconcile loop publishes every scaler each tick, about
 * as often as the HPA reads it, so nearly every read follows a publish of its scaler and the kept
 * answer is stale. `--publish tick` measures that: the API process republishes every scaler (a new
 * Decision, same values, new timestamp) once per read cycle (scalers / rate seconds), spread
 * evenly in 10 ms steps as scalers finish their observations at different times in a real tick.
 * The publishing runs in the API process, so its CPU (including serialising each scaler as it is
 * published) counts in the API's CPU per request. Unthrottled runs publish nothing.
 *
 * Each server runs in its own process (neither shares an event loop with the load generator, which
 * is this process). Rounds alternate the order of the servers so drift (other work on the machine)
 * hits both. Latency is autocannon's per-request time (request written to response complete), kept
 * at full float resolution (autocannon's own histogram rounds to whole milliseconds, too coarse
 * here); the first response of each connection carries its TLS handshake and is left out, since the
 * aggregator keeps connections pooled. Server CPU per request comes from /proc/PID/stat.
 *
 * Prints a table and one JSON line; exits 1 when a fixed rate's p99 ratio misses the goal or the
 * real server cannot sustain a rate, 2 when any request fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    pki: { type: 'string' },
    'body-file': { type: 'string' },
    rates: { type: 'string', default: '100,1000,2000' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '5' },
    scalers: { type: 'string', default: '1000' },
    'max-seconds': { type: 'string', default: '3' },
    goal: { type: 'string', default: '1.5' },
    publish: { type: 'string', default: 'none' },
  },
});

const METRIC = 'tokenscaler_desired_replicas';
const NAMESPACES = 20;
const FRONT_PROXY_CN = 'front-proxy-client';
const HPA_USER = 'system:serviceaccount:kube-system:horizontal-pod-autoscaler';
/** Both servers keep idle connections this long (server.ts sizes it for 15 s HPA polling). */
const KEEP_ALIVE_MS = 60_000;

/** Files the PKI step writes and both server roles read. */
const PKI_FILES = {
  cert: 'serving.crt',
  key: 'serving.key',
  frontProxyCa: 'front-proxy-ca.crt',
  clientCa: 'client-ca.crt',
  frontProxyClientCert: 'front-proxy-client.crt',
  frontProxyClientKey: 'front-proxy-client.key',
};

function scalerAt(index: number): { namespace: string; name: string } {
  return {
    namespace: `team-${String(index % NAMESPACES).padStart(2, '0')}`,
    name: `scaler-${String(index).padStart(4, '0')}`,
  };
}

/** 1 to 40 replicas, varied so answers differ per scaler. */
function expectedReplicas(index: number): number {
  return 1 + ((index * 7) % 40);
}

function metricPath(index: number): string {
  const { namespace, name } = scalerAt(index);
  // The aggregator forwards the query as the HPA encoded it.
  const selector = encodeURIComponent(`tokenscaler.dev/name=${name}`);
  return `/apis/external.metrics.k8s.io/v1beta1/namespaces/${namespace}/${METRIC}?labelSelector=${selector}`;
}

const pkiPath = (file: string) => `${values.pki ?? ''}/${file}`;

// ---------------------------------------------------------------------------------------------
// Server roles: each prints its URL on stdout and serves until SIGTERM.

async function serveApi(): Promise<void> {
  const { InMemoryDecisionStore } = await import('../src/api/decision-store.ts');
  const { DEFAULT_API_SERVER_OPTIONS, startApiServer } = await import('../src/api/server.ts');
  const { DEFAULT_REQUEST_HEADER_CONFIG } = await import('../src/api/auth.ts');
  const { createApiMetrics } = await import('../src/api/metrics.ts');
  const scalers = Number(values.scalers);
  const store = new InMemoryDecisionStore();
  const publish = (i: number) => {
    const { namespace, name } = scalerAt(i);
    const replicas = expectedReplicas(i);
    const tokensPerReplica = 120_000;
    // Demand that needs exactly `replicas` at 80 % KV target: e.g. 3 replicas -> 288,000 tokens.
    const demandTokens = replicas * tokensPerReplica * 0.8;
    store.publish(namespace, name, {
      decidedAtSeconds: Math.floor(Date.now() / 1000),
      desiredReplicas: replicas,
      bindingConstraint: 'kv-memory',
      reason: `kv-memory: ${demandTokens} demand tokens / (${tokensPerReplica} tokens per replica x 0.8) = ${replicas} replicas`,
      demandTokens,
      inflightTokens: Math.round(demandTokens * 0.9),
      waitingTokens: 0,
      tokensPerReplica,
      requestTokensP95: 9_000,
      fits: true,
      metricsAvailable: true,
      fallbackActive: false,
      terms: { kvReplicas: replicas },
    });
  };
  for (let i = 0; i < scalers; i++) {
    const { namespace, name } = scalerAt(i);
    store.register(namespace, name, { demandWindowSeconds: 300 });
    publish(i);
  }
  store.markSynced();
  if (values.publish === 'tick') republishOnTicks(scalers, publish);
  const stderr = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    process.stderr.write(`[api ${level}] ${message} ${fields ? JSON.stringify(fields) : ''}\n`);
  const server = await startApiServer(
    {
      ...DEFAULT_API_SERVER_OPTIONS,
      bindAddress: '127.0.0.1',
      port: 0,
      tls: {
        certFile: pkiPath(PKI_FILES.cert),
        keyFile: pkiPath(PKI_FILES.key),
        requestHeaderCaFile: pkiPath(PKI_FILES.frontProxyCa),
        clientCaFile: pkiPath(PKI_FILES.clientCa),
      },
      requestHeader: { ...DEFAULT_REQUEST_HEADER_CONFIG, allowedNames: [FRONT_PROXY_CN] },
    },
    {
      store,
      // Production wiring (cli/controller-runtime.ts) records every request in prom-client.
      metrics: createApiMetrics(new Registry()),
      logger: { info: () => undefined, warn: stderr('warn'), error: stderr('error') },
    },
  );
  console.log(server.url);
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

/**
 * `--publish tick`: the orchestrator sends `{ tickSeconds }` before each load (0: stop); every
 * scaler is then republished once per tick, in index order, a share every 10 ms. Acknowledged
 * with the same message once applied.
 */
function republishOnTicks(scalers: number, publish: (index: number) => void): void {
  const STEP_MS = 10;
  let timer: NodeJS.Timeout | undefined;
  let next = 0;
  process.on('message', (message: { tickSeconds?: unknown }) => {
    const tickSeconds = Number(message.tickSeconds);
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    if (tickSeconds > 0) {
      // e.g. 1,000 scalers at 2,000 reads/s: a 0.5 s tick, 20 publishes every 10 ms.
      const perMs = scalers / (tickSeconds * 1000);
      let due = 0;
      let last = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        due += (now - last) * perMs;
        last = now;
        for (; due >= 1; due -= 1) {
          publish(next);
          next = (next + 1) % scalers;
        }
      }, STEP_MS);
    }
    process.send?.({ tickSeconds });
  });
}

async function serveBare(): Promise<void> {
  const [cert, key, body] = await Promise.all([
    readFile(pkiPath(PKI_FILES.cert)),
    readFile(pkiPath(PKI_FILES.key)),
    readFile(values['body-file'] ?? ''),
  ]);
  // The same TLS setup as the real server (client certificate requested, not required), so the
  // only difference left is the application.
  const server = createServer(
    { cert, key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (_request, response) => {
      response.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': body.length,
      });
      response.end(body);
    },
  );
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('bare server has no TCP address');
  console.log(`https://127.0.0.1:${address.port}`);
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------------------------
// Load generator and report.

/** The subset of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(
    event: 'response',
    listener: (client: object, statusCode: number, bytes: number, responseTimeMs: number) => void,
  ): void;
}
interface AutocannonResult {
  /** Connection errors and timeouts. */
  errors: number;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

type ServerName = 'bare' | 'api';
const SERVERS: readonly ServerName[] = ['bare', 'api'];

interface Child {
  process: ChildProcess;
  url: string;
}

function startChild(args: string[], options: { ipc?: boolean } = {}): Promise<Child> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, ...args], {
    stdio: options.ipc === true ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child ${args.join(' ')} exited with ${code}`));
    child.once('exit', onExit);
    child.stdout?.setEncoding('utf8');
    child.stdout?.once('data', (text: string) => {
      child.off('exit', onExit);
      resolve({ process: child, url: text.trim().split('\n')[0] ?? '' });
    });
  });
}

/** `--publish tick`: sets the API process's publish tick for the next load and waits until it applies. */
async function setPublishTick(child: Child, tickSeconds: number): Promise<void> {
  if (child.process.send === undefined || !child.process.connected) return;
  const applied = once(child.process, 'message');
  child.process.send({ tickSeconds });
  await applied;
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null) return;
  const exited = once(child.process, 'exit');
  child.process.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  if (child.process.exitCode === null) child.process.kill('SIGKILL');
}

interface Credentials {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** The headers kube-apiserver's aggregator sends with an HPA read (identity from the HPA's token). */
const AGGREGATOR_HEADERS: Record<string, string> = {
  Host: 'tokenscaler.tokenscaler.svc:443',
  'User-Agent': `kube-controller-manager/v1.33.1 (linux/amd64) kubernetes/8adc0f0/${HPA_USER}`,
  Accept: 'application/json, */*',
  'Accept-Encoding': 'gzip',
  'X-Remote-User': HPA_USER,
  // One line per group, as Go's Header.Add writes them (distinct keys, same header name).
  'X-Remote-Group': 'system:serviceaccounts',
  'x-remote-group': 'system:serviceaccounts:kube-system',
  'X-REMOTE-GROUP': 'system:authenticated',
  'X-Remote-Extra-Authentication.kubernetes.io%2fcredential-Id': 'JTI=5c1e0b0e-3f7a-4a8e-9d55-2f4a7c3b1a90',
  'X-Forwarded-For': '10.96.0.1',
  'X-Forwarded-Proto': 'https',
};

/** One GET with Node's own client, for the checks before the load. */
function get(
  url: string,
  credentials: Credentials,
  withClientCertificate: boolean,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        ca: credentials.ca,
        servername: 'localhost',
        ...(withClientCertificate ? { cert: credentials.cert, key: credentials.key } : {}),
        headers: AGGREGATOR_HEADERS,
        agent: false,
        signal: AbortSignal.timeout(5_000),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** The real server answers with the scaler's replicas, and refuses a caller without a certificate. */
async function checkApi(url: string, credentials: Credentials, scalers: number): Promise<Buffer> {
  let sample: Buffer | undefined;
  for (const index of [0, Math.floor(scalers / 2), scalers - 1]) {
    const { status, body } = await get(`${url}${metricPath(index)}`, credentials, true);
    const parsed = JSON.parse(body.toString('utf8')) as {
      items?: Array<{ value?: string; metricLabels?: Record<string, string> }>;
    };
    const item = parsed.items?.[0];
    const want = String(expectedReplicas(index));
    if (
      status !== 200 ||
      parsed.items?.length !== 1 ||
      item?.value !== want ||
      item.metricLabels?.['tokenscaler.dev/name'] !== scalerAt(index).name
    ) {
      throw new Error(
        `api check: ${metricPath(index)} answered ${status} ${body} (want one item, value ${want})`,
      );
    }
    sample ??= body;
  }
  const anonymous = await get(`${url}${metricPath(0)}`, credentials, false);
  if (anonymous.status !== 401) {
    throw new Error(
      `api check: a request without a client certificate answered ${anonymous.status}, want 401`,
    );
  }
  if (sample === undefined) throw new Error('api check: no sample body');
  return sample;
}

/** utime + stime of a process in seconds (Linux); undefined elsewhere. */
async function cpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    // USER_HZ is 100 on every Linux build Node supports.
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

interface Sample {
  latenciesMs: number[];
  ok: number;
  failed: number;
  connectionSetupsExcluded: number;
  seconds: number;
  serverCpuSeconds: number | undefined;
}

function emptySample(): Sample {
  return {
    latenciesMs: [],
    ok: 0,
    failed: 0,
    connectionSetupsExcluded: 0,
    seconds: 0,
    serverCpuSeconds: 0,
  };
}

async function drive(
  child: Child,
  credentials: Credentials,
  options: { rate: number | undefined; seconds: number; connections: number; scalers: number },
  into: Sample,
): Promise<void> {
  const requests = Array.from({ length: options.scalers }, (_, i) => ({
    method: 'GET',
    path: metricPath(i),
  }));
  const seen = new WeakSet<object>();
  // --publish tick: the API process republishes every scaler once per read cycle during this load.
  await setPublishTick(child, options.rate === undefined ? 0 : options.scalers / options.rate);
  const cpuBefore = await cpuSeconds(child.process.pid);
  const started = performance.now();
  const instance = autocannon({
    url: child.url,
    servername: 'localhost',
    tlsOptions: { cert: credentials.cert, key: credentials.key },
    headers: AGGREGATOR_HEADERS,
    requests,
    connections: options.connections,
    ...(options.rate === undefined ? {} : { overallRate: options.rate }),
    // autocannon releases each connection's quota at every whole second after the start, and only
    // stops at its next sampling tick: sampling every 100 ms and stopping 0.2 s before second N
    // sends exactly N quotas (stopping at N would race the Nth tick and add a partial burst).
    duration: options.rate === undefined ? options.seconds : options.seconds - 0.2,
    sampleInt: 100,
    timeout: 10,
  });
  instance.on('response', (client, statusCode, _bytes, responseTimeMs) => {
    if (statusCode !== 200) {
      into.failed += 1;
      return;
    }
    if (!seen.has(client)) {
      seen.add(client);
      into.connectionSetupsExcluded += 1;
      return;
    }
    into.ok += 1;
    into.latenciesMs.push(responseTimeMs);
  });
  const result = await instance;
  // At a fixed rate, served / quota-seconds is the rate achieved (it falls short when a server
  // cannot finish a second's quota within the second); unthrottled, it is served / wall time.
  const seconds = options.rate === undefined ? (performance.now() - started) / 1000 : options.seconds;
  const cpuAfter = await cpuSeconds(child.process.pid);
  await setPublishTick(child, 0);
  // autocannon counts a timeout in `errors` too.
  into.failed += result.errors;
  into.seconds += seconds;
  into.serverCpuSeconds =
    cpuBefore === undefined || cpuAfter === undefined || into.serverCpuSeconds === undefined
      ? undefined
      : into.serverCpuSeconds + (cpuAfter - cpuBefore);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

interface Stats {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requestsPerSecond: number;
  cpuMicrosecondsPerRequest: number | undefined;
  samples: number;
  failed: number;
}

function stats(sample: Sample): Stats {
  const sorted = Float64Array.from(sample.latenciesMs).sort();
  const served = sample.ok + sample.connectionSetupsExcluded;
  return {
    p50Ms: quantile(Array.from(sorted), 0.5),
    p99Ms: quantile(Array.from(sorted), 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    requestsPerSecond: sample.seconds > 0 ? served / sample.seconds : Number.NaN,
    cpuMicrosecondsPerRequest:
      sample.serverCpuSeconds === undefined || served === 0
        ? undefined
        : (sample.serverCpuSeconds / served) * 1e6,
    samples: sorted.length,
    failed: sample.failed,
  };
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`--${name}: ${JSON.stringify(text)} is not allowed; give a positive integer`);
  }
  return value;
}

async function orchestrate(): Promise<number> {
  const rates = (values.rates ?? '').split(',').map((rate) => positiveInteger('rates', rate));
  const seconds = positiveInteger('seconds', values.seconds);
  const rounds = positiveInteger('rounds', values.rounds);
  const connections = positiveInteger('connections', values.connections);
  const scalers = positiveInteger('scalers', values.scalers);
  const maxSeconds = Number(values['max-seconds']);
  const goal = Number(values.goal);
  if (!(maxSeconds >= 0))
    throw new Error(`--max-seconds: ${values['max-seconds']} is not allowed; give 0 or more`);
  if (!(goal > 0)) throw new Error(`--goal: ${values.goal} is not allowed; give a ratio above 0`);
  const publish = values.publish;
  if (publish !== 'none' && publish !== 'tick') {
    throw new Error(`--publish: ${JSON.stringify(publish)} is not allowed; give none or tick`);
  }

  const { TestPki } = await import('../test/support/certs.ts');
  const pki = await TestPki.create('tokenscaler-bench-metrics-api-');
  const children: Partial<Record<ServerName, Child>> = {};
  try {
    const [servingCa, frontProxyCa, clientCa] = await Promise.all([
      pki.createCa('serving-ca'),
      pki.createCa('front-proxy-ca'),
      pki.createCa('client-ca'),
    ]);
    const [serving, frontProxyClient] = await Promise.all([
      pki.issueServing(servingCa, 'serving'),
      pki.issue(frontProxyCa, { name: 'front-proxy-client', commonName: FRONT_PROXY_CN, usage: 'client' }),
    ]);
    if (
      serving.certPath !== pki.path(PKI_FILES.cert) ||
      frontProxyCa.certPath !== pki.path(PKI_FILES.frontProxyCa) ||
      clientCa.certPath !== pki.path(PKI_FILES.clientCa)
    ) {
      throw new Error('PKI file names differ from what the server roles read');
    }
    const credentials: Credentials = {
      cert: Buffer.from(frontProxyClient.certPem),
      key: Buffer.from(frontProxyClient.keyPem),
      ca: Buffer.from(servingCa.certPem),
    };

    children.api = await startChild(
      ['--role', 'api', '--pki', pki.dir, '--scalers', String(scalers), '--publish', publish],
      { ipc: publish === 'tick' },
    );
    const body = await checkApi(children.api.url, credentials, scalers);
    console.log(
      'check: the metrics API answers the replicas of each scaler, and 401 without a certificate (it logs that)',
    );
    const bodyFile = pki.path('bare-body.json');
    await writeFile(bodyFile, body);
    children.bare = await startChild(['--role', 'bare', '--pki', pki.dir, '--body-file', bodyFile]);
    const bare = await get(`${children.bare.url}${metricPath(0)}`, credentials, true);
    if (bare.status !== 200 || !bare.body.equals(body)) throw new Error('bare check: unexpected answer');
    const running = children as Record<ServerName, Child>;

    const load = { connections, scalers };
    // Warm both (JIT, connection pools, the store's list caches) at the highest fixed rate.
    const warmRate = Math.max(...rates);
    for (const server of SERVERS) {
      await drive(running[server], credentials, { ...load, rate: warmRate, seconds: 2 }, emptySample());
    }

    const fixed = new Map<number, Record<ServerName, Sample>>(
      rates.map((rate) => [rate, { bare: emptySample(), api: emptySample() }]),
    );
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
      for (const rate of rates) {
        for (const server of order) {
          const into = fixed.get(rate)?.[server] ?? emptySample();
          await drive(running[server], credentials, { ...load, rate, seconds }, into);
        }
      }
    }
    const saturated: Record<ServerName, Sample> = { bare: emptySample(), api: emptySample() };
    if (maxSeconds > 0) {
      for (const server of SERVERS) {
        await drive(
          running[server],
          credentials,
          { ...load, rate: undefined, seconds: maxSeconds },
          saturated[server],
        );
      }
    }

    return report({
      rates,
      seconds,
      rounds,
      connections,
      scalers,
      goal,
      publish,
      bodyBytes: body.length,
      fixed,
      saturated,
      maxSeconds,
    });
  } finally {
    await Promise.all(Object.values(children).map((child) => stopChild(child)));
    await pki.dispose();
  }
}

function report(run: {
  rates: number[];
  seconds: number;
  rounds: number;
  connections: number;
  scalers: number;
  goal: number;
  publish: 'none' | 'tick';
  bodyBytes: number;
  fixed: Map<number, Record<ServerName, Sample>>;
  saturated: Record<ServerName, Sample>;
  maxSeconds: number;
}): number {
  const rows = run.rates.map((rate) => {
    const samples = run.fixed.get(rate) ?? { bare: emptySample(), api: emptySample() };
    const bare = stats(samples.bare);
    const api = stats(samples.api);
    // The real server kept up when it served at least 95 % of the asked rate.
    const sustained = api.requestsPerSecond >= 0.95 * rate;
    const p99Ratio = api.p99Ms / bare.p99Ms;
    return {
      rate,
      bare,
      api,
      p50Ratio: api.p50Ms / bare.p50Ms,
      p99Ratio,
      throughputRatio: api.requestsPerSecond / bare.requestsPerSecond,
      sustained,
      meetsGoal: sustained && p99Ratio <= run.goal,
    };
  });
  const saturation =
    run.maxSeconds > 0 ? { bare: stats(run.saturated.bare), api: stats(run.saturated.api) } : undefined;

  const f = (n: number | undefined, digits = 3) =>
    (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits)).padStart(10);
  const [load1] = loadavg();
  console.log(
    `\nExternal metrics API vs bare node:https, ${run.scalers} scalers, ${run.connections} connections (HPA workers), ` +
      `${run.rounds} rounds x ${run.seconds} s per rate and server, body ${run.bodyBytes} B, ` +
      `${run.publish === 'tick' ? 'every scaler republished once per read cycle' : 'nothing published during the load'}, ` +
      `${cpus().length} CPUs, load average ${load1?.toFixed(2)} at the end\n`,
  );
  const header = `${'rate/s'.padEnd(8)}${'server'.padEnd(8)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'max ms'.padStart(10)}${'req/s'.padStart(10)}${'CPU us/req'.padStart(11)}${'samples'.padStart(9)}`;
  console.log(header);
  const line = (label: string, server: string, s: Stats) =>
    console.log(
      `${label.padEnd(8)}${server.padEnd(8)}${f(s.p50Ms)}${f(s.p99Ms)}${f(s.maxMs)}${f(s.requestsPerSecond, 0)}${f(s.cpuMicrosecondsPerRequest, 0).padStart(11)}${String(s.samples).padStart(9)}`,
    );
  for (const row of rows) {
    line(String(row.rate), 'bare', row.bare);
    line(String(row.rate), 'api', row.api);
    console.log(
      `${''.padEnd(8)}${'ratio'.padEnd(8)}${f(row.p50Ratio, 2)}${f(row.p99Ratio, 2)}${''.padStart(10)}${f(row.throughputRatio, 2)}   ${row.meetsGoal ? 'ok' : row.sustained ? `p99 above ${run.goal}x` : 'rate not sustained'}`,
    );
  }
  if (saturation !== undefined) {
    line('max', 'bare', saturation.bare);
    line('max', 'api', saturation.api);
    console.log(
      `${''.padEnd(8)}${'ratio'.padEnd(8)}${f(saturation.api.p50Ms / saturation.bare.p50Ms, 2)}${f(saturation.api.p99Ms / saturation.bare.p99Ms, 2)}${''.padStart(10)}${f(saturation.api.requestsPerSecond / saturation.bare.requestsPerSecond, 2)}   (unthrottled, ${run.maxSeconds} s, not a goal)`,
    );
  }
  const failed =
    rows.reduce((sum, row) => sum + row.bare.failed + row.api.failed, 0) +
    (saturation === undefined ? 0 : saturation.bare.failed + saturation.api.failed);
  const meetsGoal = rows.every((row) => row.meetsGoal);
  const round = (n: number | undefined, digits = 3) =>
    n === undefined || Number.isNaN(n) ? null : Number(n.toFixed(digits));
  console.log(
    JSON.stringify({
      bench: 'metrics-api',
      scalers: run.scalers,
      connections: run.connections,
      rounds: run.rounds,
      secondsPerRun: run.seconds,
      publish: run.publish,
      bodyBytes: run.bodyBytes,
      goalP99Ratio: run.goal,
      meetsGoal,
      failedRequests: failed,
      rows: rows.map((row) => ({
        rate: row.rate,
        p50Ratio: round(row.p50Ratio, 2),
        p99Ratio: round(row.p99Ratio, 2),
        throughputRatio: round(row.throughputRatio, 2),
        sustained: row.sustained,
        bare: {
          p50Ms: round(row.bare.p50Ms),
          p99Ms: round(row.bare.p99Ms),
          requestsPerSecond: round(row.bare.requestsPerSecond, 0),
          cpuMicrosecondsPerRequest: round(row.bare.cpuMicrosecondsPerRequest, 0),
        },
        api: {
          p50Ms: round(row.api.p50Ms),
          p99Ms: round(row.api.p99Ms),
          requestsPerSecond: round(row.api.requestsPerSecond, 0),
          cpuMicrosecondsPerRequest: round(row.api.cpuMicrosecondsPerRequest, 0),
        },
      })),
      ...(saturation === undefined
        ? {}
        : {
            saturation: {
              bareRequestsPerSecond: round(saturation.bare.requestsPerSecond, 0),
              apiRequestsPerSecond: round(saturation.api.requestsPerSecond, 0),
              throughputRatio: round(saturation.api.requestsPerSecond / saturation.bare.requestsPerSecond, 2),
            },
          }),
    }),
  );
  if (failed > 0) {
    console.error(`${failed} requests failed (non-200, connection errors or timeouts)`);
    return 2;
  }
  if (!meetsGoal) {
    console.error(
      `goal missed: p99 of the metrics API must stay within ${run.goal}x of the bare server at every fixed rate`,
    );
    return 1;
  }
  return 0;
}

// Dispatch last: the constants above must be initialised before a role runs.
if (values.role === 'api') {
  await serveApi();
} else if (values.role === 'bare') {
  await serveBare();
} else {
  process.exitCode = await orchestrate();
}
