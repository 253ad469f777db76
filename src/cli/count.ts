import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidInputError } from '../errors.ts';
import { describeRequest, type EndpointKind, type PromptAnatomy } from '../tokens/anatomy.ts';
import { CountCache } from '../tokens/count-cache.ts';
import { ENCODING_NAMES, TokenizerRegistry } from '../tokens/encodings.ts';
import { DEFAULT_THRESHOLDS, findDiscipline } from '../tokens/findings.ts';
import { ModelProfiles } from '../tokens/model-profiles.ts';
import { countPrompt } from '../tokens/prompt-count.ts';
import { TokenCounter } from '../tokens/token-counter.ts';
import { type CommandHandler, EXIT_OK } from './command.ts';
import { parseEnumFlag, parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler count [FILE|-] [--chat] [--model M] [--encoding E] [--json]

Counts the tokens of a text, or of an OpenAI-compatible request (--chat: a chat completions body
with "messages", a Responses body with "input", or a completions body with "prompt") with its
anatomy by component (system, history, user, tool, image, template) and the token-discipline
findings. Reads FILE, or standard input when FILE is "-" or absent.

  --chat                          the input is a JSON request body
  --model NAME                    choose the encoding and chat template as for this model
                                  (default: the body's "model"; OpenAI names map to their encoding)
  --encoding o200k_base|cl100k_base   force an encoding
  --system-prompt-threshold-tokens N  system tokens above which a finding is reported (default ${DEFAULT_THRESHOLDS.systemPromptTokens})
  --json                          machine-readable output: tokens, encoding, components, findings
`;

/** `tokenscaler count`; main.ts passes how to read standard input. */
export function createCountCommand(readStdin: () => Promise<string>): CommandHandler {
  return async (args, io) => {
    const { values, positionals } = parseFlags(
      args,
      {
        chat: { type: 'boolean', default: false },
        model: { type: 'string' },
        encoding: { type: 'string' },
        'system-prompt-threshold-tokens': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      true,
    );
    if (values.help) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 1) {
      throw new InvalidInputError(
        'FILE',
        `one input at most, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    const encoding = parseEnumFlag('encoding', values.encoding, ENCODING_NAMES);
    const systemPromptTokens =
      parseNumberFlag('system-prompt-threshold-tokens', values['system-prompt-threshold-tokens'], {
        min: 1,
        max: 10_000_000,
        integer: true,
      }) ?? DEFAULT_THRESHOLDS.systemPromptTokens;
    const source = positionals[0] ?? '-';
    let input: string;
    if (source === '-') {
      input = await readStdin();
    } else {
      try {
        input = await readFile(resolve(io.cwd, source), 'utf8');
      } catch (error) {
        throw new InvalidInputError(
          'FILE',
          `cannot read ${JSON.stringify(source)}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    }

    const anatomy = values.chat ? chatAnatomy(input, source) : describeRequest('embeddings', { input });
    if (anatomy === undefined) throw new InvalidInputError('input', 'nothing to count');
    const model = values.model ?? anatomy.model;
    const profiles = new ModelProfiles();
    const profile = profiles.resolve(model);
    if (encoding !== undefined && encoding !== profile.encoding) {
      profile.encoding = encoding;
      profile.exactTokenizer = false;
    }
    const tokenizer = await new TokenizerRegistry().load(profile.encoding);
    const counter = new TokenCounter({ cache: new CountCache(1000) });
    const count = await countPrompt(anatomy, profile, tokenizer, counter, { sync: true });
    const findings = await findDiscipline(
      anatomy,
      count,
      tokenizer,
      counter,
      { ...DEFAULT_THRESHOLDS, systemPromptTokens },
      { sync: true },
    );
    const components = values.chat ? count.components : { user: count.totalTokens };
    if (values.json) {
      io.stdout(
        `${JSON.stringify(
          {
            tokens: count.totalTokens,
            encoding: count.encoding,
            exactTokenizer: count.exactTokenizer,
            model: model ?? null,
            components,
            findings,
          },
          null,
          2,
        )}\n`,
      );
      return EXIT_OK;
    }
    const lines = [
      `tokens: ${count.totalTokens} (${count.encoding}${count.exactTokenizer ? `, exact for ${model}` : ', an estimate: not the model’s own tokenizer'})`,
    ];
    if (values.chat) {
      lines.push('components:');
      for (const [name, tokens] of Object.entries(components)) {
        const share = count.totalTokens === 0 ? 0 : Math.round((100 * tokens) / count.totalTokens);
        lines.push(`  ${name.padEnd(9)} ${String(tokens).padStart(8)}  ${String(share).padStart(3)}%`);
      }
    }
    lines.push(findings.length === 0 ? 'findings: none' : 'findings:');
    for (const f of findings) lines.push(`  - ${f.code}: ${f.message}`);
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT_OK;
  };
}

function chatAnatomy(input: string, source: string): PromptAnatomy | undefined {
  let body: unknown;
  try {
    body = JSON.parse(input);
  } catch (error) {
    throw new InvalidInputError(
      'input',
      `${source === '-' ? 'standard input' : source} is not JSON (${(error as Error).message}); --chat expects a request body`,
      { cause: error },
    );
  }
  const fields = body !== null && typeof body === 'object' ? Object.keys(body) : [];
  const kind: EndpointKind | undefined = fields.includes('messages')
    ? 'chat'
    : fields.includes('input')
      ? 'responses'
      : fields.includes('prompt')
        ? 'completions'
        : undefined;
  const anatomy = kind === undefined ? undefined : describeRequest(kind, body);
  if (anatomy === undefined) {
    throw new InvalidInputError(
      'input',
      `expected a request body with "messages" (chat), "input" (responses) or "prompt" (completions); got keys ${JSON.stringify(fields.slice(0, 8))}`,
    );
  }
  return anatomy;
}
