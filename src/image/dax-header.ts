import { randomUUID } from 'node:crypto';

/**
 * The first 2 MiB of the root image file, in front of the file system, so
 * that one file serves both ways of attaching it:
 * - as an nvdimm, the guest kernel finds a PFN info block at 4 KiB (Linux's
 *   "fsdax" namespace format, memmap kept in RAM) and exposes /dev/pmem0
 *   starting at the data offset: the file system, mountable with DAX, so its
 *   pages are the host's page-cache pages, mapped into every VM, never copied;
 * - as a virtio-blk disk, an MBR names the same bytes as partition 1 (/dev/vda1).
 */
export const daxDataOffset = 2 * 1024 * 1024;

const sectorSize = 512;
const pfnInfoOffset = 4096;
const pfnInfoSize = 4096;
const pfnModeRam = 1;

/** Linux's nd_fletcher64 over little-endian 32-bit words. */
export function fletcher64(block: Buffer): bigint {
  let lo = 0;
  let hi = 0n;
  for (let i = 0; i < block.length; i += 4) {
    lo = (lo + block.readUInt32LE(i)) >>> 0;
    hi += BigInt(lo);
  }
  return ((hi << 32n) | BigInt(lo)) & 0xffff_ffff_ffff_ffffn;
}

/** struct nd_pfn_sb, version 1.4, for a namespace of `namespaceBytes`. */
export function pfnInfoBlock(namespaceBytes: number, uuid = randomUUID()): Buffer {
  const sb = Buffer.alloc(pfnInfoSize);
  sb.write('NVDIMM_PFN_INFO\0', 0, 'latin1');
  Buffer.from(uuid.replace(/-/g, ''), 'hex').copy(sb, 16);
  // parent_uuid (32) stays zero: a namespace without labels has no uuid of its own.
  sb.writeUInt16LE(1, 52); // version_major
  sb.writeUInt16LE(4, 54); // version_minor
  sb.writeBigUInt64LE(BigInt(daxDataOffset), 56); // dataoff
  sb.writeBigUInt64LE(BigInt((namespaceBytes - daxDataOffset) / 4096), 64); // npfns
  sb.writeUInt32LE(pfnModeRam, 72); // struct pages live in guest RAM: the image stays read-only
  sb.writeUInt32LE(daxDataOffset, 84); // align
  sb.writeUInt32LE(4096, 88); // page_size
  sb.writeUInt16LE(64, 92); // page_struct_size
  sb.writeBigUInt64LE(fletcher64(sb), pfnInfoSize - 8);
  return sb;
}

/** A DOS partition table with one Linux partition over the file system. */
export function masterBootRecord(fileSystemBytes: number): Buffer {
  const mbr = Buffer.alloc(sectorSize);
  const entry = 446;
  mbr.writeUInt8(0x00, entry); // not bootable
  mbr.write('\xff\xff\xfe', entry + 1, 'latin1'); // CHS: use LBA
  mbr.writeUInt8(0x83, entry + 4); // Linux
  mbr.write('\xff\xff\xfe', entry + 5, 'latin1');
  mbr.writeUInt32LE(daxDataOffset / sectorSize, entry + 8);
  mbr.writeUInt32LE(Math.ceil(fileSystemBytes / sectorSize), entry + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  return mbr;
}

/** The 2 MiB header for a file system image of `fileSystemBytes` (a multiple of 2 MiB). */
export function daxHeader(fileSystemBytes: number): Buffer {
  const header = Buffer.alloc(daxDataOffset);
  masterBootRecord(fileSystemBytes).copy(header, 0);
  pfnInfoBlock(daxDataOffset + fileSystemBytes).copy(header, pfnInfoOffset);
  return header;
}
