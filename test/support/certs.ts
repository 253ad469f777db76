/**
 * Test PKI built with the real `openssl` CLI (Debian package `openssl`, listed in .ci/apt-packages):
 * CAs, intermediates, serving and client certificates written to a directory, as kubeadm lays out
 * a cluster's front-proxy and client CAs. Every call has a deadline.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL_TIMEOUT_MS = 20_000;

export interface IssuedCertificate {
  name: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  /** File stem inside the PKI directory. */
  name: string;
  commonName: string;
  organizations?: readonly string[];
  /** DNS names and IP addresses for subjectAltName. */
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** Extended key usage; `none` leaves the extension out. */
  usage: 'server' | 'client' | 'server-and-client' | 'code-signing' | 'none';
  /** Issue an intermediate CA instead of a leaf. */
  ca?: boolean;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', [...args], { cwd, timeout: OPENSSL_TIMEOUT_MS });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

function subject(commonName: string, organizations: readonly string[] = []): string {
  const quote = (value: string) => value.replace(/[/\\]/g, (char) => `\\${char}`);
  return `/CN=${quote(commonName)}${organizations.map((o) => `/O=${quote(o)}`).join('')}`;
}

export class TestPki {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(prefix = 'tokenscaler-pki-'): Promise<TestPki> {
    return new TestPki(await mkdtemp(join(tmpdir(), prefix)));
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  /** A self-signed root CA (P-256), valid for one day. */
  async createCa(name: string, commonName = `${name}-ca`): Promise<IssuedCertificate> {
    await openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '1',
        '-subj',
        subject(commonName),
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      this.dir,
    );
    return this.read(name);
  }

  /** A certificate signed by `issuer`, with the extensions a kubeadm cluster would give it. */
  async issue(issuer: IssuedCertificate, request: CertificateRequest): Promise<IssuedCertificate> {
    const { name } = request;
    await openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        subject(request.commonName, request.organizations),
      ],
      this.dir,
    );
    const extensions: string[] = [];
    if (request.ca === true) {
      extensions.push('basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign');
    } else {
      extensions.push(
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
      );
      const usage = {
        server: 'serverAuth',
        client: 'clientAuth',
        'server-and-client': 'serverAuth,clientAuth',
        'code-signing': 'codeSigning',
        none: undefined,
      }[request.usage];
      if (usage !== undefined) extensions.push(`extendedKeyUsage=${usage}`);
    }
    const sans = [
      ...(request.dnsNames ?? []).map((dns) => `DNS:${dns}`),
      ...(request.ipAddresses ?? []).map((ip) => `IP:${ip}`),
    ];
    if (sans.length > 0) extensions.push(`subjectAltName=${sans.join(',')}`);
    await writeFile(this.path(`${name}.ext`), `${extensions.join('\n')}\n`);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        issuer.certPath,
        '-CAkey',
        issuer.keyPath,
        '-set_serial',
        `0x${randomBytes(12).toString('hex')}`,
        '-days',
        '1',
        '-sha256',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      ],
      this.dir,
    );
    return this.read(name);
  }

  /** A serving certificate for loopback and the in-cluster Service name. */
  async issueServing(issuer: IssuedCertificate, name = 'serving'): Promise<IssuedCertificate> {
    return this.issue(issuer, {
      name,
      commonName: 'tokenscaler.tokenscaler.svc',
      dnsNames: ['localhost', 'tokenscaler.tokenscaler.svc'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
  }

  private async read(name: string): Promise<IssuedCertificate> {
    const certPath = this.path(`${name}.crt`);
    const keyPath = this.path(`${name}.key`);
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { name, certPath, keyPath, certPem, keyPem };
  }
}
