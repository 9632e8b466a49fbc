#!/usr/bin/env node
// The `iris` command: src/cli.ts, compiled (dist/) when fresh, else through tsx (bin/entry.js).
import { runEntry } from './entry.js';

await runEntry('cli');
