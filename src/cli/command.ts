/**
 * What a subcommand gets from the composition root (src/main.ts). Subcommands never read
 * process.argv, process.env or the clock themselves: main.ts passes them in, so every command can be
 * run in-process by tests with captured output.
 */
export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  /** Working directory against which relative paths in flags are resolved. */
  cwd: string;
  /** Aborted on SIGINT/SIGTERM; long-running commands (controller, gateway) stop when it fires. */
  signal: AbortSignal;
  /** Unix time in milliseconds. */
  nowMs: () => number;
}

/** Runs one subcommand with the arguments after its name; resolves to the process exit code. */
export type CommandHandler = (args: readonly string[], io: CommandIo) => Promise<number>;

export const EXIT_OK = 0;
/** The command ran but its answer is a failure (e.g. the model does not fit). */
export const EXIT_FAILURE = 1;
/** Bad input: a flag, a file or a value was rejected. */
export const EXIT_USAGE = 2;
