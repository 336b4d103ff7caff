// Runs a command with stdin (a pty slave) as the controlling terminal of a new
// session, as a login shell would have it: then SIGWINCH reaches the command.
// Usage: node --import tsx with-controlling-tty.ts <command> [args...]
import { spawn } from 'node:child_process';
import { exitStatusOf } from '../../src/util/exit-status.js';
import { loadNativeAddon } from '../../src/util/native-addon.js';

loadNativeAddon().setControllingTerminal(0);
const [command, ...args] = process.argv.slice(2);
if (!command) throw new Error('usage: with-controlling-tty.ts <command> [args...]');
const child = spawn(command, args, { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(exitStatusOf(code, signal)));
