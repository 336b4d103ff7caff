import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';

const elfMagic = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const xzMagic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const gzipMagic = Buffer.from([0x1f, 0x8b, 0x08]);

export async function isElf(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    return head.equals(elfMagic);
  } finally {
    await handle.close();
  }
}

/** The ELF vmlinux in a decompressed payload candidate, or undefined. */
function elfOrNothing(data: Buffer): Buffer | undefined {
  return data.subarray(0, 4).equals(elfMagic) ? data : undefined;
}

/**
 * The uncompressed vmlinux inside a bzImage: the kernel's payload is the first
 * xz (Debian) or gzip stream that decompresses to an ELF. QEMU boots that ELF
 * directly through its PVH note, which skips decompressing under emulation
 * (about 4 s under TCG).
 */
export async function extractVmlinux(bzImage: string, output: string): Promise<void> {
  const image = await readFile(bzImage);
  let vmlinux: Buffer | undefined;
  for (let at = image.indexOf(xzMagic); at >= 0 && !vmlinux; at = image.indexOf(xzMagic, at + 1)) {
    const { stdoutBuffer } = await runCommand('xz', ['-dc', '--single-stream'], { input: image.subarray(at), reject: false });
    vmlinux = elfOrNothing(stdoutBuffer);
  }
  for (let at = image.indexOf(gzipMagic); at >= 0 && !vmlinux; at = image.indexOf(gzipMagic, at + 1)) {
    try {
      vmlinux = elfOrNothing(gunzipSync(image.subarray(at)));
    } catch {
      // not a gzip stream after all: keep looking
    }
  }
  if (!vmlinux) throw new KataError('IO', `${bzImage}: no xz or gzip payload holding an ELF vmlinux`);
  const temp = `${output}.new`;
  try {
    await writeFile(temp, vmlinux, { mode: 0o644 });
    await rename(temp, output);
  } catch (err) {
    await rm(temp, { force: true });
    throw new KataError('IO', `cannot write ${output}: ${messageOf(err)}`, { cause: err });
  }
}
