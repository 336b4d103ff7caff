// containerd benchmark, in one run: `ctr run --rm ... true` through containerd's
// runc shim with kata-ts as its runc binary, beside the same through kata-ts's own
// shim v2 (io.containerd.kata-ts.v2), alternating, medians of N; and the host
// memory (PSS, QEMU excluded) of one idle container on each path.
// Usage: npm run bench:shim [-- --runs N]
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { vmRoot } from '../../src/runtime/sandbox-record.js';
import { startContainerd, type ContainerdDaemon } from '../helpers/containerd-daemon.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';

const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
const image = 'docker.io/kata-ts/busybox:latest';
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

const { dir, cleanup } = await tempDir('kata-ts-bench-shim-');
const ctd: ContainerdDaemon = await startContainerd({ pathPrefix: [path.join(repoRoot, 'bin')] });
const runcPath = (): string[] => ['--runc-binary', kataTsBin, '--runc-root', ctd.runcRoot];
const shimPath = ['--runtime', 'io.containerd.kata-ts.v2'];

async function timedRun(args: string[], id: string): Promise<number> {
  const started = performance.now();
  const r = await ctd.ctr(['run', '--rm', ...args, image, id, 'true']);
  if (r.exitCode !== 0) throw new Error(`ctr run ${id}: ${r.stderr}`);
  return performance.now() - started;
}

async function cmdlineOf(pid: string): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
}

async function pssKb(pid: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
}

/** PSS of the host processes that serve container `id`, QEMU excluded: its shim(s), pod process and carrier. */
async function hostPss(id: string): Promise<{ mb: number; parts: string[] }> {
  const vmDirs = (await readdir(vmRoot)).filter((d) => d.startsWith(`${id.slice(0, 12)}-`)).map((d) => path.join(vmRoot, d));
  let total = 0;
  const parts: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = await cmdlineOf(pid);
    const text = argv.join(' ');
    const name = path.basename(argv[0] ?? '');
    if (name.startsWith('qemu')) continue;
    const shim = /containerd-shim-(runc|kata-ts)-v2/.exec(text)?.[0];
    const own = (shim && argv.includes(id) && argv.includes('-id')) || vmDirs.some((d) => text.includes(d));
    if (!own) continue;
    const kb = await pssKb(pid);
    total += kb;
    parts.push(`${shim ?? (name === 'node' ? 'pod process' : name)} ${(kb / 1024).toFixed(1)} MB`);
  }
  return { mb: total / 1024, parts };
}

async function idlePss(args: string[], id: string): Promise<{ mb: number; parts: string[] }> {
  const r = await ctd.ctr(['run', '-d', ...args, image, id, 'sleep', '600']);
  if (r.exitCode !== 0) throw new Error(`ctr run -d ${id}: ${r.stderr}`);
  await sleep(3000);
  const pss = await hostPss(id);
  await ctd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  for (let i = 0; i < 60 && !/STOPPED/.test((await ctd.ctr(['task', 'ls'])).stdout); i++) await sleep(250);
  await ctd.ctr(['task', 'delete', id]);
  await ctd.ctr(['containers', 'rm', id]);
  return pss;
}

try {
  await execa('bash', [path.join(repoRoot, 'scripts', 'make-busybox-image.sh'), path.join(dir, 'busybox.tar')]);
  const imported = await ctd.ctr(['images', 'import', path.join(dir, 'busybox.tar')]);
  if (imported.exitCode !== 0) throw new Error(imported.stderr);
  const viaRunc: number[] = [];
  const viaShim: number[] = [];
  for (let i = 0; i < runs; i++) {
    viaRunc.push(await timedRun(runcPath(), `runc-${i}`));
    viaShim.push(await timedRun(shimPath, `shim-${i}`));
  }
  const runcPss = await idlePss(runcPath(), 'idle-runc');
  const shimPss = await idlePss(shimPath, 'idle-shim');
  const ms = (v: number[]): string => `${Math.round(median(v))} ms (${v.map((x) => Math.round(x)).join(', ')})`;
  process.stdout.write(`kata-ts containerd benchmark: ${runs} runs, ${new Date().toISOString()}\n\n`);
  process.stdout.write(`ctr run --rm true, runc shim + kata-ts binary:  ${ms(viaRunc)}\n`);
  process.stdout.write(`ctr run --rm true, shim v2 (kata-ts.v2):       ${ms(viaShim)}   ${(median(viaShim) / median(viaRunc)).toFixed(2)}x\n\n`);
  process.stdout.write(`host PSS of one idle container, QEMU excluded:\n`);
  process.stdout.write(`  runc shim path: ${runcPss.mb.toFixed(1)} MB (${runcPss.parts.join(', ')})\n`);
  process.stdout.write(`  shim v2 path:   ${shimPss.mb.toFixed(1)} MB (${shimPss.parts.join(', ')})\n`);
} finally {
  await ctd.stop();
  await cleanup();
}
