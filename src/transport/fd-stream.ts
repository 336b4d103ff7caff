import { closeSync, createReadStream, createWriteStream } from 'node:fs';
import { Duplex } from 'node:stream';

/**
 * One Duplex over a file descriptor that libuv cannot wrap as a socket (a
 * virtio-serial port, an AF_VSOCK socket): reads and writes go through the
 * thread pool. The fd is closed when the stream closes; for sockets pass a
 * beforeClose that shuts the socket down, or a pending read keeps a
 * thread-pool thread (and process exit) waiting forever.
 */
export function fdDuplex(fd: number, beforeClose?: () => void): Duplex {
  const readable = createReadStream('', { fd, autoClose: false, highWaterMark: 64 * 1024 });
  const writable = createWriteStream('', { fd, autoClose: false });
  const duplex = Duplex.from({ readable, writable });
  // The read stream's destroy waits for its in-flight read, and close() does not wake a
  // thread blocked in read(): shut the socket down first, as destroy begins.
  const destroyInner = duplex._destroy.bind(duplex);
  duplex._destroy = (err, callback) => {
    try {
      beforeClose?.();
    } catch {
      // not connected any more
    }
    destroyInner(err, callback);
  };
  duplex.once('close', () => {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  });
  return duplex;
}
