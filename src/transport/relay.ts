import type { Duplex } from 'node:stream';

/** Pipes a and b into each other; when either fails or closes, both are destroyed and onDone runs once. */
export function relay(a: Duplex, b: Duplex, onDone?: () => void): void {
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    a.destroy();
    b.destroy();
    onDone?.();
  };
  a.pipe(b).pipe(a);
  for (const stream of [a, b]) {
    stream.on('error', finish);
    stream.on('close', finish);
  }
}
