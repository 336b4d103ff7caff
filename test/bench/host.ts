// Host-side benchmark: in one run, against one sandbox VM, the latency of
// `state`, `list`, `start` and `exec true` beside `node -e 0` (the floor of any
// node command), and the host PSS per pod without QEMU (the pod process and the
// carriers) with one container and per extra container. Medians of N.
// Usage: npm run bench:host [-- --runs N] [--extra N]
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const runs = Number(flag('--runs', '5'));
const extra = Number(flag('--extra', '3'));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const config = path.join(repoRoot, 'configuration.toml');
const { dir, cleanup } = await tempDir('kata-ts-bench-host-');
const root = path.join(dir, 'root');
const kata = (args: string[], outputFile?: string): Promise<CliResult> => runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 180_000, outputFile });

async function timed(run: () => Promise<CliResult>): Promise<number> {
  const started = performance.now();
  const result = await run();
  if (result.exitCode !== 0) throw new Error(result.stderr || `exit ${result.exitCode}`);
  return performance.now() - started;
}

function nodeBaseline(): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    spawn(process.execPath, ['-e', '0']).once('exit', () => resolve(performance.now() - started));
  });
}

async function pssKb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
}

/** Host processes of the sandbox other than QEMU: every process whose command line names its VM dir. */
async function hostPssMb(vmDir: string, qemuPid: number): Promise<{ mb: number; processes: string[] }> {
  let total = 0;
  const processes: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === qemuPid) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!cmdline.some((a) => a.includes(vmDir))) continue;
    const kb = await pssKb(Number(entry));
    total += kb;
    processes.push(`${path.basename(cmdline[0] ?? '?') === 'node' ? (cmdline.includes('pod') ? 'pod process' : cmdline.find((a) => a === 'shim' || a === 'proxy') ?? 'node') : path.basename(cmdline[0] ?? '?')}: ${(kb / 1024).toFixed(1)} MB`);
  }
  return { mb: total / 1024, processes };
}

try {
  const sleeper = await makeBundle(path.join(dir, 'sleeper'), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
  await timed(() => kata(['create', 'pod', '--bundle', sleeper], path.join(dir, 'pod.out')));
  await timed(() => kata(['start', 'pod']));
  const vmDir = sandboxDir(root, 'pod');
  const qemuPid = (JSON.parse(await readFile(path.join(vmDir, 'sandbox.json'), 'utf8')) as { vm: { qemu: { pid: number } } }).vm.qemu.pid;

  const baseline: number[] = [];
  const state: number[] = [];
  const list: number[] = [];
  const start: number[] = [];
  const exec: number[] = [];
  const member = await makeBundle(path.join(dir, 'member'), { args: ['sh', '-c', 'while :; do sleep 1; done'], annotations: joinSandbox('pod') });
  for (let run = 1; run <= runs; run++) {
    baseline.push(await nodeBaseline());
    state.push(await timed(() => kata(['state', 'pod'])));
    list.push(await timed(() => kata(['list'])));
    await timed(() => kata(['create', `m${run}`, '--bundle', member], path.join(dir, `m${run}.out`)));
    start.push(await timed(() => kata(['start', `m${run}`])));
    exec.push(await timed(() => kata(['exec', 'pod', 'true'])));
    await kata(['delete', '--force', `m${run}`]);
  }
  await sleep(2000);
  const one = await hostPssMb(vmDir, qemuPid);
  for (let i = 1; i <= extra; i++) {
    await timed(() => kata(['create', `x${i}`, '--bundle', member], path.join(dir, `x${i}.out`)));
    await timed(() => kata(['start', `x${i}`]));
  }
  await sleep(2000);
  const more = await hostPssMb(vmDir, qemuPid);

  const ratio = (v: number[]): string => `${(median(v) / median(baseline)).toFixed(2)}x node -e 0`;
  const row = (name: string, v: number[], note = ratio(v)): string => `${name.padEnd(26)} ${median(v).toFixed(0).padStart(6)} ms   ${note.padEnd(18)} (${v.map((x) => x.toFixed(0)).join(', ')})`;
  console.log(`kata-ts host benchmark: ${runs} runs, ${new Date().toISOString()}, CLI ${kataTsBin}`);
  console.log('');
  console.log(row('node -e 0 (baseline)', baseline, '1.00x'));
  console.log(row('state', state));
  console.log(row('list', list));
  console.log(row('start (container in a pod)', start));
  console.log(row('exec true', exec));
  console.log('');
  console.log(`host PSS of the pod without QEMU, 1 container: ${one.mb.toFixed(1)} MB (${one.processes.join(', ')})`);
  console.log(`with ${extra} more containers: ${more.mb.toFixed(1)} MB, +${((more.mb - one.mb) / extra).toFixed(2)} MB per extra container`);
  for (const id of [...Array.from({ length: extra }, (_, i) => `x${i + 1}`), 'pod']) await kata(['delete', '--force', id]);
} finally {
  await cleanup();
}
