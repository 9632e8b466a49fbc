#!/usr/bin/env node
// `npm start`: src/server.ts, compiled (dist/) when fresh, else through tsx (bin/entry.js).
import { runEntry } from './entry.js';

await runEntry('server');
