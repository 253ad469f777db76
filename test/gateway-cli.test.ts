/**
 * `tokenscaler gateway` as a real process: flags, the startup log line with the bound addresses,
 * proxying, its /metrics, and SIGTERM draining an in-flight stream before exiting 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeUpstream } from './gateway-fake-upstream.ts';
import { metricValue, postJson, scrape } from './gateway-helpers.ts';

const upstream = new FakeUpstream();
beforeAll(() => upstream.start());
afterAll(() => upstream.stop());

function startCli(
  args: string[],
): Promise<{ child: ChildProcess; proxyUrl: string; metricsUrl: string; stderr: string[] }> {
  const child = spawn(process.execPath, ['src/main.ts', 'gateway', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr.join('')}`)), 20_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr.push(text);
      const line = stderr
        .join('')
        .split('\n')
        .find((l) => l.includes('"gateway listening"'));
      if (line !== undefined) {
        clearTimeout(timer);
        const { proxyUrl, metricsUrl } = JSON.parse(line);
        resolve({ child, proxyUrl, metricsUrl, stderr });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr.join('')}`)));
  });
}

describe('tokenscaler gateway (process)', () => {
  it('proxies, serves metrics, and drains an in-flight stream on SIGTERM', { timeout: 60_000 }, async () => {
    const { child, proxyUrl, metricsUrl } = await startCli([
      '--upstream',
      upstream.url,
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--models',
      'gpt-4o',
      '--drain-timeout-seconds',
      '10',
    ]);
    const res = await postJson(`${proxyUrl}/v1/chat/completions`, {
      model: 'gpt-4o',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(res.status).toBe(200);
    const text = await scrape(metricsUrl);
    expect(metricValue(text, 'tokenscaler_gateway_requests_total', { model: 'gpt-4o', code: '200' })).toBe(1);
    expect(text).toContain('process_cpu_seconds_total');

    // A stream whose first token comes after 500 ms is in flight when SIGTERM arrives; it must complete.
    const streamed = new Promise<string>((resolve, reject) => {
      const req = http.request(
        `${proxyUrl}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake': 'first-delay-500' } },
        (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => {
            body += c;
          });
          r.on('end', () => resolve(body));
          r.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(
        JSON.stringify({
          model: 'gpt-4o',
          stream: true,
          max_tokens: 3,
          messages: [{ role: 'user', content: 'x' }],
        }),
      );
    });
    // SIGTERM once the upstream holds the request, i.e. while it waits for its first token.
    const deadline = Date.now() + 10_000;
    while (!upstream.received.some((r) => r.body.includes('"stream":true')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await streamed).toContain('data: [DONE]');
    expect(await exited).toBe(0);
  });

  it('exits 2 naming the flag on bad input', async () => {
    const child = spawn(
      process.execPath,
      ['src/main.ts', 'gateway', '--upstream', 'http://x', '--stream-usage', 'sometimes'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (t: string) => {
      stderr += t;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain(
      '--stream-usage: "sometimes" is not allowed; expected one of passthrough, inject',
    );
  });
});
