import { unmountAllUnder } from '../src/util/host-mounts.ts';
await unmountAllUnder(process.argv[2]!);
