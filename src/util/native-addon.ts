import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The C addon (native/*.c): AF_VSOCK and terminals, which Node lacks. */
export interface NativeAddon {
  listen(port: number, cid?: number): number;
  accept(listenFd: number): Promise<number>;
  connect(cid: number, port: number): Promise<number>;
  shutdown(fd: number): void;
  /** flock(fd, LOCK_EX | LOCK_NB), or LOCK_SH when shared: 0 when taken, else the errno (11, EWOULDBLOCK, while another holds it). */
  tryLock(fd: number, shared?: boolean): number;
  /** waitpid(pid, WNOHANG): the wait status when a zombie child was reaped, else -1. */
  reap(pid: number): number;
  /** The CID at the other end of a connected vsock. */
  peerCid(fd: number): number;
  openPty(): { master: number; slave: number; name: string };
  getWindowSize(fd: number): { rows: number; columns: number };
  setWindowSize(fd: number, rows: number, columns: number): void;
  /** Puts a terminal in raw mode (cfmakeraw) and returns its previous settings. */
  makeRaw(fd: number): Buffer;
  restoreTermios(fd: number, saved: Buffer): void;
  setControllingTerminal(fd: number): void;
  listenUnix(socketPath: string): number;
  receiveFd(listenFd: number, timeoutMs: number): Promise<number>;
  sendFd(socketPath: string, fd: number, name: string): void;
  /** Reads a connected unix socket up to the first newline, with the fds sent along (SCM_RIGHTS). */
  receiveMessage(fd: number, timeoutMs: number): Promise<{ data: Buffer; fds: number[] }>;
  /** Credits `data` to the kernel's entropy pool and reseeds its generator at once (root only). */
  reseedCrng(data: Buffer): void;
  /** rm -r that never follows a symlink nor enters a mount point (fd-relative, O_NOFOLLOW); a missing path is fine. */
  removeTree(path: string): void;
  /** clock_settime(CLOCK_REALTIME) (root only). */
  setRealtime(seconds: number, microseconds: number): void;
}

export const addonFileName = 'kata_native.node';

let addon: NativeAddon | undefined;

/** Next to the running bundle (the guest agent), or in native/build/Release of the package. */
export function loadNativeAddon(): NativeAddon {
  if (addon) return addon;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, addonFileName), path.resolve(here, '..', '..', 'native', 'build', 'Release', addonFileName)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`native addon ${addonFileName} not found (looked in ${candidates.join(', ')}); run npm run build`);
  addon = createRequire(import.meta.url)(found) as NativeAddon;
  return addon;
}
