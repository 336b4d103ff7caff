import { main } from './main.js';

/** The entry point of the bundle (dist/cli/kata-ts.cjs): bin/kata-ts calls it. */
export { main };
