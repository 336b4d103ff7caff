import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { daxDataOffset, daxHeader, fletcher64, masterBootRecord, pfnInfoBlock } from '../../src/image/dax-header.js';

describe('the root image header (nvdimm PFN info block and MBR)', () => {
  it('computes Linux nd_fletcher64 over little-endian words', () => {
    const block = Buffer.alloc(16);
    block.writeUInt32LE(1, 0);
    block.writeUInt32LE(2, 4);
    block.writeUInt32LE(0xffffffff, 8);
    // lo: 1, 3, 2 (wrapped), 2; hi: 1 + 3 + 2 + 2 = 8
    assert.equal(fletcher64(block), (8n << 32n) | 2n);
  });

  it('writes a version 1.4 PFN info block whose checksum the kernel accepts', () => {
    const fsBytes = 100 * 1024 * 1024;
    const sb = pfnInfoBlock(daxDataOffset + fsBytes, '00112233-4455-6677-8899-aabbccddeeff');
    assert.equal(sb.length, 4096);
    assert.equal(sb.subarray(0, 16).toString('latin1'), 'NVDIMM_PFN_INFO\0');
    assert.equal(sb.subarray(16, 32).toString('hex'), '00112233445566778899aabbccddeeff');
    assert.ok(sb.subarray(32, 48).every((b) => b === 0), 'no parent uuid: a label-less namespace');
    assert.deepEqual([sb.readUInt16LE(52), sb.readUInt16LE(54)], [1, 4]);
    assert.equal(sb.readBigUInt64LE(56), BigInt(daxDataOffset), 'data after the 2 MiB header');
    assert.equal(sb.readBigUInt64LE(64), BigInt(fsBytes / 4096), 'npfns');
    assert.equal(sb.readUInt32LE(72), 1, 'PFN_MODE_RAM: struct pages in RAM, the image stays read-only');
    assert.deepEqual([sb.readUInt32LE(84), sb.readUInt32LE(88), sb.readUInt16LE(92)], [daxDataOffset, 4096, 64]);
    const stored = sb.readBigUInt64LE(4088);
    const zeroed = Buffer.from(sb);
    zeroed.writeBigUInt64LE(0n, 4088);
    assert.equal(stored, fletcher64(zeroed), 'checksum over the block with its checksum field zeroed');
  });

  it('names the file system as partition 1 of an MBR for virtio-blk', () => {
    const mbr = masterBootRecord(10 * 1024 * 1024);
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
    assert.equal(mbr.readUInt8(446 + 4), 0x83);
    assert.equal(mbr.readUInt32LE(446 + 8), daxDataOffset / 512);
    assert.equal(mbr.readUInt32LE(446 + 12), (10 * 1024 * 1024) / 512);
  });

  it('puts both in one 2 MiB header: MBR at 0, PFN info block at 4 KiB', () => {
    const header = daxHeader(4 * 1024 * 1024);
    assert.equal(header.length, daxDataOffset);
    assert.equal(header.readUInt16LE(510), 0xaa55);
    assert.equal(header.subarray(4096, 4096 + 15).toString('latin1'), 'NVDIMM_PFN_INFO');
  });
});
