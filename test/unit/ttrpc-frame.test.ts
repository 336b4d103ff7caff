import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeFrame, FrameReader, FrameType, frameLengthMax, type Frame, type OversizedFrame } from '../../src/ttrpc/ttrpc-frame.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/ttrpc/ttrpc-messages.js';

describe('ttrpc framing and messages', () => {
  it('writes the 10-byte header ttrpc expects: length, stream id, type, flags', () => {
    const frame = encodeFrame(7, FrameType.Response, Buffer.from('abc'));
    assert.deepEqual([...frame.subarray(0, 10)], [0, 0, 0, 3, 0, 0, 0, 7, 2, 0]);
    assert.equal(frame.subarray(10).toString(), 'abc');
  });

  it('reads frames split anywhere and several in one chunk', () => {
    const bytes = Buffer.concat([encodeFrame(1, FrameType.Request, Buffer.from('one')), encodeFrame(3, FrameType.Request, Buffer.alloc(0)), encodeFrame(5, FrameType.Request, Buffer.from('three'))]);
    for (const cut of [1, 5, 10, 12, 13, 20, bytes.length - 1]) {
      const frames: Frame[] = [];
      const reader = new FrameReader();
      reader.push(bytes.subarray(0, cut), (f) => frames.push(f), assert.fail);
      reader.push(bytes.subarray(cut), (f) => frames.push(f), assert.fail);
      assert.deepEqual(frames.map((f) => [f.streamId, f.payload.toString()]), [[1, 'one'], [3, ''], [5, 'three']], `cut at ${cut}`);
    }
  });

  it('skips an oversized frame and goes on with the next', () => {
    const header = Buffer.alloc(10);
    header.writeUInt32BE(frameLengthMax + 1, 0);
    header.writeUInt32BE(9, 4);
    header.writeUInt8(1, 8);
    const frames: Frame[] = [];
    const big: OversizedFrame[] = [];
    const reader = new FrameReader();
    reader.push(header, (f) => frames.push(f), (b) => big.push(b));
    reader.push(Buffer.alloc(frameLengthMax + 1), (f) => frames.push(f), (b) => big.push(b));
    reader.push(encodeFrame(11, FrameType.Request, Buffer.from('next')), (f) => frames.push(f), (b) => big.push(b));
    assert.deepEqual(big, [{ streamId: 9, type: 1, length: frameLengthMax + 1 }]);
    assert.deepEqual(frames.map((f) => f.payload.toString()), ['next']);
  });

  it('round-trips requests and responses with ttrpc field numbers', () => {
    const request = { service: 'containerd.task.v2.Task', method: 'State', payload: Buffer.from([1, 2]), timeoutNano: 5e9, metadata: [{ key: 'k', value: 'v' }] };
    assert.deepEqual(decodeRequest(encodeRequest(request)), request);
    // service = field 1 (tag 0x0a), method = field 2 (0x12)
    assert.deepEqual([...encodeRequest({ ...request, payload: Buffer.alloc(0), timeoutNano: 0, metadata: [] })].slice(0, 2), [0x0a, request.service.length]);
    assert.deepEqual(decodeResponse(encodeResponse({ status: { code: 5, message: 'gone' }, payload: Buffer.alloc(0) })).status, { code: 5, message: 'gone' });
    assert.deepEqual(decodeResponse(encodeResponse({ payload: Buffer.from('ok') })), { payload: Buffer.from('ok') });
  });
});
