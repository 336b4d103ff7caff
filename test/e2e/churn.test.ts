import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { vmRoot } from '../../src/runtime/sandbox-record.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, untilNoneLeft } from '../helpers/leaks.js';
import { makePodNetns, sh, type PodNetns } from '../helpers/netns.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

/** KATA_TS_LONG=1 runs the long variant. */
const cycles = process.env.KATA_TS_LONG === '1' ? 50 : 8;

async function qemuProcesses(): Promise<number> {
  let count = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const exe = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (path.basename(exe.split('\0')[0] ?? '').startsWith('qemu-system')) count++;
  }
  return count;
}

/** What a create/delete cycle could leak, counted. */
async function sample(root: string, net: PodNetns): Promise<Record<string, number>> {
  return {
    fds: (await readdir('/proc/self/fd')).length,
    kataTsProcesses: (await kataTsProcesses()).length,
    qemuProcesses: await qemuProcesses(),
    mounts: (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').length,
    loopDevices: Number((await sh('losetup -a | wc -l')).trim()),
    podNamespaceLinks: Number((await sh(`ip -n ${net.pod} -o link show | wc -l`)).trim()),
    podNamespaceQdiscs: Number((await sh(`ip netns exec ${net.pod} tc qdisc show | wc -l`)).trim()),
    stateDirs: (await readdir(root).catch(() => [] as string[])).length,
    vmDirs: (await readdir(vmRoot).catch(() => [] as string[])).length,
  };
}

/**
 * Create, start, exec and delete, over and over, in a pod network namespace:
 * afterwards fds, processes, mounts, loop devices, taps and filters, state and
 * VM dirs and QEMU processes are what they were before.
 */
describe(`churn: ${cycles} create/start/exec/delete cycles`, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;
  let net: PodNetns;
  let root: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-churn-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    net = await makePodNetns(`c${process.pid}`, 43);
  });
  after(async () => {
    await kata(['delete', '--force', 'churn']);
    await net?.remove();
    await cleanup();
  });

  it('leaves every count as it was', { timeout: cycles * 60_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'b'), { args: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], networkNamespace: net.podPath });
    const before = await sample(root, net);
    const started = Date.now();
    for (let i = 0; i < cycles; i++) {
      const created = await kata(['create', 'churn', '--bundle', bundle], { outputFile: path.join(dir, `create-${i}.out`) });
      assert.equal(created.exitCode, 0, `cycle ${i}: ${await readFile(path.join(dir, `create-${i}.out`), 'utf8')}`);
      assert.equal((await kata(['start', 'churn'])).exitCode, 0, `cycle ${i}: start`);
      const exec = await kata(['exec', 'churn', 'sh', '-c', `echo cycle ${i}; cat /sys/class/net/eth0/address`]);
      assert.equal(exec.stdout.split('\n')[0], `cycle ${i}`);
      assert.equal((await kata(['delete', '--force', 'churn'])).exitCode, 0, `cycle ${i}: delete`);
    }
    await untilNoneLeft(kataTsProcesses, 15_000);
    const afterwards = await sample(root, net);
    process.stderr.write(`# churn: ${cycles} cycles in ${Math.round((Date.now() - started) / 1000)} s; before ${JSON.stringify(before)}; after ${JSON.stringify(afterwards)}\n`);
    assert.deepEqual(afterwards, before);
  });
});
