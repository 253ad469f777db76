import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SERVING_FLAG_OPTIONS, servingOptionsFromFlags } from './serving-flags.ts';

function parse(args: string[], context: { caFromCluster?: boolean } = {}) {
  const { values } = parseArgs({ args, options: SERVING_FLAG_OPTIONS, strict: true });
  return servingOptionsFromFlags(values, '/etc/tokenscaler', context);
}

const SECURE = [
  '--tls-cert-file',
  'tls.crt',
  '--tls-private-key-file',
  '/certs/tls.key',
  '--client-ca-file',
  'ca.crt',
];

describe('servingOptionsFromFlags', () => {
  it('takes kube-apiserver flag names, defaults and resolves paths against the working directory', () => {
    const options = parse(SECURE);
    expect(options).toMatchObject({
      port: 6443,
      bindAddress: '0.0.0.0',
      insecureServing: false,
      tls: {
        certFile: '/etc/tokenscaler/tls.crt',
        keyFile: '/certs/tls.key',
        clientCaFile: '/etc/tokenscaler/ca.crt',
      },
      requestHeader: {
        allowedNames: [],
        usernameHeaders: ['x-remote-user'],
        groupHeaders: ['x-remote-group'],
        extraHeaderPrefixes: ['x-remote-extra-'],
      },
    });
  });

  it('reads the front-proxy flags; list flags take commas and repetition', () => {
    const options = parse([
      ...SECURE,
      '--secure-port=8443',
      '--bind-address=::',
      '--requestheader-client-ca-file=/pki/front-proxy-ca.crt',
      '--requestheader-allowed-names=front-proxy-client, aggregator',
      '--requestheader-allowed-names=other',
      '--requestheader-username-headers=X-Remote-User,X-Forwarded-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    ]);
    expect(options.port).toBe(8443);
    expect(options.bindAddress).toBe('::');
    expect(options.tls?.requestHeaderCaFile).toBe('/pki/front-proxy-ca.crt');
    expect(options.requestHeader).toEqual({
      allowedNames: ['front-proxy-client', 'aggregator', 'other'],
      usernameHeaders: ['x-remote-user', 'x-forwarded-user'],
      groupHeaders: ['x-remote-group'],
      extraHeaderPrefixes: ['x-remote-extra-'],
    });
  });

  it('--insecure-serving binds to loopback unless told otherwise and needs no TLS', () => {
    expect(parse(['--insecure-serving'])).toMatchObject({
      insecureServing: true,
      bindAddress: '127.0.0.1',
      port: 6443,
    });
    expect(parse(['--insecure-serving', '--bind-address', '0.0.0.0']).bindAddress).toBe('0.0.0.0');
    expect(parse(['--insecure-serving']).tls).toBeUndefined();
  });

  it.each([
    [
      ['--secure-port', 'https'],
      /^--secure-port: .*expected an integer port from 0 to 65535 \(got "https"\)/,
    ],
    [['--secure-port', '70000'], /^--secure-port: .*0 to 65535/],
    [['--secure-port', ''], /^--secure-port: /],
    [['--bind-address', 'localhost'], /^--bind-address: .*IPv4 or IPv6 address/],
    [['--tls-private-key-file', 'k', '--client-ca-file', 'c'], /^--tls-cert-file: is required/],
    [['--tls-cert-file', 'c', '--client-ca-file', 'c'], /^--tls-private-key-file: is required/],
    [
      ['--tls-cert-file', 'c', '--tls-private-key-file', 'k'],
      /^--requestheader-client-ca-file: or --client-ca-file is required/,
    ],
    [
      [...SECURE, '--requestheader-allowed-names', 'x'],
      /^--requestheader-allowed-names: needs --requestheader-client-ca-file/,
    ],
    [
      [...SECURE, '--requestheader-username-headers', 'Bad Header'],
      /^--requestheader-username-headers: .*HTTP header name/,
    ],
    [[...SECURE, '--requestheader-group-headers', ','], /^--requestheader-group-headers: is empty/],
    [
      ['--insecure-serving', '--tls-cert-file', 'x'],
      /^--insecure-serving: cannot be combined with --tls-cert-file/,
    ],
  ])('rejects %j', (args, message) => {
    expect(() => parse(args)).toThrow(message);
  });
});
