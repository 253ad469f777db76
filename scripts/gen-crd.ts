#!/usr/bin/env node
/**
 * Writes the TokenScaler CRD generated from the zod schemas (src/kube/crd.ts) to
 * charts/tokenscaler/crds/tokenscalers.tokenscaler.dev.yaml. `--check` writes nothing and exits 1
 * when the file differs from what the code generates (for CI).
 *
 *   npm run gen:crd            # regenerate
 *   npm run gen:crd -- --check # verify
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdYaml } from '../src/kube/crd-yaml.ts';

const target = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'charts',
  'tokenscaler',
  'crds',
  'tokenscalers.tokenscaler.dev.yaml',
);
const generated = crdYaml();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== generated) {
    process.stderr.write(`${target} is stale: run npm run gen:crd\n`);
    process.exit(1);
  }
  process.stdout.write(`${target} is up to date\n`);
} else {
  writeFileSync(target, generated);
  process.stdout.write(`wrote ${target}\n`);
}
