import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runDemo } from '../demo/run-demo.ts';
import { InvalidInputError } from '../errors.ts';
import { createJsonLogger } from '../telemetry/logger.ts';
import { type CommandHandler, EXIT_OK } from './command.ts';
import { parseFlags, parseNumberFlag } from './flags.ts';

const BUNDLED_TRACE = fileURLToPath(new URL('../../data/traces/azure2023_conv.csv', import.meta.url));

const HELP = `usage: tokenscaler demo [flags]

Runs the controller in standalone mode against a simulated vLLM fleet that serves real Prometheus
/metrics on loopback, replays a request trace faster than real time, serves the metrics APIs on
localhost and shows demand, capacity, desired replicas and the binding constraint live. An emulated
HPA reads the served external metric over HTTP and scales the fleet. No cluster, no GPU needed.

  --trace PATH             CSV with arrival_s,input_tokens,output_tokens (default: the shipped Azure 2023 conversation trace)
  --model ID               model preset (default llama-3.1-8b)
  --gpu ID                 GPU preset, one per replica (default a10g)
  --load-multiplier N      arrivals N times faster (time compression; default 1.5)
  --speed N                simulated seconds per real second (default 20)
  --duration-seconds N     stop after N real seconds (default: when the trace is done)
  --cold-start-seconds N   simulated start-up time of a new replica (default 60)
  --secure-port N          port of the metrics API on 127.0.0.1 (plain HTTP, demo only; default 18443, 0 = any)
`;

export const runDemoCommand: CommandHandler = async (args, io) => {
  const { values } = parseFlags(args, {
    trace: { type: 'string' },
    model: { type: 'string' },
    gpu: { type: 'string' },
    'load-multiplier': { type: 'string' },
    speed: { type: 'string' },
    'duration-seconds': { type: 'string' },
    'cold-start-seconds': { type: 'string' },
    'secure-port': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  const tracePath = values.trace === undefined ? BUNDLED_TRACE : resolve(io.cwd, values.trace);
  let traceCsv: string;
  try {
    traceCsv = await readFile(tracePath, 'utf8');
  } catch (error) {
    throw new InvalidInputError('--trace', `cannot read ${tracePath}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const durationSeconds = parseNumberFlag('duration-seconds', values['duration-seconds'], {
    min: 1,
    max: 86_400,
  });
  const isTty = process.stdout.isTTY === true && io.env['TERM'] !== 'dumb';
  const summary = await runDemo(
    {
      traceCsv,
      traceName: values.trace === undefined ? 'azure2023_conv' : tracePath,
      modelId: values.model ?? 'llama-3.1-8b',
      gpuId: values.gpu ?? 'a10g',
      speed: parseNumberFlag('speed', values.speed, { min: 0.1, max: 1000 }) ?? 20,
      loadMultiplier:
        parseNumberFlag('load-multiplier', values['load-multiplier'], { min: 0.01, max: 1000 }) ?? 1.5,
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      apiPort:
        parseNumberFlag('secure-port', values['secure-port'], { min: 0, max: 65535, integer: true }) ?? 18443,
      coldStartSeconds:
        parseNumberFlag('cold-start-seconds', values['cold-start-seconds'], { min: 0, max: 3600 }) ?? 60,
    },
    {
      write: io.stdout,
      isTty,
      signal: io.signal,
      logger: createJsonLogger({
        write: io.stderr,
        nowMs: io.nowMs,
        level: isTty ? 'error' : 'warn',
        fields: { component: 'demo' },
      }),
      realNowMs: io.nowMs,
      sleep: (ms, signal) => sleep(ms, undefined, { signal }),
    },
  );
  const minutes = (s: number) => (s / 60).toFixed(1);
  io.stdout(
    `\ndemo done: ${minutes(summary.simulatedSeconds)} simulated minutes, ${summary.requestsCompleted.toLocaleString('en-US')} of ${summary.requestsSubmitted.toLocaleString('en-US')} requests completed, ` +
      `TTFT p50 ${summary.ttftP50Seconds?.toFixed(2) ?? '-'} s p99 ${summary.ttftP99Seconds?.toFixed(2) ?? '-'} s, ` +
      `${minutes(summary.replicaSeconds)} replica-minutes, peak ${summary.peakReplicas} replicas, ` +
      `decisions by binding constraint ${JSON.stringify(summary.bindingConstraints)}\n`,
  );
  return EXIT_OK;
};
