import { openSync, readdirSync, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { fdDuplex } from '../transport/fd-stream.js';

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

/** Opens a character device read-write as one Duplex. */
export function openCharDevice(devicePath: string): Duplex {
  return fdDuplex(openSync(devicePath, 'r+'));
}
