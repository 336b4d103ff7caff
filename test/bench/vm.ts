// VM benchmark: in one run, the bare-kernel limit (the configured kernel, and
// the vmlinux inside it, booted with a tiny busybox initrd to /init under the
// same accelerator), QEMU start to agent ready, `create` of a one-container
// sandbox, `run` of `true`, the boot breakdown from the guest console, and
// the VM's memory (QEMU's PSS, its virtiofsd's, and a virtio-fs clone's RAM
// copy) for 1 and for 4 idle pods; then `create`, `run` and PSS again with
// sandbox VMs restored from a VM template ([factory] enable_template). Medians
// of N runs, each beside its ratio to the limit.
// Usage: npm run bench:vm [-- --runs N] [--config FILE] [--pods N]
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { accelOption, cpuModel, machineOption } from '../../src/hypervisor/qemu-args.js';
import { extractVmlinux, isElf } from '../../src/image/vmlinux.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { bootSandboxVm, shutdownSandboxVm } from '../../src/runtime/sandbox-vm.js';
import { silentLogger } from '../../src/util/logger.js';
import { configWithTemplates, repoRoot, tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { vmMemoryMb } from '../helpers/vm-memory.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const runs = Number(flag('--runs', '3'));
const pods = Number(flag('--pods', '4'));
const configPath = path.resolve(flag('--config', path.join(repoRoot, 'configuration.toml')));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const { dir, cleanup } = await tempDir('kata-ts-bench-vm-');

const configured = await loadRuntimeConfig({ explicitPath: configPath });
// The booted rows boot every VM, whatever the configuration says of templates.
const config = { ...configured, factory: { ...configured.factory, enableTemplate: false } };
const h = config.hypervisor;

const accelerator = await sandboxAccelerator(config, silentLogger);

/** A busybox initrd whose /init only says it runs: the least a kernel can boot into. */
async function tinyBusyboxInitrd(): Promise<string> {
  const tree = path.join(dir, 'tiny');
  await mkdir(path.join(tree, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', path.join(tree, 'bin', 'busybox'));
  await symlink('busybox', path.join(tree, 'bin', 'sh'));
  await writeFile(path.join(tree, 'init'), '#!/bin/sh\necho tiny-init-runs\n/bin/busybox poweroff -f\n', { mode: 0o755 });
  const out = path.join(dir, 'tiny.cpio');
  const { stdout } = await execa('sh', ['-c', `cd ${tree} && find . -mindepth 1 | busybox cpio -o -H newc`], { encoding: 'buffer' });
  await writeFile(out, stdout);
  return out;
}

/** Wall ms from spawning QEMU to the kernel's "Run /init" line. */
function bareBootToInit(kernel: string, initrd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const qemu = spawn(h.path, [
      '-machine', machineOption(h), '-accel', accelOption(h, accelerator), '-cpu', cpuModel(accelerator), '-m', `${h.defaultMemoryMiB}M`,
      '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 tsc=reliable no_timer_check',
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => {
      qemu.kill('SIGKILL');
      reject(new Error('bare QEMU did not reach /init within 120 s'));
    }, 120_000);
    qemu.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('latin1');
      if (out.includes('Run /init as init process')) {
        clearTimeout(timer);
        qemu.kill('SIGKILL');
        resolve(performance.now() - started);
      }
    });
  });
}

async function timed(run: () => Promise<CliResult>): Promise<number> {
  const started = performance.now();
  const result = await run();
  if (result.exitCode !== 0) throw new Error(result.stderr || `exit ${result.exitCode}`);
  return performance.now() - started;
}

/**
 * PSS in MB of a QEMU, by what its mappings hold: guest RAM and the TCG
 * translation buffer are anonymous mappings told apart by their size (the
 * guest's memory and QEMU's tb-size), the rest by the file they map.
 */
async function qemuPssBreakdown(pid: number, files: { image?: string; kernel: string; templates?: string }): Promise<Array<[string, number]>> {
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  const memoryKb = Number(/^(\d+)M/.exec(cmdline[cmdline.indexOf('-m') + 1] ?? '')?.[1] ?? NaN) * 1024;
  const tbKb = Number(/tb-size=(\d+)/.exec(cmdline.join(' '))?.[1] ?? NaN) * 1024;
  const classes = new Map<string, number>();
  let name = '';
  let sizeKb = 0;
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      name = mapping[1] ?? '';
      continue;
    }
    const field = /^(Size|Pss):\s+(\d+) kB/.exec(line);
    if (!field) continue;
    if (field[1] === 'Size') {
      sizeKb = Number(field[2]);
      continue;
    }
    const kind = files.templates && name.startsWith(`${files.templates}/`) ? 'guest RAM (template file pages, shared, and own copies)'
      : name.startsWith('/dev/shm/kata-ts-ram/') ? 'guest RAM (the clone\'s own copy of the template\'s, mapped in)'
      : name.startsWith('/memfd:') ? 'guest RAM (shared memfd, pages the guest touched)'
      : name === files.image ? 'rootfs image (DAX pages the guest read)'
      : name === files.kernel ? 'guest kernel file (QEMU keeps it mapped)'
      : name === '' && sizeKb === memoryKb ? 'guest RAM (pages the guest touched)'
      : name === '' && Math.abs(sizeKb - tbKb) <= 8 ? `TCG translation buffer (tb-size ${tbKb / 1024} MiB)`
      : name.startsWith('/') ? 'QEMU binary and libraries'
      : name === '[heap]' ? 'QEMU heap'
      : 'other anonymous (QEMU and TCG allocations, stacks)';
    classes.set(kind, (classes.get(kind) ?? 0) + Number(field[2]) / 1024);
  }
  return [...classes.entries()].sort((a, b) => b[1] - a[1]);
}

/** A sandbox's QEMU pid and VM dir, from its record. */
async function qemuOf(root: string, sandboxId: string, kata: (args: string[]) => Promise<CliResult>): Promise<{ pid: number; vmDir: string }> {
  const record = await kata(['state', sandboxId]);
  if (record.exitCode !== 0) throw new Error(record.stderr);
  const { sandboxDir } = await import('../../src/runtime/sandbox-record.js');
  const sandbox = JSON.parse(await readFile(path.join(sandboxDir(root, sandboxId), 'sandbox.json'), 'utf8')) as { vm: { qemu: { pid: number }; layout: { dir: string } } };
  return { pid: sandbox.vm.qemu.pid, vmDir: sandbox.vm.layout.dir };
}

/** The guest console's milestones, in seconds of guest uptime. */
function bootBreakdown(consoleLog: string): Array<[string, number]> {
  const marks: Array<[string, RegExp]> = [
    ['kernel: /init starts', /\[\s*([\d.]+)\] Run \/init as init process/],
    ['init: modules loaded, root ready', /\[\s*([\d.]+)\].*kata-ts init: uptime [\d.]+s, starting agent/],
    ['agent: serving', /kata-agent: serving on .*uptime ([\d.]+)s/],
  ];
  const found: Array<[string, number]> = [];
  for (const [name, pattern] of marks) {
    const match = pattern.exec(consoleLog);
    if (match) found.push([name, Number(match[1])]);
  }
  return found;
}

/** PSS of idle pods (a container each, given time to settle): the first alone, by mapping, then all `pods` of them. */
async function idlePods(kata: (args: string[], outputFile?: string) => Promise<CliResult>, root: string, bundle: string, prefix: string): Promise<{ one: number; breakdown: Array<[string, number]>; all: number[] }> {
  let one = NaN;
  let breakdown: Array<[string, number]> = [];
  for (let pod = 1; pod <= pods; pod++) {
    await timed(() => kata(['create', `${prefix}${pod}`, '--bundle', bundle], path.join(dir, `${prefix}${pod}.out`)));
    await timed(() => kata(['start', `${prefix}${pod}`]));
    if (pod === 1) {
      await sleep(10_000);
      const { pid, vmDir } = await qemuOf(root, `${prefix}1`, kata);
      one = await vmMemoryMb(pid, vmDir);
      breakdown = await qemuPssBreakdown(pid, { image: h.image, kernel: h.kernel, templates: path.join(dir, 'templates') });
    }
  }
  await sleep(10_000);
  const all: number[] = [];
  for (let pod = 1; pod <= pods; pod++) {
    const { pid, vmDir } = await qemuOf(root, `${prefix}${pod}`, kata);
    all.push(await vmMemoryMb(pid, vmDir));
  }
  for (let pod = 1; pod <= pods; pod++) await kata(['delete', '--force', `${prefix}${pod}`]);
  return { one, breakdown, all };
}

try {
  const root = path.join(dir, 'root');
  const bootedConfig = await configWithTemplates(configPath, dir, 'booted.toml', false);
  const kata = (args: string[], outputFile?: string): Promise<CliResult> =>
    runCli(['--root', root, '--kata-config', bootedConfig, ...args], { timeoutMs: 180_000, outputFile });
  const tiny = await tinyBusyboxInitrd();
  const vmlinux = (await isElf(h.kernel)) ? h.kernel : path.join(dir, 'vmlinux');
  if (vmlinux !== h.kernel) await extractVmlinux(h.kernel, vmlinux);
  const sleeper = await makeBundle(path.join(dir, 'sleeper'), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
  const trueBundle = await makeBundle(path.join(dir, 'true'), { args: ['true'] });

  const bareConfigured: number[] = [];
  const bareVmlinux: number[] = [];
  const agentReady: number[] = [];
  const create: number[] = [];
  const runTrue: number[] = [];
  for (let run = 1; run <= runs; run++) {
    bareConfigured.push(await bareBootToInit(h.kernel, tiny));
    bareVmlinux.push(vmlinux === h.kernel ? (bareConfigured.at(-1) ?? NaN) : await bareBootToInit(vmlinux, tiny));
    const sandbox = await bootSandboxVm({ config, sandboxId: `bench-${run}`, vmDir: path.join(dir, `vm-${run}`), accelerator, logger: silentLogger });
    agentReady.push(sandbox.bootMs);
    await shutdownSandboxVm(sandbox, silentLogger);
    create.push(await timed(() => kata(['create', `c${run}`, '--bundle', sleeper], path.join(dir, `c${run}.out`))));
    await kata(['delete', '--force', `c${run}`]);
    runTrue.push(await timed(() => kata(['run', `t${run}`, '--bundle', trueBundle])));
  }

  // One boot with the console unquieted, for the breakdown.
  const debugConfig = { ...config, hypervisor: { ...config.hypervisor, enableDebug: true } };
  const debugVm = await bootSandboxVm({ config: debugConfig, sandboxId: 'bench-debug', vmDir: path.join(dir, 'vm-debug'), accelerator, logger: silentLogger });
  await sleep(500);
  const breakdown = bootBreakdown(await readFile(debugVm.vm.layout.consoleLog, 'latin1'));
  await shutdownSandboxVm(debugVm, silentLogger);

  // Idle pods, booted and then restored from a VM template ([factory] enable_template).
  const booted = await idlePods(kata, root, sleeper, 'pod');
  const templateRoot = path.join(dir, 'template-root');
  const templateConfig = await configWithTemplates(configPath, dir, 'template.toml', true);
  const fromTemplate = (args: string[], outputFile?: string): Promise<CliResult> =>
    runCli(['--root', templateRoot, '--kata-config', templateConfig, ...args], { timeoutMs: 180_000, outputFile });
  const templateInit = await timed(() => fromTemplate(['factory', 'init']));
  const createFromTemplate: number[] = [];
  const runFromTemplate: number[] = [];
  for (let run = 1; run <= runs; run++) {
    createFromTemplate.push(await timed(() => fromTemplate(['create', `c${run}`, '--bundle', sleeper], path.join(dir, `tc${run}.out`))));
    await fromTemplate(['delete', '--force', `c${run}`]);
    runFromTemplate.push(await timed(() => fromTemplate(['run', `t${run}`, '--bundle', trueBundle])));
  }
  const restored = await idlePods(fromTemplate, templateRoot, sleeper, 'tpod');
  await fromTemplate(['factory', 'destroy']);

  const limit = median(bareVmlinux);
  const row = (name: string, values: number[]): string =>
    `${name.padEnd(44)} ${median(values).toFixed(0).padStart(7)} ms  ${(median(values) / limit).toFixed(2).padStart(5)}x   (${values.map((v) => v.toFixed(0)).join(', ')})`;
  console.log(`kata-ts VM benchmark: ${runs} runs, accelerator ${accelerator}, ${new Date().toISOString()}`);
  console.log(`config ${configPath}`);
  console.log(`kernel ${h.kernel}${h.initrd ? `, initrd ${h.initrd}` : ''}${h.image ? `, image ${h.image}` : ''}, memory ${h.defaultMemoryMiB} MiB`);
  console.log(`[factory] enable_template = ${configured.factory.enableTemplate} in this configuration: its sandboxes are ${configured.factory.enableTemplate ? 'restored from a VM template' : 'booted'}`);
  console.log('');
  console.log(`${'measure'.padEnd(44)} ${'median'.padStart(10)}  ratio to limit   (runs)`);
  console.log(row('limit: vmlinux + tiny initrd to /init', bareVmlinux));
  if (vmlinux !== h.kernel) console.log(row('configured kernel + tiny initrd to /init', bareConfigured));
  console.log(row('QEMU start to agent ready', agentReady));
  console.log(row('create (one-container sandbox), booted', create));
  console.log(row('run true, booted', runTrue));
  console.log('');
  console.log('boot breakdown (guest uptime, console unquieted):');
  for (const [name, seconds] of breakdown) console.log(`  ${name.padEnd(40)} ${seconds.toFixed(2)} s`);
  console.log('');
  console.log(row('create, restored from a VM template', createFromTemplate));
  console.log(row('run true, restored from a VM template', runFromTemplate));
  console.log(`${'VM template made (factory init)'.padEnd(44)} ${templateInit.toFixed(0).padStart(7)} ms`);
  console.log('');
  for (const [name, figures] of [['booted', booted], ['restored from a VM template', restored]] as const) {
    const sum = figures.all.reduce((a, b) => a + b, 0);
    console.log(`VM memory (QEMU PSS, virtiofsd PSS, a clone's RAM copy not mapped in), 1 idle pod, ${name}: ${figures.one.toFixed(1)} MB`);
    console.log('  QEMU PSS by mapping:');
    for (const [kind, mb] of figures.breakdown) console.log(`  ${kind.padEnd(56)} ${mb.toFixed(1).padStart(6)} MB`);
    console.log(`VM memory, ${pods} idle pods, ${name}: ${sum.toFixed(1)} MB in all, ${(sum / pods).toFixed(1)} MB per pod, marginal ${((sum - figures.one) / Math.max(1, pods - 1)).toFixed(1)} MB per extra pod`);
  }
} finally {
  await cleanup();
}
