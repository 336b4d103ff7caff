import { spawn } from 'node:child_process';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { netnsExecBinaryPath } from '../util/package-root.js';
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

/**
 * Where a hook runs: by default in kata-ts's own namespaces with the state as
 * given. `netns` runs it in that network namespace instead, and `ownPid` gives it
 * its own pid as the state's pid: the pid then names the namespace (Kata 1.x
 * gives prestart hooks the id of its thread inside the sandbox's namespace).
 */
export interface HookPlace {
  netns?: string;
  ownPid?: boolean;
}

/** Runs one hook: state JSON on stdin; fails on a non-zero exit, a signal, or its timeout (seconds). */
function runHook(hook: OciHook, state: HookState, place: HookPlace): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0 = hook.path, ...args] = hook.args?.length ? hook.args : [hook.path];
    // The hook's environment is the spec's list, nothing inherited.
    const env = Object.fromEntries((hook.env ?? []).map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, ''])));
    const child = place.netns
      ? spawn(netnsExecBinaryPath, [place.netns, hook.path, argv0, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'] })
      : spawn(hook.path, args, { argv0, env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    const timer = hook.timeout ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), hook.timeout * 1000) : undefined;
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(JSON.stringify(place.ownPid && child.pid !== undefined ? { ...state, pid: child.pid } : state));
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
export async function runHooks(hooks: OciHooks | undefined, kind: OciHookKind, state: HookState, logger: Logger, fatal: boolean, place: HookPlace = {}): Promise<void> {
  for (const hook of hooks?.[kind] ?? []) {
    try {
      await runHook(hook, state, place);
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
