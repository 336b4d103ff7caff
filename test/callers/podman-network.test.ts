import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import os from 'node:os';
import { eventually } from '../helpers/eventually.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { sh } from '../helpers/netns.js';
import { makePodmanEnv, type PodmanEnv } from '../helpers/podman-env.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';

const image = 'docker.io/kata-ts/busybox:latest';

/**
 * podman's default CNI bridge network (Debian's containernetworking-plugins),
 * with podman run inside a network namespace the test made: the bridge, the
 * pod's veth and the port mapping all live there, never in the host's.
 */
describe('podman with a CNI bridge network: kata-ts pods get an address', () => {
  const ns = `kts-pmnet-${process.pid}`;
  const nsPath = `/var/run/netns/${ns}`;
  let work: { dir: string; cleanup: () => Promise<void> };
  let pm: PodmanEnv;
  let vmDirsBefore: string[];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-pmnet-');
    vmDirsBefore = await vmDirs();
    await sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
    pm = await makePodmanEnv(readmeSnippet('podman-containers-conf'), { netns: nsPath });
    const archive = path.join(work.dir, 'busybox.tar');
    await execa('bash', [path.join(repoRoot, 'scripts', 'make-busybox-image.sh'), archive]);
    const loaded = await pm.podman(['load', '-i', archive]);
    assert.equal(loaded.exitCode, 0, loaded.stderr);
  });

  after(async () => {
    try {
      await pm?.remove();
    } finally {
      await sh(`ip netns del ${ns}`).catch(() => undefined);
      await work?.cleanup();
    }
  });

  it('podman run -d -p: a server in the VM answers on its pod IP and on the mapped port; rm leaves nothing', { timeout: 300_000 }, async () => {
    const run = await pm.podman(['--runtime', kataTsBin, 'run', '-d', '--name', 'web', '-p', '8080:8080', image, 'sh', '-c', 'mkdir -p /tmp/www && echo hello-from-podman-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']);
    assert.equal(run.exitCode, 0, run.stderr);
    const ip = (await pm.podman(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
    assert.match(ip, /^10\.88\.\d+\.\d+$/, 'an address on podman\'s default bridge network');
    const inNs = (command: string): Promise<string> => sh(`ip netns exec ${ns} sh -c '${command}'`);
    assert.equal((await eventually(() => inNs(`timeout 10 wget -qO- http://${ip}:8080/`), 'hello-from-podman-pod')).trim(), 'hello-from-podman-pod');
    assert.equal((await eventually(() => inNs('timeout 10 wget -qO- http://127.0.0.1:8080/'), 'hello-from-podman-pod')).trim(), 'hello-from-podman-pod', 'through -p (CNI portmap)');
    // The guest's eth0 is the pod's: same address as podman gave it.
    const inside = await pm.podman(['exec', 'web', 'sh', '-c', 'uname -r; ip -o -4 addr show dev eth0']);
    assert.match(inside.stdout, new RegExp(`inet ${ip.replaceAll('.', '\\.')}/16`));
    assert.notEqual(inside.stdout.split('\n')[0], os.release(), 'the guest kernel answers: the container runs in a kata-ts VM');
    const rm = await pm.podman(['rm', '--force', '--time', '0', 'web']);
    assert.equal(rm.exitCode, 0, rm.stderr);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses), [], 'no QEMU, pod process, carrier or kata-ts command runs');
    assert.deepEqual(await untilNoneLeft(() => processesMatching(pm.dir)), [], 'no conmon or podman process runs');
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no sandbox VM dir is left');
    // podman removed the pod's namespace and veth; nothing of ours (a tap) is left on its bridge.
    assert.doesNotMatch(await sh(`ip -n ${ns} -o link show`), /_kata|veth/);
  });
});
