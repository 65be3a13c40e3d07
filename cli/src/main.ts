#!/usr/bin/env node
import { run } from './program.js';

// Output goes straight to the streams; the exit code is the contract (docs/cli.md).
const code = await run(process.argv.slice(2), {
  env: process.env,
  output: {
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  },
});
process.exitCode = code;
