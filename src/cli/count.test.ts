import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import type { CommandIo } from './command.ts';
import { createCountCommand } from './count.ts';

const dir = mkdtempSync(join(tmpdir(), 'tokenscaler-count-'));

async function run(args: string[], stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: {},
    cwd: dir,
    signal: new AbortController().signal,
    nowMs: () => 0,
  };
  const code = await createCountCommand(async () => stdin)(args, io);
  return { code, out: out.join(''), err: err.join('') };
}

describe('tokenscaler count', () => {
  it.each([
    {
      name: 'stdin, o200k by default',
      args: ['--json'],
      stdin: 'tiktoken is great!',
      tokens: 6,
      encoding: 'o200k_base',
    },
    {
      name: 'forced cl100k',
      args: ['--json', '--encoding', 'cl100k_base'],
      stdin: '我们今天下午三点在会议室开会。',
      tokens: 15,
      encoding: 'cl100k_base',
    },
    {
      name: 'encoding of a named model',
      args: ['--json', '--model', 'gpt-4-turbo', '-'],
      stdin: 'hello world',
      tokens: 2,
      encoding: 'cl100k_base',
    },
  ])('$name', async ({ args, stdin, tokens, encoding }) => {
    const { code, out } = await run(args, stdin);
    expect(code).toBe(0);
    const json = JSON.parse(out);
    expect(json).toMatchObject({ tokens, encoding, components: { user: tokens }, findings: [] });
  });

  it('gives the anatomy and findings of a chat request file', async () => {
    const body = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hi' },
      ],
    };
    writeFileSync(join(dir, 'chat.json'), JSON.stringify(body));
    const { code, out } = await run(['chat.json', '--chat', '--json']);
    expect(code).toBe(0);
    const json = JSON.parse(out);
    // Cookbook rule: 3 per message + 3 for the reply; "You are a helpful assistant." is 6 tokens, "Hi" 1.
    expect(json.tokens).toBe(6 + 1 + 3 * 2 + 3);
    expect(json.components).toEqual({ system: 6, history: 0, user: 1, tool: 0, image: 0, template: 9 });
    expect(json.exactTokenizer).toBe(true);
    expect(json.findings.map((f: { code: string }) => f.code)).toEqual(['no-output-limit']);
    const human = await run(['chat.json', '--chat']);
    expect(human.out).toContain('tokens: 16 (o200k_base, exact for gpt-4o)');
    expect(human.out).toMatch(/system\s+6\s+38%/);
  });

  it.each([
    { name: 'not JSON with --chat', args: ['--chat'], stdin: 'plain text', field: 'input' },
    { name: 'JSON that is not a request', args: ['--chat'], stdin: '{"foo": 1}', field: 'input' },
    { name: 'missing file', args: ['nope.txt'], stdin: '', field: 'FILE' },
    { name: 'two files', args: ['a', 'b'], stdin: '', field: 'FILE' },
    { name: 'unknown encoding', args: ['--encoding', 'p50k_base'], stdin: 'x', field: '--encoding' },
  ])('rejects $name naming the field', async ({ args, stdin, field }) => {
    const error = await run(args, stdin).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe(field);
  });
});
