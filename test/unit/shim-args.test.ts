import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseShimArgs } from '../../src/shim-v2/shim-args.js';
import { shimSocketPath } from '../../src/shim-v2/shim-start.js';
import { decodeMessage, encodeMessage, packAny, timestampOf } from '../../src/shim-v2/task-messages.js';

describe('containerd shim v2: arguments and messages', () => {
  it('reads containerd\'s flags (Go syntax: -name value, --name=value) and the action', () => {
    const args = parseShimArgs(['-namespace', 'k8s.io', '--address=/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'abc', '-debug', 'start']);
    assert.deepEqual(args, { namespace: 'k8s.io', address: '/run/containerd/containerd.sock', publishBinary: '/usr/bin/containerd', id: 'abc', debug: true, action: 'start' });
    assert.equal(parseShimArgs(['-namespace', 'n', '-id', 'x', '-bundle', '/b', 'delete']).bundle, '/b');
    assert.throws(() => parseShimArgs(['-namespace', 'n', '-id', 'x', 'bogus']), /unknown action "bogus"/);
    assert.throws(() => parseShimArgs(['-id', 'x', 'start']), /-namespace is required/);
    assert.throws(() => parseShimArgs(['-namespace', 'n', '-id', 'x', '-nope', '1', 'start']), /unknown flag -nope/);
    assert.throws(() => parseShimArgs(['-namespace', 'n', '-id']), /flag -id needs a value/);
  });

  it('one short socket per containerd, namespace and sandbox', () => {
    const a = shimSocketPath({ address: '/run/containerd/containerd.sock', namespace: 'default' }, 'pod1');
    assert.ok(a.length < 108, 'fits a unix socket path');
    assert.equal(shimSocketPath({ address: '/run/containerd/containerd.sock', namespace: 'default' }, 'pod1'), a);
    assert.notEqual(shimSocketPath({ address: '/run/containerd/containerd.sock', namespace: 'k8s.io' }, 'pod1'), a);
    assert.notEqual(shimSocketPath({ address: '/other.sock', namespace: 'default' }, 'pod1'), a);
  });

  it('encodes task messages with containerd\'s field numbers', () => {
    // WaitResponse: exit_status = 1 (varint), exited_at = 2 (Timestamp)
    const wait = encodeMessage('containerd.task.v2.WaitResponse', { exit_status: 3, exited_at: { seconds: 10, nanos: 0 } });
    assert.deepEqual([...wait], [0x08, 3, 0x12, 4, 0x08, 10, 0x10, 0]);
    const create = decodeMessage<{ id: string; rootfs: Array<{ type: string }>; terminal: boolean }>(
      'containerd.task.v2.CreateTaskRequest',
      encodeMessage('containerd.task.v2.CreateTaskRequest', { id: 'c1', rootfs: [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] }] }),
    );
    assert.equal(create.id, 'c1');
    assert.equal(create.rootfs[0]?.type, 'overlay');
    assert.equal(create.terminal, false);
    const any = packAny('containerd.events.TaskExit', { container_id: 'c1', exit_status: 4 });
    assert.equal(any.type_url, 'containerd.events.TaskExit');
    assert.equal(decodeMessage<{ exit_status: number }>('containerd.events.TaskExit', any.value).exit_status, 4);
    assert.deepEqual(timestampOf(new Date(1500)), { seconds: 1, nanos: 500_000_000 });
  });
});
