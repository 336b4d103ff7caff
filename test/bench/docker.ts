// docker with kata-ts against docker with runc, one dockerd (the test's own,
// README's daemon.json, in a network namespace of its own), alternating,
// medians of N: `docker run --rm IMAGE true`, and `docker run -d` + `exec
// true` + `rm -f` of one container. Both runtimes use the default bridge.
// Usage: npm run bench:docker [-- --runs N]
import path from 'node:path';
import { buildImage } from '../../src/image/build-image.js';
import { tempDir } from '../helpers/fixtures.js';
import { importBusyboxImage, startDockerd, type DockerDaemon } from '../helpers/docker-daemon.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';

const at = process.argv.indexOf('--runs');
const runs = at > 0 ? Number(process.argv[at + 1]) : 5;
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const image = 'kata-ts-busybox:1';
const runtimes = ['kata-ts', 'runc'] as const;

await buildImage();
const { dir, cleanup } = await tempDir('kata-ts-bench-docker-');
const dk: DockerDaemon = await startDockerd(path.join(dir, 'docker'), `b${process.pid % 10000}`, readmeSnippet('docker-daemon-json'));

/** Wall ms of a docker command that must succeed. */
async function timed(args: string[]): Promise<number> {
  const r = await dk.docker(args);
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  return r.ms;
}

type Figures = { run: number[]; detached: number[]; exec: number[]; rm: number[] };
const figures: Record<(typeof runtimes)[number], Figures> = {
  'kata-ts': { run: [], detached: [], exec: [], rm: [] },
  runc: { run: [], detached: [], exec: [], rm: [] },
};
try {
  await importBusyboxImage(dk, image);
  // One untimed round each: the first container pays for the image's first use.
  for (const runtime of runtimes) await timed(['run', '--rm', '--runtime', runtime, image, 'true']);
  for (let round = 0; round < runs; round++) {
    for (const runtime of round % 2 ? [...runtimes].reverse() : runtimes) {
      const f = figures[runtime];
      f.run.push(await timed(['run', '--rm', '--runtime', runtime, image, 'true']));
      const name = `bench-${runtime}-${round}`;
      f.detached.push(await timed(['run', '-d', '--name', name, '--runtime', runtime, image, 'sleep', '1000']));
      f.exec.push(await timed(['exec', name, 'true']));
      f.rm.push(await timed(['rm', '-f', name]));
    }
  }
  const row = (label: string, pick: (f: Figures) => number[]): void => {
    const [k, r] = [median(pick(figures['kata-ts'])), median(pick(figures.runc))];
    console.log(`${label.padEnd(34)} ${String(k).padStart(7)} ${String(r).padStart(7)} ${(k / r).toFixed(2).padStart(7)}x`);
  };
  console.log(`bench:docker: docker ${(await dk.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim()}, medians of ${runs} alternating rounds, ms`);
  console.log(`${''.padEnd(34)} ${'kata-ts'.padStart(7)} ${'runc'.padStart(7)} ${'ratio'.padStart(8)}`);
  row('run --rm IMAGE true', (f) => f.run);
  row('run -d', (f) => f.detached);
  row('exec true', (f) => f.exec);
  row('rm -f', (f) => f.rm);
  row('run -d + exec + rm -f', (f) => f.detached.map((d, i) => d + (f.exec[i] ?? 0) + (f.rm[i] ?? 0)));
} finally {
  const left = (await dk.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (left.length) await dk.docker(['rm', '-f', ...left]);
  await dk.stop();
  await cleanup();
}
