import { main } from './main.js';
import { shimV2Main } from './shim-v2-main.js';

/** The entry points of the bundle (dist/cli/kata-ts.cjs): bin/kata-ts calls one by the name it was run as. */
export { main, shimV2Main };
