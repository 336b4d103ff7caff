import path from 'node:path';
import { packageRoot } from '../util/package-root.js';

/** Where `image build` writes the guest, and where the bundled configuration looks for it. */
export const defaultImageDir = path.join(packageRoot, 'guest');
