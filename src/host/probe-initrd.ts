/**
 * The KVM probe's initrd: a newc cpio holding /dev/console and an /init that
 * writes a marker line and powers the VM off. /init is a 206-byte static
 * x86-64 ELF made here, so the probe needs no busybox, no compiler and no
 * guest image: only the configured kernel.
 */

/** What /init writes to the console once guest user space runs. */
export const probeMarker = 'kata-ts-probe: guest user space runs';

const elfBase = 0x400000;
const elfHeaderSize = 64;
const programHeaderSize = 56;

/** write(1, marker, len); reboot(MAGIC1, MAGIC2, POWER_OFF); for (;;); */
function initCode(messageLength: number): Buffer {
  const codeLength = 48;
  const leaEnd = 17; // the lea's displacement counts from the end of the instruction
  const code = Buffer.from([
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
    0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (stdout: /dev/console)
    0x48, 0x8d, 0x35, 0, 0, 0, 0, // lea rsi, [rip + message]
    0xba, 0, 0, 0, 0, //             mov edx, length
    0x0f, 0x05, //                   syscall
    0xb8, 0xa9, 0x00, 0x00, 0x00, // mov eax, 169 (reboot)
    0xbf, 0xad, 0xde, 0xe1, 0xfe, // mov edi, LINUX_REBOOT_MAGIC1
    0xbe, 0x69, 0x19, 0x12, 0x28, // mov esi, LINUX_REBOOT_MAGIC2
    0xba, 0xdc, 0xfe, 0x21, 0x43, // mov edx, LINUX_REBOOT_CMD_POWER_OFF
    0x0f, 0x05, //                   syscall
    0xeb, 0xfe, //                   jmp . (if power-off failed, wait for the deadline)
  ]);
  code.writeInt32LE(codeLength - leaEnd, 13);
  code.writeUInt32LE(messageLength, 18);
  return code;
}

export function probeInitElf(): Buffer {
  const message = Buffer.from(`\n${probeMarker}\n`, 'ascii');
  const code = initCode(message.length);
  const headers = elfHeaderSize + programHeaderSize;
  const size = headers + code.length + message.length;
  const elf = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(elf, 0); // ELF, 64-bit, little endian, version 1
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(elfBase + headers), 24); // entry
  elf.writeBigUInt64LE(BigInt(elfHeaderSize), 32); // program headers follow the ELF header
  elf.writeUInt16LE(elfHeaderSize, 52);
  elf.writeUInt16LE(programHeaderSize, 54);
  elf.writeUInt16LE(1, 56);
  // One PT_LOAD, read + execute, mapping the whole file at elfBase.
  const ph = elfHeaderSize;
  elf.writeUInt32LE(1, ph);
  elf.writeUInt32LE(5, ph + 4);
  elf.writeBigUInt64LE(0n, ph + 8);
  elf.writeBigUInt64LE(BigInt(elfBase), ph + 16);
  elf.writeBigUInt64LE(BigInt(elfBase), ph + 24);
  elf.writeBigUInt64LE(BigInt(size), ph + 32);
  elf.writeBigUInt64LE(BigInt(size), ph + 40);
  elf.writeBigUInt64LE(0x1000n, ph + 48);
  code.copy(elf, headers);
  message.copy(elf, headers + code.length);
  return elf;
}

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdev?: [number, number];
}

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function newcEntry(entry: CpioEntry, ino: number): Buffer {
  const data = entry.data ?? Buffer.alloc(0);
  const name = Buffer.from(`${entry.name}\0`);
  const [rdevMajor, rdevMinor] = entry.rdev ?? [0, 0];
  const fields = [ino, entry.mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, name.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return Buffer.concat([header, name, pad4(header.length + name.length), data, pad4(data.length)]);
}

/** The probe initrd, as bytes: the same for every call. */
export function probeInitrd(): Buffer {
  const entries: CpioEntry[] = [
    { name: 'dev', mode: 0o040755 },
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] },
    { name: 'init', mode: 0o100755, data: probeInitElf() },
    { name: 'TRAILER!!!', mode: 0 },
  ];
  return Buffer.concat(entries.map((e, i) => newcEntry(e, i + 1)));
}
