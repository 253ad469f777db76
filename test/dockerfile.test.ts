import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './chart-support.ts';

const run = promisify(execFile);

/** One Dockerfile instruction, continuation lines joined, ARG defaults substituted in FROM. */
interface Instruction {
  keyword: string;
  value: string;
}
interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    const value = match[2] ?? '';
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, def] = value.split('=');
      args.set(name ?? '', def ?? '');
    } else if (keyword === 'FROM') {
      const from = value.replace(/\$\{(\w+)\}/g, (_, n: string) => args.get(n) ?? '');
      const [image, , name] = from.split(/\s+/);
      stages.push({ from: image ?? '', name: name ?? String(stages.length), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, value });
    }
  }
  return stages;
}

/** Files of the build context: the repository's files that .dockerignore lets through. */
async function buildContext(): Promise<string[]> {
  const patterns = (await readFile(join(repoRoot, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const glob = (negated ? l.slice(1) : l).replace(/\/$/, '');
      const source = glob
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*');
      return { negated, regex: new RegExp(`^${source}$`) };
    });
  const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard'], {
    cwd: repoRoot,
    maxBuffer: 1 << 26,
  });
  return stdout
    .split('\n')
    .filter((f) => f !== '')
    .filter((file) => {
      // Docker semantics: the last matching pattern wins; a pattern matching a parent directory matches its files.
      const parts = file.split('/');
      const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
      let excluded = false;
      for (const { negated, regex } of patterns) {
        if (candidates.some((c) => regex.test(c))) excluded = !negated;
      }
      return !excluded;
    });
}

const dockerfileText = await readFile(join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfileText);
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (s === undefined) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};
const runtime = stages.at(-1) as Stage;
const of = (s: Stage, keyword: string) =>
  s.instructions.filter((i) => i.keyword === keyword).map((i) => i.value);

describe('Dockerfile', () => {
  it('is multi-stage on Node 24 LTS slim, installs runtime dependencies with npm ci --omit=dev', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'prod-deps', 'runtime']);
    for (const s of stages) expect(s.from).toMatch(/^node:24-[a-z]+-slim$/);
    expect(of(stage('build'), 'RUN')).toEqual(['npm ci --no-audit --no-fund', 'npm run build']);
    expect(of(stage('prod-deps'), 'RUN')).toEqual([
      'npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
    ]);
  });

  it('runs as a numeric non-root user with tokenscaler as the entry point', () => {
    const [user] = of(runtime, 'USER');
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user?.split(':')[0])).toBeGreaterThan(0);
    expect(of(runtime, 'ENTRYPOINT')).toEqual(['["tokenscaler"]']);
    expect(of(runtime, 'RUN').join(' ')).toContain(
      'ln -s /app/bin/tokenscaler.js /usr/local/bin/tokenscaler',
    );
    expect(of(runtime, 'ENV')).toContain('NODE_ENV=production');
  });

  it('copies only the built output, the runtime dependencies, package.json and the entry point', () => {
    expect(of(runtime, 'COPY')).toEqual([
      'package.json ./',
      '--from=prod-deps /app/node_modules ./node_modules',
      '--from=build /app/dist ./dist',
      'bin/tokenscaler.js ./bin/tokenscaler.js',
    ]);
  });

  it('sends a build context with the sources and none of the tests, local state or dependencies', async () => {
    const context = await buildContext();
    expect(context).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.build.json',
        'bin/tokenscaler.js',
        'src/main.ts',
      ]),
    );
    expect(context.filter((f) => /(^|\/)(test|node_modules|\.git|deploy|charts|bench)\//.test(f))).toEqual(
      [],
    );
    expect(context.filter((f) => f.endsWith('.test.ts'))).toEqual([]);
    expect(
      context.filter(
        (f) => !/^(src\/|bin\/tokenscaler\.js$|package(-lock)?\.json$|tsconfig(\.build)?\.json$)/.test(f),
      ),
    ).toEqual([]);
  });
});

/**
 * Replays the image build without a Docker engine: each stage's WORKDIR /app becomes a temporary folder,
 * COPY takes files from the build context (or an earlier stage's folder), and the RUN steps run there.
 * The build stage's own `npm ci` (all dependencies, the same lock file CI installs) is replaced by a link
 * to the repository's node_modules to keep the test fast; the runtime's `npm ci --omit=dev` runs for real.
 */
describe('image build, replayed', () => {
  let root = '';
  const dirs = new Map<string, string>();
  const env = { ...process.env, NODE_ENV: 'production', npm_config_update_notifier: 'false' };

  async function copyInto(stageDir: string, value: string, fromStage?: string): Promise<void> {
    const parts = value.split(/\s+/).filter((p) => !p.startsWith('--'));
    const dest = parts.pop() ?? '.';
    for (const source of parts) {
      const from =
        fromStage === undefined
          ? join(root, 'context', source)
          : join(dirs.get(fromStage) ?? '', posix.relative('/app', source));
      const target = dest.endsWith('/') ? join(stageDir, dest, posix.basename(source)) : join(stageDir, dest);
      await mkdir(dirname(target), { recursive: true });
      await cp(from, target, { recursive: true, verbatimSymlinks: true });
    }
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tokenscaler-image-'));
    for (const file of await buildContext()) {
      await mkdir(dirname(join(root, 'context', file)), { recursive: true });
      await cp(join(repoRoot, file), join(root, 'context', file));
    }
    for (const s of stages) {
      const dir = join(root, s.name);
      await mkdir(dir, { recursive: true });
      dirs.set(s.name, dir);
      for (const { keyword, value } of s.instructions) {
        if (keyword === 'COPY') {
          const from = /--from=(\S+)/.exec(value)?.[1];
          await copyInto(dir, value, from);
        } else if (keyword === 'RUN' && s.name === 'build' && value.startsWith('npm ci')) {
          await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
        } else if (keyword === 'RUN' && value.startsWith('npm ')) {
          await run('sh', ['-c', value], { cwd: dir, env, timeout: 240_000, maxBuffer: 1 << 26 });
        }
      }
    }
  }, 300_000);

  afterAll(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const image = () => dirs.get(runtime.name) ?? '';
  const tokenscaler = (args: string[]) =>
    run(join(image(), 'bin', 'tokenscaler.js'), args, { cwd: image(), env, timeout: 30_000 });

  it('holds dist/, bin/, package.json and production node_modules only', async () => {
    expect((await readdir(image())).sort()).toEqual(['bin', 'dist', 'node_modules', 'package.json']);
    expect((await readdir(join(image(), 'dist'))).some((f) => f.endsWith('.test.js'))).toBe(false);
    await access(join(image(), 'dist', 'main.js'));
    await access(join(image(), 'dist', 'capacity', 'kv-presets.json'));
    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
    const devOnly = Object.entries(lock.packages as Record<string, { dev?: boolean }>)
      .filter(([path, meta]) => path.startsWith('node_modules/') && meta.dev === true)
      .map(([path]) => path);
    expect(devOnly.length).toBeGreaterThan(10);
    const present: string[] = [];
    for (const path of devOnly) {
      if (
        await lstat(join(image(), path)).then(
          () => true,
          () => false,
        )
      )
        present.push(path);
    }
    expect(present).toEqual([]);
  });

  it('is readable by the non-root user: every file world-readable, the entry point executable', async () => {
    const unreadable: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isSymbolicLink()) continue;
        const mode = (await stat(path)).mode;
        if ((mode & constants.S_IROTH) === 0) unreadable.push(path);
        if (entry.isDirectory()) await walk(path);
      }
    };
    await walk(image());
    expect(unreadable).toEqual([]);
    expect((await stat(join(image(), 'bin', 'tokenscaler.js'))).mode & constants.S_IXOTH).not.toBe(0);
  });

  it('starts the built entry point without dev dependencies: --help and kv --help', async () => {
    const help = await tokenscaler(['--help']);
    expect(help.stdout).toMatch(/^usage: tokenscaler <command>/);
    expect(help.stdout).toContain('kv');
    const kvHelp = await tokenscaler(['kv', '--help']);
    expect(kvHelp.stdout).toMatch(/^usage: tokenscaler kv/);
  });

  it('computes with the compiled code and the bundled presets', async () => {
    const { stdout } = await tokenscaler([
      'kv',
      '--model',
      'llama-3.1-70b',
      '--gpu',
      'h100-80gb',
      '--tp',
      '4',
      '--json',
    ]);
    const result = JSON.parse(stdout);
    expect(result.tokensPerReplica).toBeGreaterThan(100_000);
    expect(result.kvBytesPerToken).toBe(2 * 8 * 128 * 2 * 80); // K and V x 8 KV heads x head_dim 128 x bf16 x 80 layers
  });
});
