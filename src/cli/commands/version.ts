import { ociVersion } from '../../runtime/describe-container.js';
import type { Command } from 'commander';
import { buildCommit, kataTsVersion } from '../../util/version.js';

/**
 * `--version` in runc's form, which docker (parseRuntimeVersion) and go-runc
 * parse: "<name> version <v>", then `commit:` and `spec:` lines.
 */
export function runcVersionText(): string {
  return [`kata-ts version ${kataTsVersion}`, `commit: ${buildCommit()}`, `spec: ${ociVersion}`, `node: ${process.version}`].join('\n');
}

/** `kata-ts version`: the shape of `kata-runtime version`. */
export function versionText(): string {
  return [`kata-ts  : ${kataTsVersion}`, `   OCI specs: ${ociVersion}`, `   node     : ${process.version}`].join('\n');
}

export function registerVersion(program: Command, print: (text: string) => void): void {
  program
    .command('version')
    .description('show the version of kata-ts and the OCI spec it implements')
    .action(() => print(versionText()));
}
