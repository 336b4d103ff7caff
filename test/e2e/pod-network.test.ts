import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { podAgent } from '../../src/pod/pod-agent.js';
import { eventually } from '../helpers/eventually.js';
import { bundledConfigText, tempDir, writeConfig } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';
import { kataTsProcesses, vmDirs } from '../helpers/leaks.js';
import { makePodNetns, netnsSnapshot, sh, type PodNetns } from '../helpers/netns.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, sandboxProcesses, type SandboxLeftovers } from '../helpers/oci-e2e.js';

/**
 * The pod network as CNI leaves it (a namespace with a veth whose other end is
 * in a peer namespace that plays the outside world), one VM for the file:
 * traffic both ways, two containers on localhost, and the namespace as it was
 * once the pod is deleted.
 */
describe('pod networking (tcfilter): the VM gets the pod namespace\'s interface', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let net: PodNetns;
  let pristine: string;
  let pod: SandboxLeftovers;
  const bundle = (name: string): string => path.join(dir, 'bundles', name);
  let etcMounts: Array<{ destination: string; source: string; type: string; options: string[] }>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-net-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    net = await makePodNetns(`n${process.pid}`, 41);
    pristine = await netnsSnapshot(net.pod);
    // What podman and CRI bind into a container: the pod's resolv.conf and hosts.
    await writeFile(path.join(dir, 'resolv.conf'), `nameserver ${net.peerAddress}\nsearch pod.test\n`);
    await writeFile(path.join(dir, 'hosts'), `127.0.0.1 localhost\n${net.podAddress} web.pod.test\n`);
    etcMounts = ['resolv.conf', 'hosts'].map((f) => ({ destination: `/etc/${f}`, source: path.join(dir, f), type: 'bind', options: ['rbind', 'ro'] }));
    await makeBundle(bundle('web'), {
      args: ['sh', '-c', 'mkdir -p /tmp/www && echo hello-from-the-vm > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'],
      annotations: { 'io.kubernetes.cri.container-type': 'sandbox' },
      networkNamespace: net.podPath,
      mounts: etcMounts,
    });
    const created = await kata(['create', 'web', '--bundle', bundle('web')], { outputFile: path.join(dir, 'web.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'web.out'), 'utf8'));
    assert.equal((await kata(['start', 'web'])).exitCode, 0);
    pod = await sandboxProcesses(root, 'web');
  });

  after(async () => {
    await kata(['delete', '--force', 'web']);
    await net?.remove();
    await cleanup();
  });

  it('QEMU runs in the pod namespace, with a tap joined to the veth by tc filters both ways', async () => {
    assert.ok(pod.qemu);
    const qemuNs = await readlink(`/proc/${pod.qemu.pid}/ns/net`);
    assert.equal(qemuNs, `net:[${(await stat(net.podPath)).ino}]`);
    const filters = await sh(`ip netns exec ${net.pod} tc filter show dev eth0 ingress; ip netns exec ${net.pod} tc filter show dev tap0_kata ingress`);
    assert.match(filters, /mirred \(Egress Redirect to device tap0_kata\)/);
    assert.match(filters, /mirred \(Egress Redirect to device eth0\)/);
  });

  it('the guest has the interface with the veth\'s MAC, address and MTU, and its routes', { timeout: 60_000 }, async () => {
    const mac = (await net.inPod('cat /sys/class/net/eth0/address')).trim();
    const r = await kata(['exec', 'web', 'sh', '-c', 'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; ip -o -4 addr show dev eth0; ip route']);
    assert.equal(r.exitCode, 0, r.stderr);
    const [guestMac, mtu] = r.stdout.split('\n');
    assert.equal(guestMac, mac);
    assert.equal(mtu, '1400');
    assert.match(r.stdout, new RegExp(`inet ${net.podAddress.replaceAll('.', '\\.')}/24`));
    assert.match(r.stdout, new RegExp(`default via ${net.peerAddress.replaceAll('.', '\\.')} dev eth0`));
    // The same through the agent's Kata 1.x RPCs, asked through the pod process.
    const agent = podAgent(pod.dir, async () => assert.fail('the pod process is gone'));
    const eth0 = (await agent.listInterfaces()).find((i) => i.name === 'eth0');
    assert.equal(eth0?.hwAddr, mac);
    assert.equal(eth0?.mtu, 1400);
    assert.deepEqual(eth0?.IPAddresses.filter((a) => a.family === 'v4'), [{ family: 'v4', address: net.podAddress, mask: '24' }]);
    const routes = await agent.listRoutes();
    assert.ok(routes.some((rt) => rt.dest === '' && rt.gateway === net.peerAddress && rt.device === 'eth0'), JSON.stringify(routes));
    assert.ok(routes.some((rt) => rt.dest === '10.213.41.0/24' && rt.device === 'eth0' && rt.scope === 253), JSON.stringify(routes));
  });

  it('a server in the container answers a client in the peer namespace', { timeout: 90_000 }, async () => {
    const page = await eventually(() => net.inPeer(`timeout 10 wget -qO- http://${net.podAddress}:8080/`), 'hello-from-the-vm');
    assert.equal(page.trim(), 'hello-from-the-vm');
  });

  it('the container reaches a server in the peer namespace', { timeout: 90_000 }, async () => {
    const www = path.join(dir, 'peer-www');
    await mkdir(www, { recursive: true });
    await writeFile(path.join(www, 'index.html'), 'hello-from-the-peer\n');
    net.spawnInPeer(['busybox', 'httpd', '-f', '-p', `${net.peerAddress}:8081`, '-h', www]);
    const page = await eventually(async () => (await kata(['exec', 'web', 'timeout', '10', 'wget', '-qO-', `http://${net.peerAddress}:8081/`])).stdout, 'hello-from-the-peer');
    assert.equal(page.trim(), 'hello-from-the-peer');
  });

  it('two containers of the pod reach each other on localhost, and get the spec\'s resolv.conf and hosts', { timeout: 90_000 }, async () => {
    await eventually(() => net.inPeer(`timeout 10 wget -qO- http://${net.podAddress}:8080/`), 'hello-from-the-vm');
    await makeBundle(bundle('client'), {
      args: ['sh', '-c', 'timeout 10 wget -qO- http://127.0.0.1:8080/ && cat /etc/resolv.conf /etc/hosts'],
      annotations: joinSandbox('web'),
      networkNamespace: net.podPath,
      mounts: etcMounts,
    });
    const r = await kata(['run', 'client', '--bundle', bundle('client')]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `hello-from-the-vm\nnameserver ${net.peerAddress}\nsearch pod.test\n127.0.0.1 localhost\n${net.podAddress} web.pod.test`);
  });

  it('kata-network: add-iface hot-plugs a second link into the running VM, list-ifaces and list-routes show it, del-iface takes it out; bad input is one line', { timeout: 180_000 }, async () => {
    await sh(`ip -n ${net.pod} link add eth1 type veth peer name veth-pod1 netns ${net.peer}`);
    await sh(`ip -n ${net.pod} addr add 10.213.141.2/24 dev eth1 && ip -n ${net.pod} link set eth1 up`);
    await sh(`ip -n ${net.peer} addr add 10.213.141.1/24 dev veth-pod1 && ip -n ${net.peer} link set veth-pod1 up`);
    try {
      const mac = (await net.inPod('cat /sys/class/net/eth1/address')).trim();
      const added = await kata(['kata-network', 'add-iface', 'web', '-'], { input: '{"device": "eth1"}' });
      assert.equal(added.exitCode, 0, added.stderr);
      const iface = JSON.parse(added.stdout) as { name: string; hwAddr: string; IPAddresses: Array<{ address: string }> };
      assert.equal(iface.name, 'eth1');
      assert.equal(iface.hwAddr, mac);
      assert.ok(iface.IPAddresses.some((a) => a.address === '10.213.141.2'), added.stdout);
      const filters = await sh(`ip netns exec ${net.pod} tc filter show dev eth1 ingress`);
      assert.match(filters, /mirred \(Egress Redirect to device tap1_kata\)/, 'a second tap, joined by filters');
      // Traffic goes through the hot-plugged device: a server on the peer's second address answers.
      const www = path.join(dir, 'peer2-www');
      await mkdir(www, { recursive: true });
      await writeFile(path.join(www, 'index.html'), 'hello-through-eth1\n');
      net.spawnInPeer(['busybox', 'httpd', '-f', '-p', '10.213.141.1:8082', '-h', www]);
      const page = await eventually(async () => (await kata(['exec', 'web', 'timeout', '10', 'wget', '-qO-', 'http://10.213.141.1:8082/'])).stdout, 'hello-through-eth1');
      assert.equal(page.trim(), 'hello-through-eth1');
      const listed = JSON.parse((await kata(['kata-network', 'list-ifaces', 'web'])).stdout) as Array<{ name: string }>;
      assert.deepEqual(listed.map((i) => i.name).filter((n) => n.startsWith('eth')).sort(), ['eth0', 'eth1']);
      const routes = JSON.parse((await kata(['kata-network', 'list-routes', 'web'])).stdout) as Array<{ dest: string; device: string }>;
      assert.ok(routes.some((r) => r.dest === '10.213.141.0/24' && r.device === 'eth1'), JSON.stringify(routes));

      const again = await kata(['kata-network', 'add-iface', 'web', '-'], { input: '{"device": "eth1"}' });
      assert.deepEqual([again.exitCode, again.stderr], [1, 'kata-ts: eth1 is already an interface of sandbox web']);
      const missing = await kata(['kata-network', 'add-iface', 'web', '-'], { input: '{"device": "nope0"}' });
      assert.deepEqual([missing.exitCode, missing.stderr], [1, `kata-ts: network namespace ${net.podPath} has no configured Ethernet link nope0`]);
      const garbage = await kata(['kata-network', 'add-iface', 'web', '-'], { input: '{"device": ' });
      assert.equal(garbage.exitCode, 1);
      assert.match(garbage.stderr, /^kata-ts: the interface in stdin is not JSON: [^\n]*$/);
      const boot = await kata(['kata-network', 'del-iface', 'web', '-'], { input: '{"name": "eth0"}' });
      assert.deepEqual([boot.exitCode, boot.stderr], [1, 'kata-ts: eth0 came with the sandbox: only interfaces added since can be removed']);

      const removed = await kata(['kata-network', 'del-iface', 'web', '-'], { input: '{"name": "eth1"}' });
      assert.equal(removed.exitCode, 0, removed.stderr);
      const after = await kata(['exec', 'web', 'ls', '/sys/class/net']);
      assert.doesNotMatch(after.stdout, /eth1/, 'the guest let go of the device');
      assert.doesNotMatch(await sh(`ip -n ${net.pod} -o link show`), /tap1_kata/, 'its tap is gone');
    } finally {
      await sh(`ip -n ${net.pod} link del eth1`).catch(() => undefined);
    }
  });

  it('delete removes the tap and the filters and leaves the namespace as it was', { timeout: 90_000 }, async () => {
    assert.equal((await kata(['delete', '--force', 'web'])).exitCode, 0);
    await assertSandboxGone(pod);
    assert.equal(await netnsSnapshot(net.pod), pristine);
    assert.deepEqual(await kataTsProcesses(), []);
  });
});

describe('pod networking: bad namespaces fail at once and leave nothing', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let net: PodNetns;
  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-net-bad-'));
    net = await makePodNetns(`b${process.pid}`, 42);
  });
  after(async () => {
    await net?.remove();
    await cleanup();
  });

  it('a network namespace path that does not exist: one line naming it, no state, no VM', { timeout: 60_000 }, async () => {
    const kata = kataTs(path.join(dir, 'root'));
    const vmDirsBefore = await vmDirs();
    await makeBundle(path.join(dir, 'missing'), { args: ['true'], networkNamespace: '/var/run/netns/kata-ts-no-such-ns' });
    const r = await kata(['create', 'missing', '--bundle', path.join(dir, 'missing')]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^kata-ts: .*network namespace \/var\/run\/netns\/kata-ts-no-such-ns .*does not exist$/m);
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.includes(': info:')).length, 1);
    assert.equal((await kata(['list', '-q'])).stdout, '');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('a VM that fails to start: the taps and filters made for it are removed', { timeout: 60_000 }, async () => {
    const config = await writeConfig(dir, await bundledConfigText({ path: '"/bin/false"', accelerator: '"tcg"' }), 'false-qemu.toml');
    const vmDirsBefore = await vmDirs();
    const before = await netnsSnapshot(net.pod);
    await makeBundle(path.join(dir, 'noqemu'), { args: ['true'], networkNamespace: net.podPath });
    const r = await runCli(['--root', path.join(dir, 'root-noqemu'), '--kata-config', config, 'create', 'noqemu', '--bundle', path.join(dir, 'noqemu')], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /QEMU failed to start/);
    assert.equal(await netnsSnapshot(net.pod), before);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('a namespace another sandbox uses (it has tap0_kata): refused, and its tap is left alone', { timeout: 60_000 }, async () => {
    const kata = kataTs(path.join(dir, 'root'));
    await net.inPod('ip tuntap add dev tap0_kata mode tap');
    const before = await netnsSnapshot(net.pod);
    await makeBundle(path.join(dir, 'busy'), { args: ['true'], networkNamespace: net.podPath });
    const r = await kata(['create', 'busy', '--bundle', path.join(dir, 'busy')]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /already has tap0_kata: another sandbox uses it/);
    assert.equal(await netnsSnapshot(net.pod), before);
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });
});
