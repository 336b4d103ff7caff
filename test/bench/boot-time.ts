// Boot benchmark: in one run, the time for bare QEMU to bring the guest kernel
// and initrd to /init, and the time for kata-ts to bring a sandbox VM to a
// live agent (QEMU start to the first Health.Check answer through the pod process).
// Usage: npm run bench:boot [-- --runs N]
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { bootSandboxVm, shutdownSandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { repoRoot } from '../helpers/fixtures.js';

const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 1;
const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
const h = config.hypervisor;
const accelerator = await sandboxAccelerator(config, silentLogger);

/** Wall ms from spawning QEMU to the kernel's "Run /init" line, and the guest's own timestamp of it. */
function bareBootToInit(): Promise<{ wallMs: number; guestSeconds: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const qemu = spawn(h.path, [
      '-machine', `${h.machineType},accel=${accelerator}`, '-cpu', accelerator === 'kvm' ? 'host' : 'max', '-m', `${h.defaultMemoryMiB}M`,
      '-nodefaults', '-nographic', '-no-user-config', '-serial', 'stdio',
      '-kernel', h.kernel, '-initrd', h.initrd, '-append', 'console=ttyS0 panic=1 tsc=reliable no_timer_check',
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => {
      qemu.kill('SIGKILL');
      reject(new Error('bare QEMU did not reach /init within 120 s'));
    }, 120_000);
    qemu.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('latin1');
      const match = /\[\s*([\d.]+)\] Run \/init as init process/.exec(out);
      if (match) {
        clearTimeout(timer);
        qemu.kill('SIGKILL');
        resolve({ wallMs: Date.now() - started, guestSeconds: Number(match[1]) });
      }
    });
  });
}

const rows: Array<{ run: number; bareMs: number; bareGuestS: number; kataMs: number }> = [];
for (let run = 1; run <= runs; run++) {
  const bare = await bareBootToInit();
  const sandbox = await bootSandboxVm({ config, sandboxId: `bench-${process.pid}-${run}`, vmDir: path.join(os.tmpdir(), `kata-ts-bench-${process.pid}-${run}`), accelerator, logger: silentLogger });
  await shutdownSandboxVm(sandbox, silentLogger);
  rows.push({ run, bareMs: bare.wallMs, bareGuestS: bare.guestSeconds, kataMs: sandbox.bootMs });
}

console.log(`accelerator: ${accelerator}; kernel ${h.kernel}; initrd ${h.initrd}`);
console.log('run  bare QEMU to /init (wall ms, guest s)  kata-ts to agent ready (ms)  ratio');
for (const r of rows) {
  console.log(`${String(r.run).padEnd(4)} ${String(r.bareMs).padStart(8)} ms  (${r.bareGuestS.toFixed(2)} s)${' '.repeat(16)}${String(r.kataMs).padStart(8)} ms${' '.repeat(15)}${(r.kataMs / r.bareMs).toFixed(2)}x`);
}
