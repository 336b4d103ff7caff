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
import path from 'node:path';
import { loadRuntimeConfig } from '../../src/config/load-config.js';
import { sandboxAccelerator } from '../../src/runtime/sandbox-accelerator.js';
import { silentLogger } from '../../src/util/logger.js';
import { configWithTemplates, repoRoot, tempDir } from '../helpers/fixtures.js';
import { findKata1, kata1Config, kataAgentInitrd, prepareHostForKataRuntime, qemuForKata1 } from '../helpers/kata1.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli, runTool, type CliResult } from '../helpers/run-cli.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const runs = Number(flag('--runs', '5'));
const configPath = path.resolve(flag('--config', path.join(repoRoot, 'configuration.toml')));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const found = await findKata1(flag('--kata1', process.env.KATA1_DIR ?? '') || undefined);
if ('missing' in found) {
  console.error(`bench:kata1: ${found.missing}; build Kata 1.x with test/bench/build-kata1.sh SOURCES DIR, then pass --kata1 DIR`);
  process.exit(2);
}
const kata1 = (name: string): string => path.join(found.dir, name);

const configured = await loadRuntimeConfig({ explicitPath: configPath });
const h = configured.hypervisor;
const accelerator = await sandboxAccelerator(configured, silentLogger);
const { dir, cleanup } = await tempDir('kata-ts-bench-kata1-');

/** Wall ms of one `run`, which must print hi and exit 0. */
async function timedRun(run: () => Promise<CliResult>, what: string): Promise<number> {
  const started = performance.now();
  const result = await run();
  const ms = performance.now() - started;
  if (result.exitCode !== 0 || result.stdout.trim() !== 'hi') throw new Error(`${what}: exit ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  return ms;
}

const undoHostPrep = await prepareHostForKataRuntime(dir);
try {
  const guest = { qemu: await qemuForKata1(h.path, accelerator, dir), kernel: h.kernel, initrd: await kataAgentInitrd(kata1('kata-agent'), dir) };
  const kataConfigFile = await kata1Config(path.join(dir, 'kata1-configuration.toml'), found.dir, guest, h);
  const bundle = await makeBundle(path.join(dir, 'bundle'), { args: ['sh', '-c', 'echo hi'] });
  const asConfigured = await configWithTemplates(configPath, dir, 'as-configured.toml', configured.factory.enableTemplate);
  const booted = await configWithTemplates(configPath, dir, 'booted.toml', false);
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
  await undoHostPrep();
  await cleanup();
}
