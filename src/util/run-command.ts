import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  /** Written to the command's stdin, which is closed after it. */
  input?: string | Buffer;
  /** Kills the command (SIGKILL) after this many ms. */
  timeoutMs?: number;
  /** Resolve on a non-zero exit instead of throwing. */
  reject?: boolean;
  /** Open fds the command gets as its fd 3, 4, ... (e.g. a pinned mount source, /proc/self/fd/3). */
  passFds?: number[];
  /** The command's environment (the caller's when absent). */
  env?: NodeJS.ProcessEnv;
  /** Sees stdout as it comes (a long build's progress), besides collecting it. */
  onStdout?: (chunk: Buffer) => void;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stdoutBuffer: Buffer;
  stderr: string;
}

/** A command that failed: its last stderr lines say why. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/**
 * Runs a command to completion and collects its output: what the runtime
 * needs of child processes (a few spawns, hence no library).
 */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...(options.passFds ?? [])] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => {
      out.push(chunk);
      options.onStdout?.(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    let timedOut = false;
    const timer = options.timeoutMs ? setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs) : undefined;
    if (options.input !== undefined) {
      child.stdin?.on('error', () => undefined); // a command that exits without reading all of it
      child.stdin?.end(options.input);
    }
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(`${file}: ${e.message}`, { exitCode: -1, stdout: '', stdoutBuffer: Buffer.alloc(0), stderr: '' }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBuffer = Buffer.concat(out);
      const result: RunResult = { exitCode: code ?? 128, stdout: stdoutBuffer.toString().trimEnd(), stdoutBuffer, stderr: Buffer.concat(err).toString().trimEnd() };
      if (result.exitCode === 0 || options.reject === false) return resolve(result);
      const why = timedOut ? `timed out after ${options.timeoutMs} ms` : signal ? `killed by ${signal}` : `exit status ${code}`;
      const detail = result.stderr.split('\n').slice(-3).join(' | ') || result.stdout.split('\n').slice(-3).join(' | ');
      reject(new CommandError(`${file} ${args.join(' ')} failed (${why})${detail ? `: ${detail}` : ''}`, result));
    });
  });
}
