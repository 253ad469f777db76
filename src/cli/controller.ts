import { fileMaterialSource } from '../api/material.ts';
import { SERVING_FLAG_OPTIONS, SERVING_FLAGS_HELP, servingOptionsFromFlags } from '../api/serving-flags.ts';
import { loadScalerFiles } from '../config/scaler-files.ts';
import { InvalidInputError } from '../errors.ts';
import {
  CLUSTER_FLAG_OPTIONS,
  CLUSTER_FLAGS_HELP,
  normalizeClusterArgs,
  runInCluster,
} from '../kube/cluster-mode.ts';
import { createJsonLogger, type LogLevel } from '../telemetry/logger.ts';
import { parseListenAddress } from '../telemetry/metrics-server.ts';
import { type CommandHandler, EXIT_OK } from './command.ts';
import { standaloneReplicaReader, startControllerRuntime } from './controller-runtime.ts';
import { parseEnumFlag, parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler controller --standalone --scalers <file or dir> [flags]
       tokenscaler controller [flags]            (in a cluster: TokenScalers from the Kubernetes API)

Runs the reconcile loop (per scaler: observe token metrics, decide replicas, publish) and serves the
decisions through the external and custom metrics APIs and the KEDA metrics-api endpoint.

  --standalone                 run without Kubernetes, from TokenScaler YAML files
  --scalers PATH               a TokenScaler YAML file or a directory of them (standalone)
  --tick-seconds N             seconds between decisions (default 15)
  --metrics-bind-address ADDR  plain-HTTP /metrics of the controller itself (default :8080; "0" disables)
  --log-level LEVEL            debug, info, warn or error (default info)

${SERVING_FLAGS_HELP}
${CLUSTER_FLAGS_HELP}`;

export const CONTROLLER_FLAG_OPTIONS = {
  ...SERVING_FLAG_OPTIONS,
  ...CLUSTER_FLAG_OPTIONS,
  standalone: { type: 'boolean' },
  scalers: { type: 'string' },
  'tick-seconds': { type: 'string' },
  'metrics-bind-address': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const runController: CommandHandler = async (args, io) => {
  const { values } = parseFlags(normalizeClusterArgs(args), CONTROLLER_FLAG_OPTIONS);
  if (values.help === true) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  const tickSeconds = parseNumberFlag('tick-seconds', values['tick-seconds'], { min: 1, max: 3600 }) ?? 15;
  const level =
    parseEnumFlag<LogLevel>('log-level', values['log-level'], ['debug', 'info', 'warn', 'error']) ?? 'info';
  const metricsAddress = values['metrics-bind-address'] ?? ':8080';
  const metricsListen =
    metricsAddress === '0' ? undefined : parseListenAddress('metrics-bind-address', metricsAddress);
  // In a cluster, CAs that no flag gives come from kube-system/extension-apiserver-authentication.
  const api = servingOptionsFromFlags(values, io.cwd, { caFromCluster: values.standalone !== true });
  const logger = createJsonLogger({
    write: io.stderr,
    nowMs: io.nowMs,
    level,
    fields: { component: 'controller' },
  });

  if (values.standalone !== true) {
    if (api.insecureServing)
      logger.warn('INSECURE SERVING: the metrics APIs run over plain HTTP with no authentication', {
        bindAddress: api.bindAddress,
        port: api.port,
      });
    return runInCluster(values, io, {
      logger,
      startRuntime: ({ servingMaterial, ...parts }) =>
        startControllerRuntime(
          { tickSeconds, api, metricsListen },
          {
            logger,
            nowMs: io.nowMs,
            fetch: (input, init) => fetch(input, init),
            ...parts,
            ...(api.tls !== undefined ? { material: servingMaterial(fileMaterialSource(api.tls)) } : {}),
          },
        ),
    });
  }
  if (values.scalers === undefined)
    throw new InvalidInputError(
      '--scalers',
      'is required with --standalone: a TokenScaler YAML file or directory',
    );
  const { resolve } = await import('node:path');
  const definitions = await loadScalerFiles(resolve(io.cwd, values.scalers));
  if (api.insecureServing) {
    logger.warn(
      'INSECURE SERVING: the metrics APIs run over plain HTTP with no authentication; use only for a local demo',
      {
        bindAddress: api.bindAddress,
        port: api.port,
      },
    );
  }

  const runtime = await startControllerRuntime(
    { tickSeconds, api, metricsListen },
    {
      logger,
      nowMs: io.nowMs,
      fetch: (input, init) => fetch(input, init),
      replicas: standaloneReplicaReader,
    },
  );
  await runtime.setScalers(definitions);
  logger.info('controller started', {
    mode: 'standalone',
    scalers: definitions.map((d) => `${d.namespace}/${d.name}`),
    api: runtime.api.url,
    metrics: runtime.metricsServer?.url,
    tickSeconds,
  });
  await runtime.run(io.signal);
  logger.info('shutting down: stopped ticking, draining the API server');
  await runtime.close();
  return EXIT_OK;
};
