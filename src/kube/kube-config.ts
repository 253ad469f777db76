/**
 * @module Where the Kubernetes credentials come from: `--kubeconfig`, else `KUBECONFIG` (a list of
 * files, merged as kubectl merges them), else the in-cluster service account, else `~/.kube/config`.
 * Unlike client-node's `loadFromDefault()`, which silently falls back to http://localhost:8080
 * (code-style anchors §9), no configuration is an error that says what to set. The environment is
 * passed in (src/main.ts is the only reader of process.env).
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from './errors.ts';

export interface KubeConfigSource {
  /** --kubeconfig */
  kubeconfigPath?: string | undefined;
  /** --context */
  context?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
}

export interface LoadedKubeConfig {
  config: KubeConfig;
  /** The namespace of the current context (kubectl's default for -n), or undefined. */
  namespace: string | undefined;
  /** Where it came from, for logs: a file path or "in-cluster". */
  origin: string;
}

export function loadKubeConfig(source: KubeConfigSource): LoadedKubeConfig {
  const config = new KubeConfig();
  let origin: string;
  try {
    if (source.kubeconfigPath !== undefined && source.kubeconfigPath !== '') {
      config.loadFromFile(source.kubeconfigPath);
      origin = source.kubeconfigPath;
    } else if (source.env.KUBECONFIG !== undefined && source.env.KUBECONFIG !== '') {
      const files = source.env.KUBECONFIG.split(delimiter).filter((f) => f !== '' && existsSync(f));
      if (files.length === 0)
        throw new KubeApiError(
          'KUBE_CONFIG',
          `KUBECONFIG=${source.env.KUBECONFIG}: none of these files exists`,
        );
      // kubectl's rule: the first file that sets a value wins, so merge later files first.
      for (const file of [...files].reverse()) {
        const part = new KubeConfig();
        part.loadFromFile(file);
        config.mergeConfig(part, config.currentContext !== undefined && config.currentContext !== '');
        if (part.currentContext) config.setCurrentContext(part.currentContext);
      }
      origin = files.join(delimiter);
    } else if (
      source.env.KUBERNETES_SERVICE_HOST !== undefined &&
      source.env.KUBERNETES_SERVICE_HOST !== ''
    ) {
      config.loadFromCluster();
      origin = 'in-cluster';
    } else if (source.env.HOME !== undefined && existsSync(join(source.env.HOME, '.kube', 'config'))) {
      origin = join(source.env.HOME, '.kube', 'config');
      config.loadFromFile(origin);
    } else {
      throw new KubeApiError(
        'KUBE_CONFIG',
        'no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run inside a cluster',
      );
    }
  } catch (error) {
    if (error instanceof KubeApiError) throw error;
    throw new KubeApiError('KUBE_CONFIG', `cannot load the Kubernetes configuration: ${describe(error)}`, {
      cause: error,
    });
  }
  if (source.context !== undefined && source.context !== '') {
    if (config.getContextObject(source.context) === null)
      throw new KubeApiError(
        'KUBE_CONFIG',
        `--context: "${source.context}" is not in the kubeconfig; known: ${
          config
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        }`,
      );
    config.setCurrentContext(source.context);
  }
  if (config.getCurrentCluster() === null)
    throw new KubeApiError('KUBE_CONFIG', `the kubeconfig (${origin}) has no current cluster`);
  const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return { config, namespace: namespace === '' ? undefined : namespace, origin };
}

/** A KubeConfig from YAML text (tests, and callers that hold a kubeconfig in memory). */
export function kubeConfigFromString(yaml: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromString(yaml);
  return config;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
