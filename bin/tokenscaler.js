#!/usr/bin/env node
// Installed entry point: runs the compiled build when present (npm package, container image), else
// the TypeScript sources directly (Node >= 22.18 strips types natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
const { runProcess } = await import(existsSync(compiled) ? compiled.href : '../src/main.ts');
await runProcess(process.argv.slice(2));
