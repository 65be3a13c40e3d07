export { startAuthzService, type AuthzService } from './app.js';
export { loadAuthzConfig, type AuthzConfig } from './config.js';
export { generateKey, checkKeyShape } from './domain/key-format.js';
export { KeyHasher } from './domain/key-hash.js';
// For tools that create keys, tokens and provider secrets from outside the service process
// (benchmarks, the reliability suite) with the service's own stores.
export { KeyStore, type NewKey } from './stores/key-store.js';
export { createServiceDeps, closeServiceDeps } from './deps.js';
export { issueServiceToken } from './tokens/token-service.js';
export { renderOpenApiDocument } from './http/openapi-offline.js';
