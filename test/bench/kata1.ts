// kata-ts against Kata Containers 1.x: `run` of `sh -c 'echo hi'` with
// kata-runtime (its proxy, shim and Go agent) and with kata-ts, on the same
// guest kernel, memory, vCPUs and accelerator, alternating, medians of N.
// kata-ts runs twice a round: with the configuration as it is (the bundled one
// restores VMs from a template) and with every VM booted (enable_template =
// false). Kata's agent is the guest's /init in an uncompressed initrd (as
// Kata's osbuilder makes with AGENT_INIT=yes); its containers share the
// bundle through 9p, as kata-ts's do.
// Needs Kata 1.x's four binaries in one directory: test/bench/build-kata1.sh
// builds them from their sources (not on Debian's mirrors, so not in CI).
// Usage: npm run bench:kata1 -- --kata1 DIR [--runs N] [--config FILE]
import { spawn } from 'node:child_process';
import { access, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { silentLogger } from '../../src/util/logger.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli, runTool, type CliResult } from '../helpers/run-cli.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const kata1Dir = path.resolve(flag('--kata1', process.env.KATA1_DIR ?? ''));
const runs = Number(flag('--runs', '5'));
const configPath = path.resolve(flag('--config', path.join(repoRoot, 'configuration.toml')));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const kata1 = (name: string): string => path.join(kata1Dir, name);

for (const binary of ['kata-runtime', 'kata-proxy', 'kata-shim', 'kata-agent']) {
  if (!(await access(kata1(binary)).then(() => true, () => false))) {
    console.error(`bench:kata1: ${kata1(binary)} is missing; build Kata 1.x with test/bench/build-kata1.sh SOURCES DIR, then pass --kata1 DIR`);
    process.exit(2);
  }
}

const configured = await loadRuntimeConfig({ explicitPath: configPath });
const h = configured.hypervisor;
const accelerator = await sandboxAccelerator(configured, silentLogger);
const { dir, cleanup } = await tempDir('kata-ts-bench-kata1-');
const undo: Array<() => Promise<unknown>> = [];

/** Kata's agent as the guest's /init, with the libraries it links, in an uncompressed newc initrd. */
async function kataAgentInitrd(): Promise<string> {
  const tree = path.join(dir, 'initrd');
  for (const sub of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'sbin', 'usr/bin']) await mkdir(path.join(tree, sub), { recursive: true });
  await copyFile(kata1('kata-agent'), path.join(tree, 'usr/bin/kata-agent'));
  await symlink('/usr/bin/kata-agent', path.join(tree, 'init'));
  await symlink('/usr/bin/kata-agent', path.join(tree, 'sbin/init'));
  const { stdout } = await execa('ldd', [kata1('kata-agent')], { reject: false });
  for (const lib of stdout.match(/\/\S+/g) ?? []) {
    await mkdir(path.join(tree, path.dirname(lib)), { recursive: true });
    await copyFile(lib, path.join(tree, lib));
  }
  const out = path.join(dir, 'kata-agent-initrd.img');
  const cpio = await execa('sh', ['-c', `cd ${tree} && find . -mindepth 1 | busybox cpio -o -H newc`], { encoding: 'buffer' });
  await writeFile(out, cpio.stdout);
  return out;
}

/** Kata 1.x asks QEMU for KVM and the host's CPU model; under TCG a wrapper asks for what kata-ts's VMs get. */
async function qemuForKata(): Promise<string> {
  if (accelerator === 'kvm') return h.path;
  const wrapper = path.join(dir, 'qemu-tcg');
  await writeFile(wrapper, `#!/bin/bash
args=()
for a in "$@"; do
  a=\${a//accel=kvm,kernel_irqchip=split/accel=tcg}
  a=\${a//accel=kvm,kernel_irqchip/accel=tcg}
  a=\${a//accel=kvm/accel=tcg}
  case "$a" in host,*|host) a=max ;; esac
  args+=("$a")
done
exec ${h.path} "\${args[@]}"
`, { mode: 0o755 });
  return wrapper;
}

async function kataConfig(qemu: string, initrd: string): Promise<string> {
  const file = path.join(dir, 'kata1-configuration.toml');
  await writeFile(file, `[hypervisor.qemu]
path = "${qemu}"
kernel = "${h.kernel}"
initrd = "${initrd}"
machine_type = "pc"
kernel_params = ""
firmware = ""
machine_accelerators = ""
default_vcpus = ${h.defaultVcpus}
default_maxvcpus = 0
default_bridges = 1
default_memory = ${h.defaultMemoryMiB}
disable_block_device_use = false
shared_fs = "virtio-9p"
block_device_driver = "virtio-scsi"
enable_iothreads = false
valid_hypervisor_paths = ["${qemu}"]

[proxy.kata]
path = "${kata1('kata-proxy')}"

[shim.kata]
path = "${kata1('kata-shim')}"

[agent.kata]

[netmon]
path = "/usr/libexec/kata-containers/kata-netmon"

[runtime]
internetworking_model = "tcfilter"
disable_guest_seccomp = true
`);
  return file;
}

/** kata-runtime logs to syslog and fails without /dev/log: a busybox syslogd for the run, if the host has none. */
async function ensureSyslog(): Promise<void> {
  if (await access('/dev/log').then(() => true, () => false)) return;
  const syslogd = spawn('busybox', ['syslogd', '-n', '-O', path.join(dir, 'syslog.log')], { stdio: 'ignore' });
  undo.push(async () => {
    syslogd.kill('SIGTERM');
    await rm('/dev/log', { force: true });
  });
  for (let i = 0; i < 50 && !(await access('/dev/log').then(() => true, () => false)); i++) await sleep(100);
}

/**
 * Kata 1.x shares a container's rootfs by mounting it under the sandbox's
 * mounts dir and relying on propagation into the shared dir (a slave bind); on
 * a host whose / is private (no systemd) the mount never reaches the guest.
 */
async function ensureSharedMountPropagation(): Promise<void> {
  const sandboxes = '/run/kata-containers/shared/sandboxes';
  await mkdir(sandboxes, { recursive: true });
  if ((await runTool('mountpoint', ['-q', sandboxes])).exitCode === 0) return;
  await execa('mount', ['--bind', sandboxes, sandboxes]);
  await execa('mount', ['--make-shared', sandboxes]);
  undo.push(() => execa('umount', [sandboxes], { reject: false }));
}

/** Wall ms of one `run`, which must print hi and exit 0. */
async function timedRun(run: () => Promise<CliResult>, what: string): Promise<number> {
  const started = performance.now();
  const result = await run();
  const ms = performance.now() - started;
  if (result.exitCode !== 0 || result.stdout.trim() !== 'hi') throw new Error(`${what}: exit ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  return ms;
}

/** The kata-ts configuration with [factory] as given and its templates in the temp dir. */
async function kataTsConfig(name: string, enableTemplate: boolean): Promise<string> {
  const text = (await readFile(configPath, 'utf8'))
    .replace(/"guest\//g, `"${path.join(path.dirname(configPath), 'guest')}/`)
    .replace(/^\s*(enable_template|template_path)\s*=.*$/gm, '')
    .replace(/^\[factory\]\s*$/m, '');
  const file = path.join(dir, name);
  await writeFile(file, `${text}\n[factory]\nenable_template = ${enableTemplate}\ntemplate_path = "${path.join(dir, 'templates')}"\n`);
  return file;
}

try {
  await ensureSyslog();
  await ensureSharedMountPropagation();
  const kataConfigFile = await kataConfig(await qemuForKata(), await kataAgentInitrd());
  const bundle = await makeBundle(path.join(dir, 'bundle'), { args: ['sh', '-c', 'echo hi'] });
  const asConfigured = await kataTsConfig('as-configured.toml', configured.factory.enableTemplate);
  const booted = await kataTsConfig('booted.toml', false);
  const root = path.join(dir, 'root');
  const kataRuntime = (id: string): Promise<CliResult> =>
    runTool(kata1('kata-runtime'), ['--kata-config', kataConfigFile, 'run', '--bundle', bundle, id], { timeoutMs: 180_000 });
  const kataTs = (config: string, id: string): Promise<CliResult> =>
    runCli(['--root', root, '--kata-config', config, 'run', '--bundle', bundle, id], { timeoutMs: 180_000 });

  // One round first, not counted: page cache, and the template the configured runs restore from.
  const warmUp = {
    kata1: await timedRun(() => kataRuntime('warm-k'), 'kata-runtime run'),
    configured: await timedRun(() => kataTs(asConfigured, 'warm-c'), 'kata-ts run'),
    booted: await timedRun(() => kataTs(booted, 'warm-b'), 'kata-ts run, booted'),
  };
  const times = { kata1: [] as number[], configured: [] as number[], booted: [] as number[] };
  for (let run = 1; run <= runs; run++) {
    times.kata1.push(await timedRun(() => kataRuntime(`k${run}`), 'kata-runtime run'));
    times.configured.push(await timedRun(() => kataTs(asConfigured, `c${run}`), 'kata-ts run'));
    times.booted.push(await timedRun(() => kataTs(booted, `b${run}`), 'kata-ts run, booted'));
  }
  await runCli(['--root', root, '--kata-config', asConfigured, 'factory', 'destroy']);

  const base = median(times.kata1);
  const row = (name: string, values: number[], warm: number): string =>
    `${name.padEnd(58)} ${median(values).toFixed(0).padStart(6)} ms  ${(median(values) / base).toFixed(2).padStart(5)}x   (${values.map((v) => v.toFixed(0)).join(', ')}; warm-up ${warm.toFixed(0)})`;
  const version = (await runTool(kata1('kata-runtime'), ['--version'])).stdout.split('\n')[0] ?? '';
  console.log(`kata-ts against Kata 1.x: run of sh -c 'echo hi', ${runs} rounds, accelerator ${accelerator}, ${new Date().toISOString()}`);
  console.log(`${version}; kernel ${h.kernel}; ${h.defaultMemoryMiB} MiB, ${h.defaultVcpus} vCPU each`);
  console.log('');
  console.log(`${'run'.padEnd(58)} ${'median'.padStart(9)}  to kata-runtime   (runs)`);
  console.log(row('kata-runtime run (Kata 1.x, Go agent as /init)', times.kata1, warmUp.kata1));
  console.log(row(`kata-ts run, ${path.basename(configPath)} (enable_template = ${configured.factory.enableTemplate})`, times.configured, warmUp.configured));
  console.log(row('kata-ts run, every VM booted (enable_template = false)', times.booted, warmUp.booted));
} finally {
  for (const step of undo.reverse()) await step().catch(() => undefined);
  await cleanup();
}
