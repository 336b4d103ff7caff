import { spawn } from 'node:child_process';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { OciHook, OciHookKind, OciHooks } from './oci-spec-types.js';

/** The state runtime-spec gives each hook on stdin. */
export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations: Record<string, string>;
}

/** Runs one hook: state JSON on stdin; fails on a non-zero exit, a signal, or its timeout (seconds). */
function runHook(hook: OciHook, state: HookState): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    // The hook's environment is the spec's list, nothing inherited.
    const env = Object.fromEntries((hook.env ?? []).map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, ''])));
    const child = spawn(hook.path, args, { argv0, env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    const timer = hook.timeout ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), hook.timeout * 1000) : undefined;
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(JSON.stringify(state));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${hook.path}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${hook.path} timed out after ${hook.timeout} s`));
      else if (code === 0) resolve();
      else reject(new Error(`${hook.path} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`));
    });
  });
}

/**
 * Runs the spec's hooks of one kind on the host, in order. `fatal` kinds
 * (createRuntime, prestart) stop at the first failure and throw; the others
 * (poststart, poststop) log a warning and go on, as runtime-spec says.
 */
export async function runHooks(hooks: OciHooks | undefined, kind: OciHookKind, state: HookState, logger: Logger, fatal: boolean): Promise<void> {
  for (const hook of hooks?.[kind] ?? []) {
    try {
      await runHook(hook, state);
      logger.debug(`${kind} hook ${hook.path} ran`);
    } catch (err) {
      if (fatal) throw new KataError('HOOK', `${kind} hook failed: ${messageOf(err)}`, { cause: err });
      logger.warn(`${kind} hook failed: ${messageOf(err)}`);
    }
  }
}

/** createContainer and startContainer hooks belong in the container's namespaces, which are inside the VM: kata-ts does not run them on the host, and says so. */
export function warnGuestHooks(hooks: OciHooks | undefined, logger: Logger): void {
  for (const kind of ['createContainer', 'startContainer'] as const) {
    if (hooks?.[kind]?.length) logger.warn(`${kind} hooks run in the container's namespaces, which are inside the VM; kata-ts does not run them (${hooks[kind]!.map((h) => h.path).join(', ')})`);
  }
}
