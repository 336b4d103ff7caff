import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat, truncate } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { runCommand } from '../util/run-command.js';
import type { RootfsType } from '../config/runtime-config.js';
import { KataError, messageOf } from '../util/errors.js';
import { daxDataOffset, daxHeader } from './dax-header.js';

const twoMiB = 2 * 1024 * 1024;

/** A file system image of `tree`, padded to 2 MiB. */
async function makeFileSystem(tree: string, output: string, type: RootfsType): Promise<number> {
  await rm(output, { force: true });
  try {
    if (type === 'erofs') {
      // noinline_data: DAX maps only files stored flat (no tail packed in the inode).
      await runCommand('mkfs.erofs', ['-T0', '--all-root', '-E', 'noinline_data', output, tree]);
    } else {
      const { stdout } = await runCommand('du', ['-sk', tree]);
      const kib = Number(stdout.split(/\s/)[0]);
      await runCommand('mke2fs', ['-q', '-t', 'ext4', '-E', 'root_owner=0:0', '-O', '^has_journal', '-L', 'kata-ts-root', '-d', tree, output, `${Math.ceil(kib * 1.2 + 16384)}k`]);
    }
  } catch (err) {
    throw new KataError('IO', `cannot make the ${type} root image of ${tree}: ${messageOf(err)}`, { cause: err });
  }
  const size = Math.ceil((await stat(output)).size / twoMiB) * twoMiB;
  await truncate(output, size);
  return size;
}

/**
 * The read-only root image: a 2 MiB header (see dax-header.ts: an MBR for
 * virtio-blk, a PFN info block for an nvdimm with DAX), then the file system
 * (erofs, made for read-only images; or ext4).
 */
export async function makeRootfsImage(tree: string, output: string, type: RootfsType): Promise<void> {
  const fs = `${output}.fs`;
  try {
    const size = await makeFileSystem(tree, fs, type);
    const out = createWriteStream(output);
    out.write(daxHeader(size));
    await pipeline(createReadStream(fs), out);
    if ((await stat(output)).size !== daxDataOffset + size) throw new KataError('IO', `${output} was not written in full`);
  } finally {
    await rm(fs, { force: true });
  }
}
