import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The tests' own answer to "does KVM run our guest here?", written apart from
 * kata-ts's probe so that the probe can be checked against it: QEMU with
 * accel=kvm and -cpu host boots the guest kernel with the real guest initrd,
 * and KVM works when the kernel starts /init within the deadline.
 */
export async function kvmBootsGuest(qemu: string, kernel: string, initrd: string, deadlineMs = 30_000): Promise<boolean> {
  if (!existsSync('/dev/kvm')) return false;
  return new Promise((resolve) => {
    const child = spawn(qemu, [
      '-machine', 'pc,accel=kvm', '-cpu', 'host', '-m', '512M', '-nodefaults', '-display', 'none', '-no-reboot',
      '-serial', 'stdio', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1',
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), deadlineMs);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('latin1');
      if (out.includes('Run /init as init process')) done(true);
    });
    child.on('error', () => done(false));
    child.on('exit', () => done(out.includes('Run /init as init process')));
  });
}
