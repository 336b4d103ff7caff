import { openSync, readdirSync, readFileSync, createReadStream, createWriteStream, closeSync } from 'node:fs';
import { Duplex } from 'node:stream';

/** The /dev node of the virtio-serial port with this name, by /sys/class/virtio-ports/<port>/name. */
export function findVirtioPort(name: string, sysRoot = '/sys/class/virtio-ports'): string | undefined {
  let ports: string[];
  try {
    ports = readdirSync(sysRoot);
  } catch {
    return undefined;
  }
  for (const port of ports) {
    try {
      if (readFileSync(`${sysRoot}/${port}/name`, 'utf8').trim() === name) return `/dev/${port}`;
    } catch {
      // a port without a name
    }
  }
  return undefined;
}

/** Opens a character device read-write as one Duplex (reads run in libuv's thread pool). */
export function openCharDevice(devicePath: string): Duplex {
  const fd = openSync(devicePath, 'r+');
  const readable = createReadStream('', { fd, autoClose: false, highWaterMark: 64 * 1024 });
  const writable = createWriteStream('', { fd, autoClose: false });
  const duplex = Duplex.from({ readable, writable });
  duplex.once('close', () => {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  });
  return duplex;
}
