import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HypervisorConfig } from '../config/runtime-config.js';
import { accelOption, cpuModel, firmwareArgs, machineOption } from '../hypervisor/qemu-args.js';
import { messageOf } from '../util/errors.js';
import { probeInitrd, probeMarker } from './probe-initrd.js';

/** How far a probe guest got, in boot order. */
export const bootStages = ['none', 'firmware', 'kernel', 'init', 'user-space'] as const;
export type BootStage = (typeof bootStages)[number];

/** What one probe boot showed: the evidence behind the accelerator decision. */
export interface KvmEvidence {
  usable: boolean;
  /**
   * False when the outcome says nothing about KVM (QEMU could not start or load
   * the kernel, or a slow guest was still making progress at the deadline): such
   * a result is never cached, and never makes auto pick KVM.
   */
  conclusive: boolean;
  /** The furthest stage the guest reached. */
  stage: BootStage;
  /** One line: what happened. */
  detail: string;
  elapsedMs: number;
  /** The last lines the guest printed (firmware and kernel console). */
  console: string[];
  /** QEMU's last stderr lines. */
  qemuStderr: string[];
  probedAt: string;
}

export interface KvmProbeInput {
  hypervisor: HypervisorConfig;
  /** kvm, always, but for the integration test that proves the probe's initrd boots under TCG. */
  accelerator?: 'kvm' | 'tcg';
  /** A working KVM reaches user space in about a second; the deadline only matters on hosts where it hangs. */
  deadlineMs: number;
  /** A timeout counts as a hang only when the guest printed nothing for this long before it. */
  stallMs: number;
}

/** Markers in the guest's output, each proving a stage was reached. */
const stageMarkers: Array<[BootStage, RegExp]> = [
  ['user-space', new RegExp(probeMarker)],
  ['init', /Run \/init as init process/],
  ['kernel', /Linux version|Decompressing Linux|Booting the kernel|KASLR/],
  ['firmware', /Booting from ROM|SeaBIOS/],
];

export function stageReached(output: string): BootStage {
  return stageMarkers.find(([, marker]) => marker.test(output))?.[0] ?? 'none';
}

const lastLines = (text: string, n: number): string[] =>
  text.split(/\r?\n/).map((l) => l.replace(/[^\x20-\x7e]/g, '').trimEnd()).filter(Boolean).slice(-n);

export interface ProbeOutcome {
  /** How QEMU ended: its exit, a deadline, or a failure to spawn it. */
  end: { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null } | { kind: 'deadline' } | { kind: 'spawn-error'; message: string };
  output: string;
  stderr: string;
  elapsedMs: number;
  /** Milliseconds between the guest's last output and the end. */
  quietMs: number;
}

/** Turns what a probe boot did into evidence; pure, so every host variant is a unit test. */
export function judgeProbe(outcome: ProbeOutcome, input: Pick<KvmProbeInput, 'deadlineMs' | 'stallMs' | 'accelerator'>): Omit<KvmEvidence, 'probedAt'> {
  const accel = `accel=${input.accelerator ?? 'kvm'}`;
  const stage = stageReached(outcome.output);
  const consoleTail = lastLines(outcome.output, 8);
  const qemuStderr = lastLines(outcome.stderr, 6).filter((l) => !/warning:/i.test(l));
  const base = { stage, elapsedMs: outcome.elapsedMs, console: consoleTail, qemuStderr };
  const lastSeen = consoleTail.at(-1);
  const after = stage === 'none' ? 'before the guest printed anything' : `after reaching ${stage}${lastSeen ? ` (last output: "${lastSeen}")` : ''}`;
  if (stage === 'user-space') {
    return { ...base, usable: true, conclusive: true, detail: `QEMU with ${accel} booted the guest kernel to user space in ${outcome.elapsedMs} ms` };
  }
  const { end } = outcome;
  if (end.kind === 'spawn-error') {
    return { ...base, usable: false, conclusive: false, detail: `cannot start QEMU: ${end.message}` };
  }
  if (end.kind === 'deadline') {
    const stalled = outcome.quietMs >= input.stallMs;
    return {
      ...base,
      usable: false,
      conclusive: stalled,
      detail: stalled
        ? `the guest hung under ${accel}: no user space within ${input.deadlineMs} ms, silent for ${outcome.quietMs} ms ${after}`
        : `the guest did not reach user space within ${input.deadlineMs} ms but was still printing ${after}`,
    };
  }
  const why = qemuStderr.at(-1);
  const how = end.signal ? `was killed by ${end.signal}` : `exited with status ${end.code}`;
  // QEMU failing before any guest output, for a reason that is not KVM's (a kernel it
  // cannot load, a bad option), says nothing about KVM: the same run would fail under TCG.
  const aboutKvm = stage !== 'none' || end.signal !== null || /kvm|msr|accel/i.test(outcome.stderr);
  return {
    ...base,
    usable: false,
    conclusive: aboutKvm,
    detail: `QEMU with ${accel} ${how} ${after}${why ? `: ${why}` : ''}`,
  };
}

/**
 * Boots the configured guest kernel under accel=kvm, with the machine type,
 * CPU model and firmware that a sandbox VM gets, and a probe initrd whose
 * /init prints a marker. Only a guest that reaches user space proves KVM:
 * on some hosts /dev/kvm opens and even the firmware runs while Linux then
 * hangs, on others QEMU aborts.
 */
export async function probeKvmBoot(input: KvmProbeInput): Promise<KvmEvidence> {
  const h = input.hypervisor;
  const accelerator = input.accelerator ?? 'kvm';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-kvm-probe-'));
  try {
    const initrd = path.join(dir, 'probe-initrd.cpio');
    await writeFile(initrd, probeInitrd());
    const args = [
      '-machine', machineOption(h), '-accel', accelOption(h, accelerator), '-cpu', cpuModel(accelerator), '-m', '128M', '-smp', '1',
      ...firmwareArgs({ hypervisor: h }),
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      // Firmware messages (debug port) and the kernel console share stdout.
      '-chardev', 'stdio,id=out,mux=on,signal=off', '-serial', 'chardev:out', '-device', 'isa-debugcon,iobase=0x402,chardev=out',
      '-kernel', h.kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1',
    ];
    const outcome = await runUntil(h.path, args, input.deadlineMs, (output) => stageReached(output) === 'user-space');
    return { ...judgeProbe(outcome, input), probedAt: new Date().toISOString() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a program until `done(stdout)` holds, it exits, or the deadline passes; never leaves it running. */
function runUntil(file: string, args: string[], deadlineMs: number, done: (output: string) => boolean): Promise<ProbeOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    let lastOutputAt = started;
    let settled = false;
    const finish = (end: ProbeOutcome['end']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const now = Date.now();
      resolve({ end, output, stderr, elapsedMs: now - started, quietMs: now - lastOutputAt });
    };
    const timer = setTimeout(() => finish({ kind: 'deadline' }), deadlineMs);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('latin1');
      lastOutputAt = Date.now();
      if (done(output)) finish({ kind: 'exit', code: 0, signal: null });
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (err) => finish({ kind: 'spawn-error', message: messageOf(err) }));
    // 'close' rather than 'exit': the last output is read by then.
    child.on('close', (code, signal) => finish({ kind: 'exit', code, signal }));
  });
}
