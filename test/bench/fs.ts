// File work in a container on the shared filesystem: the same busybox script on a
// bind of a host tree (about 3000 small files, 50 MB: a copy of /usr/lib/python3)
// over virtio-9p and over virtio-fs, on the guest's own tmpfs (the TCG floor), and
// natively on the host with the same busybox. Medians of N runs, milliseconds
// (each shell's /proc/uptime clock: 10 ms steps).
// Usage: npm run bench:fs [-- --runs N] [-- --fs virtio-9p,virtio-fs] [-- --set key=value ...]
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli } from '../helpers/run-cli.js';

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const runs = Number(arg('--runs', '3'));
/** --set key=value (repeatable): configuration.toml edits for the VM runs, e.g. --set virtio_fs_cache='"always"'. */
const edits = Object.fromEntries(process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1] ?? ''] : [])).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const fileSystems = arg('--fs', 'virtio-9p,virtio-fs').split(',');
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/**
 * The work, timed by the shell that does it: one "name ms" line per piece, for
 * the tree at $1, scratch space at $2. Busybox's date has no %N: the clock is
 * /proc/uptime, in 10 ms steps (the guest's own in a VM, so exec's cost stays out).
 */
const workScript = String.raw`
t() { read up rest < /proc/uptime; echo "${'$'}{up%.*}${'$'}{up#*.}0"; }
ms() { echo $(( $2 - $1 )); }
tree=$1; scratch=$2
a=$(t); find "$tree" -type f | wc -l >/dev/null; b=$(t); echo "walk $(ms $a $b)"
a=$(t); find "$tree" -type f -exec cat {} + >/dev/null; b=$(t); echo "read-all $(ms $a $b)"
mkdir -p "$scratch/many"
a=$(t); i=0; while [ $i -lt 1000 ]; do echo x > "$scratch/many/f$i"; i=$((i+1)); done; rm -r "$scratch/many"; b=$(t); echo "create-remove-1000 $(ms $a $b)"
a=$(t); dd if=/dev/zero of="$scratch/big" bs=1M count=64 conv=fsync 2>/dev/null; b=$(t); echo "write-64MiB-fsync $(ms $a $b)"
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
a=$(t); cat "$scratch/big" >/dev/null; b=$(t); echo "read-64MiB $(ms $a $b)"
rm -f "$scratch/big"
`;

const works = ['walk', 'read-all', 'create-remove-1000', 'write-64MiB-fsync', 'read-64MiB'];
type Figures = Record<string, number[]>;

function parse(output: string, into: Figures): void {
  for (const line of output.trim().split('\n')) {
    const [work, ms] = line.trim().split(' ');
    if (work && works.includes(work)) (into[work] ??= []).push(Number(ms));
  }
}

const { dir, cleanup } = await tempDir('kata-ts-bench-fs-');
try {
  const tree = path.join(dir, 'tree');
  await cp('/usr/lib/python3', tree, { recursive: true, dereference: false, verbatimSymlinks: true });
  const count = (await execa('sh', ['-c', `find ${tree} -type f | wc -l; du -sm ${tree} | cut -f1`])).stdout.split('\n');
  process.stdout.write(`tree: ${count[0]} files, ${count[1]} MB (a copy of /usr/lib/python3); ${runs} runs, medians in ms\n`);
  const script = path.join(dir, 'work.sh');
  await writeFile(script, workScript, { mode: 0o755 });
  const columns: Array<{ name: string; figures: Figures }> = [];

  // The host, natively, with the same busybox.
  const host: Figures = {};
  await mkdir(path.join(dir, 'host-scratch'));
  for (let i = 0; i < runs; i++) parse((await execa('busybox', ['sh', script, tree, path.join(dir, 'host-scratch')])).stdout, host);

  // One container per shared filesystem: the bind, then (once, with 9p) the guest's tmpfs.
  let tmpfs: Figures | undefined;
  for (const fs of fileSystems) {
    const config = await writeConfig(dir, await bundledConfigText({ ...edits, shared_fs: `"${fs}"` }), `${fs}.toml`);
    const bundle = await makeBundle(path.join(dir, `b-${fs}`), {
      args: ['sleep', '100000'],
      mounts: [
        { destination: '/data', source: tree, type: 'bind', options: ['rbind', 'rw'] },
        { destination: '/work.sh', source: script, type: 'bind', options: ['rbind', 'ro'] },
        { destination: '/mem', source: 'tmpfs', type: 'tmpfs', options: ['size=256m'] },
      ],
    });
    const kata = (args: string[]) => runCli(['--root', path.join(dir, 'root'), '--kata-config', config, ...args], { timeoutMs: 1_800_000, outputFile: path.join(dir, `${fs}.out`) });
    const exec = async (args: string[]): Promise<string> => {
      const r = await runCli(['--root', path.join(dir, 'root'), '--kata-config', config, 'exec', fs, ...args], { timeoutMs: 1_800_000 });
      if (r.exitCode !== 0) throw new Error(`${fs}: exec ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    if ((await kata(['run', '--detach', '--bundle', bundle, fs])).exitCode !== 0) throw new Error(`${fs}: the container did not start`);
    try {
      const figures: Figures = {};
      await exec(['mkdir', '-p', '/data/.scratch']);
      for (let i = 0; i < runs; i++) parse(await exec(['sh', '/work.sh', '/data', '/data/.scratch']), figures);
      columns.push({ name: `${fs} bind`, figures });
      if (!tmpfs) {
        tmpfs = {};
        await exec(['sh', '-c', 'cp -a /data /mem/tree && mkdir -p /mem/scratch']);
        for (let i = 0; i < runs; i++) parse(await exec(['sh', '/work.sh', '/mem/tree', '/mem/scratch']), tmpfs);
      }
    } finally {
      await kata(['delete', '--force', fs]);
    }
  }
  if (tmpfs) columns.push({ name: 'guest tmpfs', figures: tmpfs });
  columns.push({ name: 'host, native', figures: host });

  const floor = columns.find((c) => c.name === 'guest tmpfs');
  const header = ['work', ...columns.map((c) => c.name), ...columns.filter((c) => c.name.endsWith('bind')).map((c) => `${c.name.split(' ')[0]} / tmpfs`)];
  const rows = works.map((work) => {
    const values = columns.map((c) => median(c.figures[work] ?? []));
    const ratios = columns.filter((c) => c.name.endsWith('bind')).map((c) => `${(median(c.figures[work] ?? []) / median(floor?.figures[work] ?? [])).toFixed(1)}x`);
    return [work, ...values.map(String), ...ratios];
  });
  const nineP = columns.find((c) => c.name === 'virtio-9p bind');
  const virtioFs = columns.find((c) => c.name === 'virtio-fs bind');
  process.stdout.write(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
  if (nineP && virtioFs) {
    for (const work of works) process.stdout.write(`${work}: virtio-fs is ${(median(nineP.figures[work] ?? []) / median(virtioFs.figures[work] ?? [])).toFixed(1)}x faster than 9p\n`);
  }
} finally {
  await cleanup();
}
