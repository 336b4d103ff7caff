import { closeSync, createReadStream, createWriteStream, fstatSync } from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import tty from 'node:tty';

/** The caller-facing ends of a process's stdio, made from fds a carrier passed. */
export interface PassedStdio {
  input: Readable;
  output: Writable;
  errorOutput: Writable;
  close(): void;
}

/**
 * A stream of the right kind for the fd: pipes and sockets, terminals, files
 * and /dev/null each need their own. Every kind closes its fd when destroyed
 * (file streams too, whatever autoClose says), and only then.
 */
function readable(fd: number): Readable {
  const st = fstatSync(fd);
  if (st.isFIFO() || st.isSocket()) return new net.Socket({ fd, readable: true, writable: false });
  if (tty.isatty(fd)) return new tty.ReadStream(fd);
  return createReadStream('', { fd, autoClose: false });
}

function writable(fd: number): Writable {
  const st = fstatSync(fd);
  const stream: Writable =
    st.isFIFO() || st.isSocket() ? new net.Socket({ fd, readable: false, writable: true })
      : tty.isatty(fd) ? new tty.WriteStream(fd)
        : createWriteStream('', { fd, autoClose: false });
  stream.on('error', () => undefined); // a caller that stopped reading loses the output, nothing more
  return stream;
}

/** fds[0..2] are the carrier's stdin, stdout and stderr (for a terminal, the pty slave three times). */
export function passedStdio(fds: number[]): PassedStdio {
  const [stdin, stdout, stderr] = fds;
  if (fds.length !== 3 || stdin === undefined || stdout === undefined || stderr === undefined) {
    for (const fd of fds) closeSync(fd);
    throw new Error(`expected 3 fds (stdin, stdout, stderr), got ${fds.length}`);
  }
  const input = readable(stdin);
  const output = writable(stdout);
  const errorOutput = writable(stderr);
  input.on('error', () => undefined);
  return {
    input,
    output,
    errorOutput,
    // Each fd is closed once, by its stream: a number closed twice may belong to someone else by then.
    close: () => {
      for (const stream of [input, output, errorOutput]) stream.destroy();
    },
  };
}
