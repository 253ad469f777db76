import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { capacityOfSpec } from '../capacity/from-spec.ts';
import { InvalidInputError, TokenscalerError } from '../errors.ts';
import { describeIssues } from './format-issues.ts';
import { type ScalerDefinition, tokenScalerSchema } from './tokenscaler-spec.ts';

/**
 * Loads TokenScaler resources from a YAML file or a directory of them (standalone mode). Every
 * document must be a valid TokenScaler; the first invalid one stops the load with the file, the
 * document, the field and the reason. A model that does not fit its GPUs is rejected too.
 */
export async function loadScalerFiles(path: string): Promise<ScalerDefinition[]> {
  let files: string[];
  try {
    const info = await stat(path);
    files = info.isDirectory()
      ? (await readdir(path))
          .filter((f) => ['.yaml', '.yml', '.json'].includes(extname(f)))
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (error) {
    throw new InvalidInputError('--scalers', `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (files.length === 0)
    throw new InvalidInputError('--scalers', `${path} holds no .yaml, .yml or .json files`);

  const definitions: ScalerDefinition[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const definition of parseScalerDocuments(text, file)) {
      const key = `${definition.namespace}/${definition.name}`;
      const previous = seen.get(key);
      if (previous !== undefined) {
        throw new InvalidInputError(file, `TokenScaler ${key} is defined twice (also in ${previous})`);
      }
      seen.set(key, file);
      definitions.push(definition);
    }
  }
  if (definitions.length === 0) throw new InvalidInputError('--scalers', `${path} holds no TokenScaler`);
  return definitions;
}

export function parseScalerDocuments(text: string, file: string): ScalerDefinition[] {
  const documents = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(documents) ? documents : [documents];
  const definitions: ScalerDefinition[] = [];
  list.forEach((document, index) => {
    const where = list.length > 1 ? `${file} (document ${index + 1})` : file;
    if (document.errors.length > 0) {
      throw new InvalidInputError(where, `is not valid YAML: ${document.errors[0]?.message.split('\n')[0]}`);
    }
    const raw: unknown = document.toJS();
    if (raw === null || raw === undefined) return;
    const parsed = tokenScalerSchema.safeParse(raw);
    if (!parsed.success) {
      throw new InvalidInputError(where, describeIssues(parsed.error.issues, raw), { cause: parsed.error });
    }
    const { metadata, spec } = parsed.data;
    const at = `${where} ${metadata.namespace}/${metadata.name}`;
    try {
      const capacity = capacityOfSpec(spec);
      if (!capacity.fits) {
        throw new InvalidInputError(
          'spec',
          `the model does not fit: KV budget per GPU is ${(capacity.kvBudgetBytesPerGpu / 2 ** 30).toFixed(2)} GiB (check accelerator.tensorParallel, model.weightsGiB, engine.gpuMemoryUtilization; try 'tokenscaler kv')`,
        );
      }
    } catch (error) {
      if (error instanceof TokenscalerError) throw new InvalidInputError(at, error.message, { cause: error });
      throw error;
    }
    definitions.push({
      namespace: metadata.namespace,
      name: metadata.name,
      spec,
      generation: createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16),
    });
  });
  return definitions;
}
