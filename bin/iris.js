#!/usr/bin/env node
// The `iris` command: register tsx so Node can load the TypeScript sources, then run the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
