#!/usr/bin/env node
// kubectl plugin entry point: `kubectl tokenscaler status [NAME] [-n NS] [-A] [-o json|yaml]` runs the
// same code as `tokenscaler status`. kubectl finds this executable on PATH by its name and passes the
// arguments after `tokenscaler`; with none, or only flags, the subcommand is `status`.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
const { runProcess } = await import(existsSync(compiled) ? compiled.href : '../src/main.ts');
const args = process.argv.slice(2);
await runProcess(args.length === 0 || args[0]?.startsWith('-') ? ['status', ...args] : args);
