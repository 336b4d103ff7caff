import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KataError, messageOf } from '../util/errors.js';
import { faultPoint } from '../util/fault-point.js';
import { processToAgent } from './agent-spec.js';
import { loadContainer, requireStatus } from './container-record.js';
import { writePidFile } from './create-container.js';
import { checkProcess } from './oci-bundle.js';
import { processShapeProblem } from './spec-shape.js';
import { checkConsoleSocket } from './console-socket-path.js';
import type { OciProcessSpec } from './oci-spec-types.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord } from './sandbox-record.js';
import { spawnCarrier, type CarrierStdio, type SpawnedCarrier } from './carrier-process.js';
import { podCommand } from './pod-spawn.js';
import { addToContainerCgroup } from '../cgroups/container-cgroup.js';

/** exec's command-line way of describing the process, runc style. */
export interface ExecFlags {
  processFile?: string;
  /** The process itself (the containerd shim's exec spec). */
  process?: OciProcessSpec;
  args: string[];
  tty?: boolean;
  env?: string[];
  cwd?: string;
  user?: string;
}

export interface ExecOptions {
  id: string;
  /** The process, described on the command line; the container's own process gives the defaults. */
  flags: ExecFlags;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  /** The carrier's stdio, when not this command's own (the containerd shim). */
  stdio?: CarrierStdio;
}

/**
 * The process to run: a --process file as it is, or the container's own
 * process with the given args, extra env, cwd, user and terminal.
 */
export async function execProcessSpec(base: OciProcessSpec, flags: ExecFlags): Promise<OciProcessSpec> {
  if (flags.process) return checkProcess(flags.process, 'the exec process');
  if (flags.processFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(flags.processFile, 'utf8'));
    } catch (err) {
      throw new KataError('USAGE', `cannot read process file ${flags.processFile}: ${messageOf(err)}`, { cause: err });
    }
    const problem = processShapeProblem(parsed, `process file ${flags.processFile}`);
    if (problem) throw new KataError('BAD_BUNDLE', problem);
    return checkProcess(parsed as OciProcessSpec, `process file ${flags.processFile}`);
  }
  if (flags.args.length === 0) throw new KataError('USAGE', 'exec needs a command, or --process FILE');
  const env = new Map((base.env ?? []).map((e) => [e.split('=')[0] ?? e, e]));
  for (const e of flags.env ?? []) {
    if (!e.includes('=')) throw new KataError('USAGE', `--env ${e}: expected KEY=VALUE`);
    env.set(e.split('=')[0] ?? e, e);
  }
  return {
    ...base,
    args: flags.args,
    env: [...env.values()],
    cwd: flags.cwd ?? base.cwd ?? '/',
    terminal: Boolean(flags.tty),
    user: flags.user ? parseUser(flags.user) : base.user,
  };
}

function parseUser(text: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!match) throw new KataError('USAGE', `--user ${text}: expected uid[:gid] (numbers)`);
  return { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
}

/** exec: starts a process in a running container and a carrier for it; the pid file gets the carrier's pid. */
export async function execProcess(ctx: RuntimeContext, options: ExecOptions): Promise<{ execId: string; carrier: SpawnedCarrier }> {
  const { id } = options;
  // What the caller gave is checked before the container is looked at: bad input fails the same either way.
  // A process file (or object) stands alone; only a command line needs the container's process as its base.
  const given = options.flags.processFile || options.flags.process ? await execProcessSpec({}, options.flags) : undefined;
  if (options.consoleSocket) await checkConsoleSocket(options.consoleSocket);
  const { state, status } = await loadContainer(ctx.store, id);
  const processSpec = given ?? (await execProcessSpec(state.process, options.flags));
  const terminal = processSpec.terminal ?? false;
  if (terminal && options.detach && !options.consoleSocket) throw new KataError('USAGE', 'exec --tty --detach needs --console-socket');
  if (!terminal && options.consoleSocket) throw new KataError('USAGE', '--console-socket needs a process with a terminal (--tty)');
  requireStatus(id, status, ['running'], 'exec in');
  const record = await readSandboxRecord(ctx.store.root, state.sandboxId);
  const execId = randomBytes(8).toString('hex');
  await withSandboxAgent(record, (agent) => agent.execProcess(id, execId, processToAgent(processSpec)));
  faultPoint('exec:after-agent');
  const vmDir = record.vm.layout.dir;
  const carrier = await spawnCarrier({
    vmDir, containerId: id, execId, consoleSocket: options.consoleSocket, tty: terminal,
    detached: options.detach, stdio: options.stdio, podCommand: podCommand(vmDir, ctx.log, 60_000), logFile: ctx.log.file, logFormat: ctx.log.format,
  }).catch(async (err: unknown) => {
    await withSandboxAgent(record, (agent) => agent.signalProcess(id, execId, 9)).catch(() => undefined);
    throw err;
  });
  if (state.hostCgroup) await addToContainerCgroup(state.hostCgroup, carrier.id.pid, ctx.logger);
  if (options.pidFile) await writePidFile(options.pidFile, carrier.id.pid);
  return { execId, carrier };
}
