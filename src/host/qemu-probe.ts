import { spawn } from 'node:child_process';
import { runCommand } from '../util/run-command.js';
import { messageOf } from '../util/errors.js';

/** What a short QEMU run under TCG told about QEMU and its firmware. */
export interface FirmwareProbe {
  usable: boolean;
  /** Milliseconds until the firmware finished, or until we gave up. */
  elapsedMs: number;
  detail: string;
}

/** Questions about a QEMU binary; injected so that check can be tested without QEMU. */
export interface QemuProbes {
  version(qemuPath: string): Promise<string | undefined>;
  devices(qemuPath: string): Promise<Set<string> | undefined>;
  tcgFirmware(qemuPath: string, deadlineMs: number): Promise<FirmwareProbe>;
}

/** SeaBIOS prints this on its debug port once it has run through POST and found no disk. */
const firmwareDoneMarker = 'No bootable device';

export function parseQemuVersion(output: string): string | undefined {
  return /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(output)?.[1];
}

/** `-device help` lists `name "driver", bus ..., desc "..."` lines. */
export function parseDeviceHelp(output: string): Set<string> {
  const names = new Set<string>();
  for (const match of output.matchAll(/^name "([^"]+)"/gm)) names.add(match[1] as string);
  return names;
}

/**
 * Runs SeaBIOS under TCG with no disk and waits for its "no bootable device"
 * message on the debug port: QEMU, its firmware and software emulation work.
 * (KVM needs more proof than firmware: see kvm-boot-probe.ts.)
 */
export function probeTcgFirmware(qemuPath: string, deadlineMs: number): Promise<FirmwareProbe> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(
      qemuPath,
      ['-machine', 'pc,accel=tcg', '-m', '32', '-nodefaults', '-no-user-config', '-display', 'none',
        '-debugcon', 'stdio', '-global', 'isa-debugcon.iobase=0x402'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let firmware = '';
    let stderr = '';
    let settled = false;
    const finish = (usable: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve({ usable, elapsedMs: Date.now() - started, detail });
    };
    const timer = setTimeout(() => {
      const reached = firmware.trim().split('\n').pop() ?? '';
      finish(false, `guest firmware did not finish within ${deadlineMs} ms${reached ? ` (last output: "${reached.trim()}")` : ''}`);
    }, deadlineMs);
    child.stdout.on('data', (chunk: Buffer) => {
      firmware += chunk.toString('latin1');
      if (firmware.includes(firmwareDoneMarker)) finish(true, `guest firmware ran to completion in ${Date.now() - started} ms`);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (err) => finish(false, `cannot start ${qemuPath}: ${messageOf(err)}`));
    child.on('exit', (code, signal) => {
      const why = stderr.trim().split('\n').filter((l) => !l.includes('warning:')).pop() ?? '';
      finish(false, `QEMU exited (${signal ?? `status ${code}`}) before the guest firmware finished${why ? `: ${why}` : ''}`);
    });
  });
}

export const realQemuProbes: QemuProbes = {
  async version(qemuPath) {
    try {
      const { stdout } = await runCommand(qemuPath, ['--version'], { timeoutMs: 10_000 });
      return parseQemuVersion(stdout);
    } catch {
      return undefined;
    }
  },
  async devices(qemuPath) {
    try {
      const { stdout } = await runCommand(qemuPath, ['-machine', 'none', '-device', 'help'], { timeoutMs: 10_000 });
      return parseDeviceHelp(stdout);
    } catch {
      return undefined;
    }
  },
  tcgFirmware: probeTcgFirmware,
};
