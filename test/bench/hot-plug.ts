// Hot-plug benchmark: for each block_device_driver, the latency of
// `block-volume hot-plug` (command start to the node usable in the container:
// the command returns once the agent made the node and allowed it) and of
// `block-volume hot-unplug`, with, measured in the same run, a no-op kata-ts
// command (`state`) as the baseline cost of starting the CLI.
// Usage: npm run bench:hotplug [-- --runs N]
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundledConfigText, tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';

const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 3;
const { dir, cleanup } = await tempDir('kata-ts-bench-hotplug-');
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function timed(run: () => Promise<CliResult>): Promise<number> {
  const started = performance.now();
  const result = await run();
  if (result.exitCode !== 0) throw new Error(result.stderr);
  return performance.now() - started;
}

try {
  const image = path.join(dir, 'volume.img');
  await writeFile(image, Buffer.alloc(16 * 1024 * 1024));
  const rows: string[] = [];
  for (const driver of ['virtio-blk', 'virtio-scsi']) {
    const root = path.join(dir, `root-${driver}`);
    const config = path.join(dir, `${driver}.toml`);
    await writeFile(config, await bundledConfigText({ block_device_driver: `"${driver}"` }));
    const kata = (args: string[], outputFile?: string): Promise<CliResult> => runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 120_000, outputFile });
    const bundle = await makeBundle(path.join(dir, `bundle-${driver}`), { args: ['sh', '-c', 'while :; do sleep 1; done'] });
    await timed(() => kata(['create', 'bench', '--bundle', bundle], path.join(dir, `${driver}.out`)));
    await timed(() => kata(['start', 'bench']));
    const plug: number[] = [];
    const unplug: number[] = [];
    const baseline: number[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        baseline.push(await timed(() => kata(['state', 'bench'])));
        plug.push(await timed(() => kata(['block-volume', 'hot-plug', '--sandbox', 'bench', '--container', 'bench', '--block-volume', image, '--device-path', '/dev/xvdb'])));
        // Usable: the container reads the disk through the node.
        await timed(() => kata(['exec', 'bench', 'sh', '-c', 'head -c 512 /dev/xvdb > /dev/null']));
        unplug.push(await timed(() => kata(['block-volume', 'hot-unplug', '--sandbox', 'bench', '--container', 'bench', '--device-path', '/dev/xvdb'])));
      }
    } finally {
      await kata(['delete', '--force', 'bench']);
    }
    const ms = (v: number): string => `${Math.round(v)} ms`;
    rows.push(`${driver.padEnd(12)} hot-plug ${ms(median(plug))} (runs: ${plug.map(ms).join(', ')}), hot-unplug ${ms(median(unplug))} (runs: ${unplug.map(ms).join(', ')}), no-op CLI baseline ${ms(median(baseline))}; hot-plug / baseline = ${(median(plug) / median(baseline)).toFixed(1)}x`);
  }
  process.stdout.write(`block-volume latency, median of ${runs} (TCG, image file volume):\n${rows.join('\n')}\n`);
} finally {
  await cleanup();
}
