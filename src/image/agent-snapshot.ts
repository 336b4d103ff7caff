import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cpuModel } from '../hypervisor/qemu-args.js';
import { runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';
import { agentNodeFlags, agentSnapshotBlob, agentSnapshotCpu, guestAgentDir } from './init-script.js';

/** QEMU's user-mode emulator: it runs the snapshot builder on the CPU a TCG guest sees. */
export const userModeEmulator = 'qemu-x86_64';

/**
 * Builds the agent's V8 startup snapshot in `agentDir` (the staged
 * /opt/kata-ts), with the node binary and flags the guest runs it with.
 *
 * node refuses a snapshot built on a CPU whose features differ from its own
 * (V8's CachedDataVersionTag hashes them), and this host's CPU is not what a
 * TCG guest sees (QEMU's `max` model, without CET among others). So the
 * builder runs under QEMU's user-mode emulation of that same model, and the
 * features it saw (kata-ts-cpu-features) are recorded beside the blob: the
 * guest's /init starts the agent from the snapshot only on a CPU that matches,
 * and from the bundle and its code cache otherwise (a KVM guest, another QEMU).
 *
 * The builder script needs a copy of http2.constants from the same node,
 * written beside it and removed after.
 */
export async function recordAgentSnapshot(node: string, agentDir: string, cpuFeatures: string): Promise<void> {
  const constants = path.join(agentDir, 'http2-constants.json');
  const emulated = ['-cpu', cpuModel('tcg')];
  try {
    await runCommand(node, ['-e', `require('node:fs').writeFileSync(${JSON.stringify(constants)}, JSON.stringify(require('node:http2').constants))`]);
    await runCommand(userModeEmulator, [...emulated, node, ...agentNodeFlags, '--snapshot-blob', path.join(agentDir, path.basename(agentSnapshotBlob)), '--build-snapshot', path.join(agentDir, 'kata-agent-snapshot.cjs')], {
      timeoutMs: 300_000,
      env: { ...process.env, KATA_TS_AGENT_STAGED_DIR: agentDir, KATA_TS_AGENT_GUEST_DIR: guestAgentDir, KATA_TS_HTTP2_CONSTANTS: constants },
    });
    const features = await runCommand(userModeEmulator, [...emulated, cpuFeatures]);
    await writeFile(path.join(agentDir, path.basename(agentSnapshotCpu)), `${features.stdout}\n`);
  } catch (err) {
    throw new KataError('IO', `cannot build the agent's startup snapshot: ${messageOf(err)}`, { cause: err });
  } finally {
    await rm(constants, { force: true });
  }
}
