import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from './fixtures.js';

/** Builds a Go interop peer against Debian's Go libraries (GOPATH mode, no downloads). */
export async function buildGoPeer(packageDir: string, output: string): Promise<string> {
  await execa('go', ['build', '-o', output, '.'], {
    cwd: path.join(repoRoot, packageDir),
    env: { GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: path.join(path.dirname(output), 'gocache'), GOFLAGS: '-mod=mod' },
  });
  return output;
}
