#!/usr/bin/env node
/**
 * Composition root: the only module that reads process.argv and process.env, owns the signal
 * handlers and picks the subcommand. Each subcommand lives in src/cli/<name>.ts.
 */
import { realpathSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import packageJson from '../package.json' with { type: 'json' };
import type { CommandHandler, CommandIo } from './cli/command.ts';
import { EXIT_USAGE } from './cli/command.ts';
import { runController } from './cli/controller.ts';
import { createCountCommand } from './cli/count.ts';
import { runDemoCommand } from './cli/demo.ts';
import { runGateway } from './cli/gateway.ts';
import { runKv } from './cli/kv.ts';
import { runObserve } from './cli/observe.ts';
import { runSimulate } from './cli/simulate.ts';
import { createStatusCommand, realStatusDeps } from './cli/status.ts';
import { TokenscalerError } from './errors.ts';

const COMMANDS: Record<string, { handler: CommandHandler; summary: string }> = {
  kv: { handler: runKv, summary: 'KV-cache capacity what-if for a model on GPUs' },
  simulate: {
    handler: runSimulate,
    summary: 'replay a trace against a simulated fleet under several autoscaling policies',
  },
  observe: { handler: runObserve, summary: 'token demand from engine metrics or Prometheus, once' },
  controller: { handler: runController, summary: 'run the autoscaler: reconcile loop and metrics APIs' },
  status: {
    handler: createStatusCommand(realStatusDeps(() => process.stdout.isTTY === true)),
    summary: 'what each TokenScaler in the cluster decided and why (also: kubectl tokenscaler status)',
  },
  demo: {
    handler: runDemoCommand,
    summary: 'the controller against a simulated vLLM fleet replaying a trace (no cluster)',
  },
  gateway: {
    handler: runGateway,
    summary: 'token-metering proxy for an OpenAI-compatible server, with its own /metrics',
  },
  count: {
    handler: createCountCommand(() => text(process.stdin)),
    summary: 'tokens of a text or a chat request, by component, with findings',
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `usage: tokenscaler <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun 'tokenscaler <command> --help' for the flags of a command.\n`;
}

export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout)(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout(`tokenscaler ${packageJson.version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`tokenscaler: unknown command "${name}"; allowed: ${Object.keys(COMMANDS).join(', ')}\n`);
    return EXIT_USAGE;
  }
  try {
    return await command.handler(rest, io);
  } catch (error) {
    if (error instanceof TokenscalerError) {
      io.stderr(`tokenscaler ${name}: ${error.message}\n`);
      return error.code === 'INVALID_INPUT' ? EXIT_USAGE : 1;
    }
    throw error;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

export async function runProcess(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const io: CommandIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
    nowMs: () => Date.now(),
  };
  const code = await main(argv, io);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  process.exitCode = code;
}

if (isEntryPoint()) {
  await runProcess(process.argv.slice(2));
}
