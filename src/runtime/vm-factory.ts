import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { templateUnusableBy } from '../config/runtime-config.js';
import { qemuArgs, type VmSpec } from '../hypervisor/qemu-args.js';
import { killFromPidFile, startVm, stopVm } from '../hypervisor/qemu-vm.js';
import { vmLayout } from '../hypervisor/vm-layout.js';
import { saveVmState } from '../hypervisor/vm-state.js';
import { AgentClient } from '../agent-client/agent-client.js';
import { startAgentProxy } from '../proxy/agent-proxy.js';
import { tryFileLock, withDirLock } from '../store/state-lock.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { fileIdentity } from '../util/file-identity.js';
import { preparePrivateDir } from '../util/private-dir.js';

/** A saved template VM: its RAM (memory) and device state (state), restored by every clone. */
export interface VmTemplate {
  key: string;
  dir: string;
  memoryFile: string;
  stateFile: string;
}

/** Bump when what a template holds changes, so that older ones are not restored. */
const templateFormat = 'kata-ts-vm-template/1';

/**
 * Which template a VM can be restored from: its QEMU command line (with
 * neutral paths: the device set is what must match) and the files QEMU loads.
 */
export async function templateKey(spec: VmSpec): Promise<string> {
  const neutral: VmSpec = { ...spec, sandboxId: 'template', layout: vmLayout('/template'), template: undefined };
  const h = spec.hypervisor;
  const files = await Promise.all([h.path, h.kernel, h.initrd, h.image, h.firmware].map(fileIdentity));
  const text = [templateFormat, ...qemuArgs(neutral), ...files].join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 24);
}

export function templateAt(root: string, key: string): VmTemplate {
  const dir = path.join(root, key);
  return { key, dir, memoryFile: path.join(dir, 'memory'), stateFile: path.join(dir, 'state') };
}

/**
 * Why a VM cannot start from a template, if it cannot; such a VM boots. Besides
 * what the configuration rules out, network devices are the pod's own (their
 * taps and MACs): bootSandboxVm restores a VM without them and hot-plugs them
 * after. The namespace QEMU runs in does not matter to the guest.
 */
export function templateFits(spec: VmSpec): string | undefined {
  if ((spec.network?.nics.length ?? 0) > 0) return 'the VM has network devices';
  return templateUnusableBy(spec.hypervisor);
}

/** Whether the template is complete: its state file is written last. */
async function isSaved(template: VmTemplate): Promise<boolean> {
  return (await stat(template.stateFile).catch(() => undefined)) !== undefined;
}

/** The lock of one template (a file beside it in the template root, which stays). */
function templateLockPath(template: VmTemplate): string {
  return `${template.dir}.lock`;
}

/**
 * Why a saved template must not be restored, if it must not: its directory and
 * files are root's own, real (no symlinks) and writable by no one else. Whoever
 * could write them would choose the memory and device state of every clone.
 */
export async function templateDistrust(template: VmTemplate): Promise<string | undefined> {
  const uid = process.geteuid?.();
  for (const [file, kind] of [[template.dir, 'directory'], [template.memoryFile, 'file'], [template.stateFile, 'file']] as const) {
    const st = await lstat(file).catch(() => undefined);
    if (!st) return `${file} is missing`;
    if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) return `${file} is not a ${kind}`;
    if (st.uid !== uid) return `${file} belongs to uid ${st.uid}, not to this user`;
    if ((st.mode & 0o022) !== 0) return `${file} is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  }
  return undefined;
}

/**
 * Runs `use` with the saved template, held with a shared lock: a prune (which
 * takes the lock exclusively, without waiting) leaves it alone meanwhile, so a
 * clone can map its memory and load its state. Undefined when it is not saved.
 */
export async function withSavedTemplate<T>(template: VmTemplate, use: (template: VmTemplate) => Promise<T>): Promise<{ value: T } | undefined> {
  return withDirLock(template.dir, templateLockPath(template), async () => {
    if (!(await isSaved(template))) return undefined;
    const distrust = await templateDistrust(template);
    if (distrust) throw new KataError('IO', `the VM template ${template.dir} cannot be used: ${distrust} (kata-ts factory destroy removes it)`);
    await markUsed(template);
    return { value: await use(template) };
  }, { shared: true });
}

/**
 * Runs `use` with the template for this VM, made now if there is none: a VM
 * booted with its RAM in the template's memory file, its agent up and its first
 * calls made (then the session closed, so the agent waits for the next),
 * stopped and its device state saved. One command makes it; others wait on the
 * lock and use it. The template root and the template are checked before use.
 */
export async function withTemplate<T>(root: string, spec: VmSpec, logger: Logger, readyTimeoutMs: number, use: (template: VmTemplate) => Promise<T>): Promise<T> {
  const untrusted = await preparePrivateDir(root);
  if (untrusted) throw new KataError('IO', `the VM template directory cannot be used: ${untrusted}`);
  const template = templateAt(root, await templateKey(spec));
  for (let attempt = 0; ; attempt++) {
    const used = await withSavedTemplate(template, use);
    if (used) return used.value;
    if (attempt > 0) throw new KataError('VM', `the VM template ${template.dir} was removed right after it was made`);
    await withDirLock(root, templateLockPath(template), async () => {
      if (await isSaved(template)) return;
      const started = Date.now();
      await makeTemplate(template, spec, logger, readyTimeoutMs).catch(async (err: unknown) => {
        await rm(template.dir, { recursive: true, force: true });
        throw new KataError('VM', `cannot make the VM template: ${messageOf(err)}`, { cause: err });
      });
      logger.info(`made the VM template ${template.dir} in ${Date.now() - started} ms`);
      await pruneTemplates(root, template.key, logger);
    });
  }
}

/** `factory init`: the template for this VM, made now unless it exists. */
export function ensureTemplate(root: string, spec: VmSpec, logger: Logger, readyTimeoutMs: number): Promise<VmTemplate> {
  return withTemplate(root, spec, logger, readyTimeoutMs, async (template) => template);
}

/**
 * How many templates are kept: each holds what its guest touched while it
 * booted (about 100 MB), and a rebuilt image or a changed configuration makes
 * a new one, so the least recently used beyond these are removed.
 */
export const templatesKept = 4;

/** Records a use (the template directory's mtime), which pruning goes by. */
async function markUsed(template: VmTemplate): Promise<VmTemplate> {
  const now = new Date();
  await utimes(template.dir, now, now).catch(() => undefined);
  return template;
}

/**
 * Removes the least recently used templates beyond `templatesKept`; running
 * clones keep their mapping. Each is removed under its own lock, taken without
 * waiting: a template being made or restored right now stays.
 */
export async function pruneTemplates(root: string, justMade: string, logger: Logger): Promise<void> {
  const others = await Promise.all((await listTemplates(root)).filter((t) => t.key !== justMade).map(async (t) => ({ ...t, used: (await stat(t.dir)).mtimeMs })));
  others.sort((a, b) => b.used - a.used);
  for (const stale of others.slice(templatesKept - 1)) {
    const lock = await tryFileLock(templateLockPath(stale));
    if (!lock) {
      logger.debug(`VM template ${stale.dir} is in use: kept for now`);
      continue;
    }
    try {
      await rm(stale.dir, { recursive: true, force: true });
      // Its lock file goes too, while held: a command waiting on it then finds the template gone.
      await rm(templateLockPath(stale), { force: true });
    } finally {
      await lock.release();
    }
    logger.info(`removed the least recently used VM template ${stale.dir}`);
  }
}

async function makeTemplate(template: VmTemplate, spec: VmSpec, logger: Logger, readyTimeoutMs: number): Promise<void> {
  const layout = vmLayout(path.join(template.dir, 'vm'));
  // A command killed while it made this template left its QEMU: known by the pid file it named.
  await killFromPidFile(layout.pidFile);
  await rm(template.dir, { recursive: true, force: true });
  await mkdir(template.dir, { mode: 0o700 });
  // QEMU in the host's mount namespace: its VM dir is not under the VM root.
  const vm = await startVm({
    ...spec, sandboxId: 'template', layout, template: { memoryFile: template.memoryFile, role: 'save' },
    hypervisor: { ...spec.hypervisor, privateMountNamespace: false },
  }, logger);
  try {
    if (vm.agentChannel.kind !== 'serial') throw new KataError('VM', 'a VM template needs the serial agent channel');
    const proxySocket = path.join(layout.dir, 'proxy.sock');
    // Its complaints go to the log only: if the template fails, the one-line error says why.
    const proxy = await startAgentProxy(vm.agentChannel.socket, proxySocket, logger.fileOnly(), readyTimeoutMs);
    // The calls every clone makes first, made once here: the agent's HTTP/2 and gRPC paths are
    // loaded and compiled in the saved guest, so a clone does not pay for them.
    const client = new AgentClient(`unix://${proxySocket}`);
    try {
      await client.waitReady(readyTimeoutMs);
      await client.reseedRandomDev(randomBytes(64).toString('base64'));
      await client.setGuestDateTime(Date.now());
    } finally {
      client.close();
      await proxy.close();
    }
    // The agent sees its port close and opens it again for the next session; let it get there.
    await sleep(300);
    const saving = `${template.stateFile}.tmp`;
    await saveVmState(layout.qmpSocket, saving);
    await rename(saving, template.stateFile);
  } finally {
    await stopVm(vm, logger);
  }
}

/** The templates under `root`, for `factory status`. */
export async function listTemplates(root: string): Promise<Array<VmTemplate & { memoryBytes: number; created: Date }>> {
  const found = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const template = templateAt(root, entry.name);
    const state = await stat(template.stateFile).catch(() => undefined);
    const memory = await stat(template.memoryFile).catch(() => undefined);
    if (state && memory) found.push({ ...template, memoryBytes: memory.blocks * 512, created: state.mtime });
  }
  return found;
}

/**
 * Removes every template under `root` (running clones keep their mapping of
 * the memory file), and the QEMU of one a killed command was making.
 */
export async function destroyTemplates(root: string): Promise<number> {
  const templates = await listTemplates(root);
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await killFromPidFile(path.join(root, entry.name, 'vm', 'qemu.pid'));
  }
  await rm(root, { recursive: true, force: true });
  return templates.length;
}
