import { describe, expect, it } from 'vitest';
import { GatewayConfigSchema, parseListenAddress } from './config.ts';

describe('parseListenAddress', () => {
  it.each([
    { raw: ':9464', want: { host: '0.0.0.0', port: 9464 } },
    { raw: '9464', want: { host: '0.0.0.0', port: 9464 } },
    { raw: '127.0.0.1:8080', want: { host: '127.0.0.1', port: 8080 } },
    { raw: 'localhost:0', want: { host: 'localhost', port: 0 } },
    { raw: '[::1]:8080', want: { host: '::1', port: 8080 } },
    { raw: '[::]:80', want: { host: '::', port: 80 } },
    { raw: 'host', want: undefined },
    { raw: '1.2.3.4:70000', want: undefined },
    { raw: '::1:8080', want: undefined },
    { raw: 'a b:80', want: undefined },
    { raw: '', want: undefined },
  ])('$raw', ({ raw, want }) => {
    expect(parseListenAddress(raw)).toEqual(want);
  });
});

describe('GatewayConfigSchema', () => {
  it('fills the documented defaults', () => {
    const config = GatewayConfigSchema.parse({ upstream: 'http://vllm:8000' });
    expect(config).toMatchObject({
      listen: { host: '0.0.0.0', port: 8080 },
      metricsListen: { host: '0.0.0.0', port: 9464 },
      maxBodyBytes: 32 * 2 ** 20,
      maxHeaderBytes: 16 * 1024,
      streamUsage: 'passthrough',
      defaultEncoding: 'o200k_base',
      maxModelLabels: 20,
    });
    expect(config.maxTokensCap).toBeUndefined();
    expect(config.maxPromptTokens).toBeUndefined();
  });

  it.each([
    { input: { upstream: 'ftp://x' }, path: 'upstream' },
    { input: { upstream: 'http://x', listen: 'nope' }, path: 'listen' },
    { input: { upstream: 'http://x', maxTokensCap: 0 }, path: 'maxTokensCap' },
    { input: { upstream: 'http://x', streamUsage: 'always' }, path: 'streamUsage' },
    { input: { upstream: 'http://x', unknownKey: 1 }, path: '' },
  ])('rejects $path', ({ input, path }) => {
    const result = GatewayConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path.join('.') ?? '').toBe(path);
  });
});
