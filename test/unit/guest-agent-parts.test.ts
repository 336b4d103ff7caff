import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { OciSpec } from '../../src/agent-protocol/messages.js';
import { parseAgentOptions } from '../../src/guest-agent/agent-options.js';
import { checkId } from '../../src/guest-agent/agent-error.js';
import { specToOciConfig, splitNetworkSysctls } from '../../src/guest-agent/oci-spec.js';
import { sysctlPath } from '../../src/guest-agent/sysctl.js';
import { OutputBuffer } from '../../src/guest-agent/output-buffer.js';
import { exitStatusFromWaitStatus } from '../../src/guest-agent/process-exit.js';

describe('guest agent parts', () => {
  it('reads agent options from the kernel command line', () => {
    assert.deepEqual(parseAgentOptions('console=ttyS0 quiet agent.log=debug agent.hotplug_timeout=5 agent.use_vsock=true agent.debug_console'), {
      debug: true, debugConsole: true, hotplugTimeoutMs: 5000, useVsock: true, vsockAllowLocal: false,
    });
    assert.deepEqual(parseAgentOptions('console=ttyS0'), { debug: false, debugConsole: false, hotplugTimeoutMs: 3000, useVsock: false, vsockAllowLocal: false });
    assert.equal(parseAgentOptions('agent.hotplug_timeout=bogus').hotplugTimeoutMs, 3000);
  });

  it('decodes wait statuses as shells do: code, or 128 + signal', () => {
    assert.equal(exitStatusFromWaitStatus(0), 0);
    assert.equal(exitStatusFromWaitStatus(3 << 8), 3);
    assert.equal(exitStatusFromWaitStatus(9), 137);
    assert.equal(exitStatusFromWaitStatus(15), 143);
  });

  it('refuses ids that could escape a directory', () => {
    assert.equal(checkId('abc-1.2_x+y', 'container id'), 'abc-1.2_x+y');
    for (const bad of ['', '.', '..', 'a/b', '../x', 'a b']) assert.throws(() => checkId(bad, 'container id'), /invalid container id/);
  });

  it('turns the protobuf Spec into a guest config.json: no host netns, hooks or cgroup paths', () => {
    const spec = {
      Version: '1.0.2',
      Process: { Terminal: false, ConsoleSize: null, User: { UID: 1000, GID: 1000, AdditionalGids: [10], Username: '' }, Args: ['sh', '-c', 'true'], Env: ['A=1'], Cwd: '', Capabilities: { Bounding: ['CAP_KILL'], Effective: [], Inheritable: [], Permitted: [], Ambient: [] }, Rlimits: [{ Type: 'RLIMIT_NOFILE', Hard: 1024, Soft: 1024 }], NoNewPrivileges: true, ApparmorProfile: '', OOMScoreAdj: 0, SelinuxLabel: '' },
      Root: { Path: '/host/rootfs', Readonly: true },
      Hostname: 'h',
      Mounts: [{ destination: '/proc', source: 'proc', type: 'proc', options: [] }],
      Annotations: { a: 'b' },
      Linux: {
        UIDMappings: [], GIDMappings: [], Sysctl: { 'net.ipv4.ping_group_range': '0 0', 'kernel.msgmax': '8192' }, Resources: { Devices: [{ Allow: false, Type: '', Major: -1, Minor: -1, Access: 'rwm' }], Memory: { Limit: 1048576, Reservation: 0, Swap: 0 }, CPU: null, Pids: null },
        CgroupsPath: 'system.slice:docker:abc', Namespaces: [{ Type: 'pid', Path: '' }, { Type: 'network', Path: '/proc/42/ns/net' }, { Type: 'mount', Path: '' }],
        Devices: [], MaskedPaths: ['/proc/kcore'], ReadonlyPaths: [], RootfsPropagation: '',
      },
    } as unknown as OciSpec;
    const config = specToOciConfig(spec, 'c1', '/run/kata-containers/shared/containers/c1/rootfs') as Record<string, any>;
    assert.deepEqual(config.root, { path: '/run/kata-containers/shared/containers/c1/rootfs', readonly: true });
    assert.deepEqual(config.process.user, { uid: 1000, gid: 1000, additionalGids: [10] });
    assert.equal(config.process.cwd, '/');
    assert.deepEqual(config.process.capabilities.bounding, ['CAP_KILL']);
    assert.deepEqual(config.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
    assert.deepEqual(config.linux.namespaces, [{ type: 'pid' }, { type: 'mount' }]);
    assert.equal(config.linux.cgroupsPath, '/kata-ts/c1');
    assert.deepEqual(config.linux.resources.memory, { limit: 1048576 });
    assert.deepEqual(config.linux.resources.devices, [{ allow: false, type: 'a', major: undefined, minor: undefined, access: 'rwm' }]);
    assert.equal('hooks' in config, false);
    assert.deepEqual(config.linux.sysctl, { 'kernel.msgmax': '8192' }, 'net.* sysctls are the VM\'s (the pod network), not crun\'s');
    assert.deepEqual(config.process.env, ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], 'a spec without PATH gets the usual one');
    const withPath = specToOciConfig({ ...spec, Process: { ...spec.Process, Env: ['PATH=/bin'] } } as OciSpec, 'c1', '/r') as Record<string, any>;
    assert.deepEqual(withPath.process.env, ['PATH=/bin']);
    assert.throws(() => specToOciConfig({ ...spec, Process: null }, 'c1', '/r'), /no process args/);
  });

  it('sends net.* sysctls to the VM and refuses names that leave /proc/sys', () => {
    assert.deepEqual(splitNetworkSysctls({ 'net.core.somaxconn': '1024', 'kernel.shmmax': '1' }), { container: { 'kernel.shmmax': '1' }, network: { 'net.core.somaxconn': '1024' } });
    assert.equal(sysctlPath('net.ipv4.ping_group_range'), '/proc/sys/net/ipv4/ping_group_range');
    for (const bad of ['net', 'net..x', '../etc/passwd', 'net.ipv4/../../x', 'net.a b']) assert.throws(() => sysctlPath(bad), /bad sysctl name/);
  });

  it('hands out buffered output in pieces and reports EOF as an empty buffer', async () => {
    const source = new PassThrough();
    const buffer = new OutputBuffer(source);
    const pending = buffer.read(4);
    source.write('hello world');
    assert.equal((await pending).toString(), 'hell');
    assert.equal((await buffer.read(100)).toString(), 'o world');
    source.end();
    assert.equal((await buffer.read(100)).length, 0);
  });
});

describe('vsock addresses', () => {
  it('parses vsock://cid:port and nothing else', async () => {
    const { parseVsockUrl } = await import('../../src/agent-client/vsock-bridge.js');
    assert.deepEqual(parseVsockUrl('vsock://3:1024'), { cid: 3, port: 1024 });
    assert.equal(parseVsockUrl('unix:///run/x.sock'), undefined);
    assert.equal(parseVsockUrl('vsock://x:1'), undefined);
  });
});

describe('guest agent: vsock peers', () => {
  it('only the host (CID 2) reaches the agent; this VM itself (CID 1) only with agent.vsock_local=allow', async () => {
    const { vsockPeerAllowed } = await import('../../src/guest-agent/vsock-peers.js');
    assert.equal(vsockPeerAllowed(2, false), true);
    assert.equal(vsockPeerAllowed(1, false), false);
    assert.equal(vsockPeerAllowed(3, false), false, 'another VM');
    assert.equal(vsockPeerAllowed(-1, false), false, 'a peer that could not be named');
    assert.equal(vsockPeerAllowed(1, true), true);
    assert.equal(parseAgentOptions('agent.vsock_local=allow').vsockAllowLocal, true);
  });
});

describe('guest agent: output backpressure and the zombie reaper', () => {
  it('pauses a process\'s output past the high-water mark and resumes it as the host reads', async () => {
    const { PassThrough } = await import('node:stream');
    const { OutputBuffer } = await import('../../src/guest-agent/output-buffer.js');
    const source = new PassThrough();
    const buffer = new OutputBuffer(source, 1000);
    for (let i = 0; i < 5; i++) source.write(Buffer.alloc(400));
    await new Promise((r) => setImmediate(r));
    assert.equal(source.isPaused(), true, 'paused once 1000 bytes wait');
    assert.ok(buffer.bufferedBytes <= 1200, `${buffer.bufferedBytes} bytes held`);
    await buffer.read(4096);
    assert.equal(source.isPaused(), false, 'a read resumes it');
  });

  it('ends an exited process\'s output once the pipe is silent, though a leftover child holds it open; not while paused', async () => {
    const { PassThrough } = await import('node:stream');
    const { OutputBuffer } = await import('../../src/guest-agent/output-buffer.js');
    const held = new PassThrough();
    const buffer = new OutputBuffer(held);
    held.write('last words');
    buffer.endWhenSilent(200);
    assert.equal((await buffer.read(100)).toString(), 'last words');
    const started = Date.now();
    assert.equal((await buffer.read(100)).length, 0, 'EOF, with the pipe still open');
    assert.ok(Date.now() - started >= 150, 'not before the pipe was silent for the quiet time');
    assert.equal(held.destroyed, true, 'the agent stops reading the pipe');

    const backedUp = new PassThrough();
    const slow = new OutputBuffer(backedUp, 1000);
    for (let i = 0; i < 5; i++) backedUp.write(Buffer.alloc(400));
    await new Promise((r) => setImmediate(r));
    slow.endWhenSilent(100);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(backedUp.destroyed, false, 'a pipe paused by backpressure is not silent');
    let total = 0;
    for (let chunk = await slow.read(4096); chunk.length > 0; chunk = await slow.read(4096)) total += chunk.length;
    assert.equal(total, 2000, 'every byte, then EOF once the pipe went quiet');
  });

  it('reaps a zombie child seen twice, never one whose exit is being read or one seen once', async () => {
    const { ZombieReaper } = await import('../../src/guest-agent/zombie-reaper.js');
    const { watchedPids } = await import('../../src/guest-agent/process-exit.js');
    let zombies = [10, 11];
    const reaped: number[] = [];
    const reaper = new ZombieReaper({ zombieChildren: async () => zombies, reap: (pid) => void reaped.push(pid) });
    watchedPids.add(11);
    try {
      assert.deepEqual(await reaper.round(), [], 'first sight: maybe libuv\'s, not yet');
      zombies = [10, 11, 12];
      assert.deepEqual(await reaper.round(), [10], '10 stayed a round; 11 is watched; 12 is new');
      zombies = [11, 12];
      assert.deepEqual(await reaper.round(), [12]);
      assert.deepEqual(reaped, [10, 12]);
    } finally {
      watchedPids.delete(11);
    }
  });
});
