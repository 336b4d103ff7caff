import { ociVersion } from '../../runtime/describe-container.js';
import type { Command } from 'commander';
import { kataTsVersion } from '../../util/version.js';

/** Same shape as `kata-runtime --version`. */
export function versionText(): string {
  return [`kata-ts  : ${kataTsVersion}`, `   OCI specs: ${ociVersion}`, `   node     : ${process.version}`].join('\n');
}

export function registerVersion(program: Command, print: (text: string) => void): void {
  program
    .command('version')
    .description('show the version of kata-ts and the OCI spec it implements')
    .action(() => print(versionText()));
}
