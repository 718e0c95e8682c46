import { afterEach } from 'vitest';
import { killStrays } from './cli.ts';

// A ferry process a test started is that test's: whatever it left running ends with it.
afterEach(() => killStrays());
