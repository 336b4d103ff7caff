// Density benchmark: N one-container pods (`sleep`) made one after another
// with the given configuration, then, with all of them idle: host CPU of each
// QEMU (with its virtiofsd) and pod process (from /proc/<pid>/stat over a
// window), total and per pod; memory of the VM (QEMU's PSS, virtiofsd's, a
// clone's RAM copy) and PSS of the host processes (pod process and carrier), one pod
// alone and the marginal cost per pod at N; create time at 1 and at each pod
// count reached (median and p95 of the creates so far); 8 creates at once;
// state, exec and delete latency at N. Stops every pod and leaves nothing.
// Usage: npm run bench:density [-- --pods N] [--window S] [--config FILE]
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { pssMb as processPssMb, virtiofsdPids, vmMemoryMb } from '../helpers/vm-memory.js';

const flag = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const pods = Number(flag('--pods', '10'));
const windowS = Number(flag('--window', '20'));
const configPath = path.resolve(flag('--config', path.join(repoRoot, 'configuration.toml')));
const quantile = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? NaN;
const median = (values: number[]): number => quantile(values, 0.5);
const { dir, cleanup } = await tempDir('kata-ts-bench-density-');
const root = path.join(dir, 'root');
// create's stdout and stderr become the container's (its carrier keeps them): a file, not a pipe to wait on.
const kata = (args: string[]): Promise<CliResult> =>
  runCli(['--root', root, '--kata-config', configPath, ...args], { timeoutMs: 300_000, ...(args[0] === 'create' ? { outputFile: path.join(dir, `${args[1]}.out`) } : {}) });
const hz = 100; // USER_HZ on Linux

async function timed(args: string[]): Promise<number> {
  const started = Date.now();
  const r = await kata(args);
  if (r.exitCode !== 0) throw new Error(`kata-ts ${args.join(' ')}: ${r.stderr}`);
  return Date.now() - started;
}

/** CPU ticks (user + system) a process has used, all its threads. */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
}

const pssMb = (pid: number): Promise<number> => processPssMb(pid).catch(() => 0);

interface PodPids {
  qemu: number;
  vmDir: string;
  /** QEMU's side: QEMU and, with virtio-fs, its virtiofsd. */
  vm: number[];
  host: number[];
}

/** QEMU (and virtiofsd), the pod process and the carrier of a pod, from its VM dir and its state. */
async function podPids(id: string): Promise<PodPids> {
  const vmDir = sandboxDir(root, id);
  const qemu = Number((await readFile(path.join(vmDir, 'qemu.pid'), 'utf8')).trim());
  const pod = (JSON.parse(await readFile(path.join(vmDir, 'pod.json'), 'utf8')) as { pid: number }).pid;
  const state = JSON.parse((await kata(['state', id])).stdout) as { pid: number };
  return { qemu, vmDir, vm: [qemu, ...(await virtiofsdPids(vmDir))], host: [pod, state.pid] };
}

/** The VM's memory: QEMU's PSS, virtiofsd's, and a clone's RAM copy not mapped in (vm-memory.ts). */
const vmMb = (p: PodPids): Promise<number> => vmMemoryMb(p.qemu, p.vmDir);

async function sum(pids: number[], of: (pid: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await of(pid);
  return total;
}

/** Percent of one core used by each group of pids over the window. */
async function idleCpu(groups: number[][], seconds: number): Promise<number[]> {
  const before = await Promise.all(groups.map((g) => sum(g, cpuTicks)));
  await sleep(seconds * 1000);
  const after = await Promise.all(groups.map((g) => sum(g, cpuTicks)));
  return after.map((a, i) => ((a - (before[i] ?? 0)) / hz / seconds) * 100);
}

const ids: string[] = [];
const createMs: number[] = [];
const rows: string[] = [];
const fmt = (n: number, digits = 0): string => n.toFixed(digits);
try {
  const bundle = path.join(dir, 'bundle');
  await makeBundle(bundle, { args: ['sleep', '2147483647'] });
  let alone: { qemuPss: number; hostPss: number; qemuCpu: number; hostCpu: number } | undefined;
  const marks = new Set([1, 10, 25, 50, pods]);
  for (let i = 0; i < pods; i++) {
    const id = `dense${i}`;
    createMs.push(await timed(['create', id, '--bundle', bundle]));
    ids.push(id);
    await timed(['start', id]);
    if (marks.has(ids.length)) rows.push(`create at ${String(ids.length).padStart(2)} pods: median ${median(createMs)} ms, p95 ${quantile(createMs, 0.95)} ms`);
    if (i === 0) {
      // A new guest settles for some seconds after start (the agent's first work, the kernel's): idle is after that.
      await sleep(15_000);
      const p = await podPids(id);
      const [qemuCpu = NaN, hostCpu = NaN] = await idleCpu([p.vm, p.host], windowS);
      alone = { qemuPss: await vmMb(p), hostPss: await sum(p.host, pssMb), qemuCpu, hostCpu };
    }
  }
  await sleep(15_000);
  const all = await Promise.all(ids.map(podPids));
  const [qemuCpu = NaN, hostCpu = NaN] = await idleCpu([all.flatMap((p) => p.vm), all.flatMap((p) => p.host)], windowS);
  let qemuPss = 0;
  for (const p of all) qemuPss += await vmMb(p);
  const hostPss = await sum(all.flatMap((p) => p.host), pssMb);
  const stateMs: number[] = [];
  const execMs: number[] = [];
  for (const id of ids.slice(0, 5)) {
    stateMs.push(await timed(['state', id]));
    execMs.push(await timed(['exec', id, 'true']));
  }
  // 8 creates at once (the pods above still idle).
  const burst = Array.from({ length: 8 }, (_, i) => `burst${i}`);
  const burstStarted = Date.now();
  const burstMs = await Promise.all(burst.map((id) => timed(['create', id, '--bundle', bundle])));
  const burstWall = Date.now() - burstStarted;
  ids.push(...burst);
  const deleteMs: number[] = [];
  for (const id of [...ids]) {
    deleteMs.push(await timed(['delete', '--force', id]));
    ids.splice(ids.indexOf(id), 1);
  }

  console.log(`bench:density: ${pods} one-container pods, ${path.basename(configPath)}, idle window ${windowS} s`);
  if (alone) {
    console.log(`one pod alone: QEMU (and virtiofsd) ${fmt(alone.qemuCpu, 2)}% of a core, host processes ${fmt(alone.hostCpu, 2)}%; VM memory ${fmt(alone.qemuPss, 1)} MB, PSS of host processes ${fmt(alone.hostPss, 1)} MB`);
  }
  console.log(`${pods} idle pods: QEMU (and virtiofsd) ${fmt(qemuCpu, 2)}% of a core in all (${fmt(qemuCpu / pods, 2)}% per pod), host processes ${fmt(hostCpu, 2)}% (${fmt(hostCpu / pods, 2)}% per pod)`);
  console.log(`${pods} idle pods: VM memory ${fmt(qemuPss, 0)} MB, PSS of host processes ${fmt(hostPss, 0)} MB; per pod ${fmt((qemuPss + hostPss) / pods, 1)} MB${alone && pods > 1 ? `, marginal ${fmt((qemuPss + hostPss - alone.qemuPss - alone.hostPss) / (pods - 1), 1)} MB` : ''}`);
  for (const row of rows) console.log(row);
  console.log(`8 creates at once: ${burstWall} ms wall, each median ${median(burstMs)} ms, max ${Math.max(...burstMs)} ms`);
  console.log(`at ${pods} pods: state median ${median(stateMs)} ms, exec true median ${median(execMs)} ms, delete median ${median(deleteMs)} ms`);
} finally {
  for (const id of ids) await kata(['delete', '--force', id]).catch(() => undefined);
  await cleanup();
}
