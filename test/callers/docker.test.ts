import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { sh } from '../helpers/netns.js';
import { eventually } from '../helpers/eventually.js';
import { assertInteractiveShell } from '../helpers/pty-session.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';
import { dockerBin, importBusyboxImage, startDockerd, type DockerDaemon } from '../helpers/docker-daemon.js';

const image = 'kata-ts-busybox:1';
const kata = ['--runtime', 'kata-ts'];

/** Network namespaces kata-ts made for prestart hooks (ip netns kata-ts-*). */
async function ownedNetnses(): Promise<string[]> {
  return (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.startsWith('kata-ts-')).sort();
}

/**
 * Debian's docker.io drives kata-ts as a runtime (README's daemon.json): dockerd
 * of the test's own (data-root, exec-root, socket, default bridge) in a network
 * namespace of the test's, so that its bridges, iptables rules and port proxies
 * live there. Every container below runs in a VM, under TCG here.
 */
describe('docker run --runtime kata-ts', () => {
  let work: { dir: string; cleanup: () => Promise<void> };
  let dk: DockerDaemon;
  let vmDirsBefore: string[];
  let netnsesBefore: string[];
  let loopDevice = '';
  const hostServers: ChildProcess[] = [];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-docker-');
    vmDirsBefore = await vmDirs();
    netnsesBefore = await ownedNetnses();
    dk = await startDockerd(path.join(work.dir, 'docker'), String(process.pid % 100000), readmeSnippet('docker-daemon-json'));
    await importBusyboxImage(dk, image);
  });

  after(async () => {
    try {
      for (const server of hostServers) if (server.exitCode === null) server.kill('SIGKILL');
      const left = (await dk?.docker(['ps', '-aq']))?.stdout.split('\n').filter(Boolean) ?? [];
      if (left.length) await dk.docker(['rm', '-f', ...left]);
      await dk?.stop();
      if (loopDevice) await sh(`losetup -d ${loopDevice}`).catch(() => undefined);
      assert.deepEqual(await untilNoneLeft(kataTsProcesses), [], 'after dockerd stopped: no QEMU, pod process or carrier runs');
      assert.deepEqual(await vmDirs(), vmDirsBefore, 'no sandbox VM dir is left');
      assert.deepEqual(await ownedNetnses(), netnsesBefore, 'no network namespace of kata-ts is left');
      assert.deepEqual(await processesMatching('monitor link address'), [], 'no netmon is left');
      const mounts = await readFile('/proc/self/mountinfo', 'utf8');
      assert.doesNotMatch(mounts, new RegExp(work.dir.replaceAll('/', '\\/')), 'no mount under dockerd\'s roots is left');
    } finally {
      await work?.cleanup();
    }
  });

  it('run --rm: output and a separate stderr, the exit status, -e/-w, a -v volume both ways, --read-only, --memory/--cpus in the guest, the default bridge', { timeout: 300_000 }, async () => {
    const volume = path.join(work.dir, 'volume');
    await mkdir(volume);
    await writeFile(path.join(volume, 'in.txt'), 'from-the-host\n');
    const limits = 'c=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); echo mem=$(cat $c/memory.max) cpu=$(cat $c/cpu.max)';
    const script = `echo out-line; echo err-line >&2; echo foo=$FOO; pwd; cat /data/in.txt; echo from-the-vm > /data/out.txt; touch /in-rootfs 2>/dev/null || echo rootfs-read-only; ${limits}; uname -r; ip -o -4 addr show dev eth0; exit 3`;
    const run = await dk.docker(['run', '--rm', ...kata, '-e', 'FOO=bar', '-w', '/tmp', '-v', `${volume}:/data`, '--read-only', '--memory', '200m', '--cpus', '0.5', image, 'sh', '-c', script]);
    assert.equal(run.exitCode, 3, run.stderr);
    assert.equal(run.stderr, 'err-line', 'stderr apart from stdout');
    const lines = run.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 5), ['out-line', 'foo=bar', '/tmp', 'from-the-host', 'rootfs-read-only']);
    assert.equal(lines[5], `mem=${200 * 1024 * 1024} cpu=50000 100000`, '--memory and --cpus are the container\'s cgroup limits in the guest');
    assert.notEqual(lines[6], os.release(), 'the guest kernel answers: the container ran in a VM');
    assert.match(lines[7] ?? '', /eth0\s+inet 172\.29\.\d+\.\d+\/16/, 'an address on the default bridge (the test\'s)');
    assert.equal(await readFile(path.join(volume, 'out.txt'), 'utf8'), 'from-the-vm\n', 'the host sees what the container wrote');
  });

  it('run -it on a real pty: a terminal of the pty\'s size, typed input answered, the exit status', { timeout: 300_000 }, async () => {
    await assertInteractiveShell(dockerBin, ['run', '--rm', '-it', ...kata, image, 'sh'], { DOCKER_HOST: `unix://${dk.dir}/docker.sock` });
  });

  it('run -d -p: the address and the published port answer, the container reaches the host side; exec, exec -it, -u, logs -f, top, stats, pause, update, stop (and its time), restart, kill, rm -f', { timeout: 600_000 }, async () => {
    // A server on the docker host's side of the bridge, for the container to reach (node's http: busybox wget is unsafe on some hosts).
    const server = spawn('nsenter', [`--net=${dk.netnsPath}`, '--', process.execPath, '-e', 'require("http").createServer((q, s) => s.end("host-side-answer\\n")).listen(8099, "172.29.0.1")'], { stdio: 'ignore' });
    hostServers.push(server);
    const main = 'trap "echo got-term; exit 0" TERM; mkdir -p /www; echo served-from-the-vm > /www/index.html; httpd -p 80 -h /www; echo ready; while :; do sleep 1; done';
    const run = await dk.docker(['run', '-d', '--name', 'web', ...kata, '-p', '8080:80', image, 'sh', '-c', main]);
    assert.equal(run.exitCode, 0, run.stderr);
    const ip = (await dk.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
    assert.match(ip, /^172\.29\./);
    // The server starts a moment after run -d returns: retried until it answers.
    const fetch = (url: string): Promise<string> => eventually(() => dk.inNetns(`curl -s -m 20 ${url}`).catch(() => ''), 'served-from-the-vm', 60_000);
    assert.equal((await fetch(`http://${ip}/`)).trim(), 'served-from-the-vm', 'the container\'s address answers from the docker host');
    assert.equal((await fetch('http://127.0.0.1:8080/')).trim(), 'served-from-the-vm', '-p publishes the port');
    const reach = await dk.docker(['exec', 'web', 'wget', '-qO-', 'http://172.29.0.1:8099/']);
    assert.equal(reach.stdout.trim(), 'host-side-answer', `the container reaches the host side: ${reach.stderr}`);

    const exec = await dk.docker(['exec', '-u', '65534:65534', '-e', 'X=y', 'web', 'sh', '-c', 'echo $X $(id -u); exit 4']);
    assert.deepEqual([exec.exitCode, exec.stdout], [4, 'y 65534']);
    await assertInteractiveShell(dockerBin, ['exec', '-it', 'web', 'sh'], { DOCKER_HOST: `unix://${dk.dir}/docker.sock` });
    // logs -f follows until it is stopped: what came so far, then it waits (cut off after 4 s).
    const logs = await dk.docker(['logs', '-f', 'web'], { timeoutMs: 4000 });
    assert.match(logs.stdout, /^ready$/m);
    assert.ok(logs.ms >= 3900, 'logs -f kept following');

    // top filters the host's ps by the pids kata-ts lists: the container's carrier, a host process.
    const top = await dk.docker(['top', 'web']);
    assert.equal(top.exitCode, 0, top.stderr);
    assert.match(top.stdout, /kata-ts-carrier/);
    const stats = await dk.docker(['stats', '--no-stream', '--format', '{{.MemUsage}} {{.PIDs}}', 'web']);
    assert.equal(stats.exitCode, 0, stats.stderr);
    assert.match(stats.stdout, /^\d[\d.]*[KMG]i?B \/ /, 'the host cgroup\'s figures (the carrier\'s; the VM\'s own usage is not in them)');

    assert.equal((await dk.docker(['pause', 'web'])).exitCode, 0);
    assert.match((await dk.docker(['inspect', '-f', '{{.State.Status}}', 'web'])).stdout, /paused/);
    assert.equal((await dk.docker(['unpause', 'web'])).exitCode, 0);
    const update = await dk.docker(['update', '--restart', 'always', '--memory', '300m', '--memory-swap', '600m', '--cpus', '1.5', 'web']);
    assert.equal(update.exitCode, 0, update.stderr);
    const limits = await dk.docker(['exec', 'web', 'sh', '-c', 'c=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); cat $c/memory.max $c/cpu.max']);
    assert.equal(limits.stdout, `${300 * 1024 * 1024}\n150000 100000`, 'update reaches the guest');

    // stop: SIGTERM reaches the process, which exits at once (no 10 s kill).
    const stop = await dk.docker(['stop', 'web']);
    assert.equal(stop.exitCode, 0, stop.stderr);
    assert.ok(stop.ms < 8000, `stop took ${stop.ms} ms`);
    console.log(`docker stop took ${stop.ms} ms`);
    assert.match((await dk.docker(['logs', 'web'])).stdout, /got-term/);
    const restart = await dk.docker(['restart', 'web']);
    assert.equal(restart.exitCode, 0, restart.stderr);
    assert.equal((await fetch(`http://${(await dk.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim()}/`)).trim(), 'served-from-the-vm', 'restarted: in a new VM, serving');
    const kill = await dk.docker(['kill', '--signal', 'KILL', 'web']);
    assert.equal(kill.exitCode, 0, kill.stderr);
    assert.equal((await dk.docker(['rm', '-f', 'web'])).exitCode, 0);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses), [], 'rm -f: no QEMU, pod process or carrier runs');
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'rm -f: no VM dir is left');
    assert.deepEqual(await ownedNetnses(), netnsesBefore, 'rm -f: no network namespace of kata-ts is left');
    assert.doesNotMatch(await dk.inNetns('ip -o link show'), /_kata/, 'no tap is left');
  });

  it('a user-defined bridge network: containers reach each other by address; network connect hot-plugs an interface into a running VM, disconnect takes it out', { timeout: 400_000 }, async () => {
    const made = await dk.docker(['network', 'create', '--driver', 'bridge', '--subnet', '172.30.0.0/16', '-o', 'com.docker.network.bridge.name=ktsdknet1', 'ktsnet']);
    assert.equal(made.exitCode, 0, made.stderr);
    // On the default bridge first: ktsnet comes later, by docker network connect.
    const srv = await dk.docker(['run', '-d', '--name', 'srv', ...kata, image, 'sh', '-c', 'trap "exit 0" TERM; echo peer-answer > /tmp/i; while :; do nc -l -p 7000 < /tmp/i; done']);
    assert.equal(srv.exitCode, 0, srv.stderr);
    const connect = await dk.docker(['network', 'connect', 'ktsnet', 'srv']);
    assert.equal(connect.exitCode, 0, connect.stderr);
    const srvIp = (await dk.docker(['inspect', '-f', '{{.NetworkSettings.Networks.ktsnet.IPAddress}}', 'srv'])).stdout.trim();
    assert.match(srvIp, /^172\.30\./);
    // netmon saw docker's veth arrive in the sandbox's namespace and hot-plugged it (QMP device_add, agent UpdateInterface).
    const addresses = await eventually(async () => (await dk.docker(['exec', 'srv', 'ip', '-o', '-4', 'addr'])).stdout, `inet ${srvIp}/16`, 90_000);
    assert.match(addresses, /eth0\s+inet 172\.29\./, 'the boot interface stays');
    const client = await dk.docker(['run', '--rm', '--network', 'ktsnet', ...kata, image, 'sh', '-c', `for i in 1 2 3 4 5; do nc ${srvIp} 7000 && exit 0; sleep 1; done; exit 1`]);
    assert.equal(client.exitCode, 0, client.stderr);
    assert.equal(client.stdout.trim(), 'peer-answer', 'a container on ktsnet reached srv through its hot-plugged interface');
    const disconnect = await dk.docker(['network', 'disconnect', 'ktsnet', 'srv']);
    assert.equal(disconnect.exitCode, 0, disconnect.stderr);
    const gone = await eventually(async () => {
      const out = (await dk.docker(['exec', 'srv', 'ip', '-o', '-4', 'addr'])).stdout;
      return out.includes(srvIp) ? 'still there' : `gone: ${out}`;
    }, 'gone', 90_000);
    assert.match(gone, /eth0\s+inet 172\.29\./);
    assert.equal((await dk.docker(['rm', '-f', 'srv'])).exitCode, 0);
    assert.equal((await dk.docker(['network', 'rm', 'ktsnet'])).exitCode, 0);
  });

  it('--network none has loopback only; --network host is refused with one line and leaves nothing', { timeout: 300_000 }, async () => {
    const none = await dk.docker(['run', '--rm', '--network', 'none', ...kata, image, 'sh', '-c', 'ls /sys/class/net | grep -v sit0']);
    assert.equal(none.exitCode, 0, none.stderr);
    assert.equal(none.stdout.trim(), 'lo');
    const [dirs, processes] = [await vmDirs(), await kataTsProcesses()];
    const host = await dk.docker(['run', '--rm', '--network', 'host', ...kata, image, 'true']);
    assert.equal(host.exitCode, 125);
    assert.match(host.stderr, /is the host's own \(as docker --network host asks\): a VM cannot share the host's network stack/);
    assert.deepEqual(await vmDirs(), dirs, 'no VM dir is left');
    assert.deepEqual(await kataTsProcesses(), processes, 'no QEMU, pod process or carrier is left');
  });

  it('--device: a host block device is read and written in the container and the host sees the writes; /dev/net/tun is the guest\'s; /dev/kvm (a host-only device) is refused', { timeout: 300_000 }, async () => {
    const disk = path.join(work.dir, 'disk.img');
    await writeFile(disk, '');
    await truncate(disk, 16 * 1024 * 1024);
    loopDevice = (await sh(`losetup -f --show ${disk}`)).trim();
    const run = await dk.docker(['run', '--rm', ...kata, '--device', `${loopDevice}:/dev/xvdc`, image, 'sh', '-c', 'test -b /dev/xvdc && echo written-in-the-vm | dd of=/dev/xvdc conv=fsync 2>/dev/null && head -c 17 /dev/xvdc']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'written-in-the-vm');
    const onHost = await readFile(disk);
    assert.equal(onHost.subarray(0, 17).toString(), 'written-in-the-vm', 'the host sees the write after rm');
    const tun = await dk.docker(['run', '--rm', ...kata, '--device', '/dev/net/tun', image, 'sh', '-c', 'test -c /dev/net/tun && ls /sys/class/misc | grep -x tun']);
    assert.equal(tun.exitCode, 0, tun.stderr);
    assert.equal(tun.stdout.trim(), 'tun', 'the guest\'s tun driver backs the node');
    // A host character device the guest has no counterpart of (/dev/mem where this host has no /dev/kvm).
    const [hostOnly, number] = existsSync('/dev/kvm') ? ['/dev/kvm', '10:232'] : ['/dev/mem', '1:1'];
    const refused = await dk.docker(['run', '--rm', ...kata, '--device', hostOnly, image, 'true']);
    assert.equal(refused.exitCode, 125);
    assert.match(refused.stderr, new RegExp(`linux\\.devices: ${hostOnly} \\(character device ${number}\\) cannot be passed to a VM`));
    assert.equal(existsSync(disk), true);
  });
});
