import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { busyboxImage, criPluginConfig, importPodImages, pauseImage, startContainerd, type ContainerdDaemon } from '../helpers/containerd-daemon.js';
import { connectCri, type CriClient, type ExecSyncResponse } from '../helpers/cri-client.js';
import { eventually } from '../helpers/eventually.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { sh } from '../helpers/netns.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';

const busybox = busyboxImage;
const pause = pauseImage;

/** A CNI bridge network of the test's own: bridge, IPAM range and state all private. */
function bridgeConflist(dir: string): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: 'kata-ts-test',
    plugins: [{
      type: 'bridge', bridge: 'kts-cni0', isGateway: true, ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.214.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(dir, 'cni-ipam') },
    }],
  });
}

/**
 * The kubelet's path with pod networking: containerd's CRI plugin with a CNI
 * bridge config, containerd itself started in a network namespace the test
 * made. Each pod gets its IP from CNI, its VM gets the pod's interface, and a
 * client in that namespace reaches the server in the pod. Both runtime
 * entries of the README: kata-ts as the runc shim's binary, and shim v2.
 */
describe('containerd CRI plugin with a CNI bridge network: pods with their own IP', () => {
  const ns = `kts-crinet-${process.pid}`;
  let ctd: ContainerdDaemon;
  let cri: CriClient;
  let work: { dir: string; cleanup: () => Promise<void> };
  let vmDirsBefore: string[];
  const pods: string[] = [];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-crinet-');
    vmDirsBefore = await vmDirs();
    await sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
    ctd = await startContainerd({
      netns: `/var/run/netns/${ns}`,
      pathPrefix: [path.join(repoRoot, 'bin')],
      files: (dir) => ({ 'cni/10-kata-ts-test.conflist': bridgeConflist(dir) }),
      criConfig: (dir) => criPluginConfig(dir, pause, [
        readmeSnippet('containerd-cri-runtime'),
        `  Root = "${dir}/runc"`,
        readmeSnippet('containerd-shim-v2-runtime'),
      ].join('\n')),
    });
    await importPodImages(ctd, work.dir, ['k8s.io']);
    cri = connectCri(ctd.socket);
  });

  after(async () => {
    for (const podId of pods) {
      await cri.call('StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      await cri.call('RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
    }
    try {
      cri?.close();
      await ctd?.stop();
      assert.deepEqual(await processesMatching(ctd.dir), [], 'neither containerd nor a shim of it runs');
    } finally {
      await sh(`ip netns del ${ns}`).catch(() => undefined);
      await work?.cleanup();
    }
  });

  for (const handler of ['kata', 'kata-ts']) {
    it(`handler ${handler}: a pod with a CNI address answers a client in containerd's namespace; localhost inside; nothing left`, { timeout: 400_000 }, async () => {
      const name = `web-${handler}`;
      const logDir = path.join(work.dir, `logs-${handler}`);
      const sandboxConfig = { metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 }, hostname: name, log_directory: logDir, linux: {} };
      const podId = (await cri.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config: sandboxConfig, runtime_handler: handler })).pod_sandbox_id;
      pods.push(podId);
      const status = await cri.call<{ status: { state: string; network: { ip: string } } }>('PodSandboxStatus', { pod_sandbox_id: podId });
      assert.equal(status.status.state, 'SANDBOX_READY');
      const ip = status.status.network?.ip ?? assert.fail(`no pod IP: ${JSON.stringify(status)} ${(await ctd.log()).slice(-3000)}`);
      assert.match(ip, /^10\.214\.0\.\d+$/, 'the pod\'s address comes from the CNI config');
      const { container_id: appId } = await cri.call<{ container_id: string }>('CreateContainer', {
        pod_sandbox_id: podId,
        sandbox_config: sandboxConfig,
        config: {
          metadata: { name: 'httpd', attempt: 0 },
          image: { image: busybox },
          command: ['sh', '-c', `mkdir -p /tmp/www && echo hello-from-${handler} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`],
          log_path: 'httpd.log',
        },
      });
      await cri.call('StartContainer', { container_id: appId });
      const page = await eventually(() => sh(`ip netns exec ${ns} timeout 10 wget -qO- http://${ip}:8080/`), `hello-from-${handler}`);
      assert.equal(page.trim(), `hello-from-${handler}`);
      const inside = await cri.call<ExecSyncResponse>('ExecSync', { container_id: appId, cmd: ['sh', '-c', 'wget -qO- http://127.0.0.1:8080/; ip -o -4 addr show dev eth0'], timeout: 120 });
      assert.equal(inside.exit_code, 0, inside.stderr.toString());
      assert.match(inside.stdout.toString(), new RegExp(`^hello-from-${handler}\\n.*inet ${ip.replaceAll('.', '\\.')}/24`, 's'));

      await cri.call('StopContainer', { container_id: appId, timeout: 0 });
      await cri.call('RemoveContainer', { container_id: appId });
      await cri.call('StopPodSandbox', { pod_sandbox_id: podId });
      await cri.call('RemovePodSandbox', { pod_sandbox_id: podId });
      pods.splice(pods.indexOf(podId), 1);
      assert.deepEqual(await untilNoneLeft(kataTsProcesses), [], 'no QEMU, pod process, carrier, shim or kata-ts command runs');
      assert.deepEqual(await vmDirs(), vmDirsBefore, 'the VM is gone with the pod');
      assert.doesNotMatch(await sh(`ip -n ${ns} -o link show`), /_kata|veth/, 'CNI removed the pod\'s veth, and no tap of ours is left');
    });
  }
});
