export { run, DEFAULT_API_URL, type RunEnvironment } from './program.js';
export { EXIT, CliError, type ExitCode } from './exit-codes.js';
export { ApiClient } from './client.js';
