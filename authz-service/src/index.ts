export { startAuthzService, type AuthzService } from './app.js';
export { loadAuthzConfig, type AuthzConfig } from './config.js';
export { generateKey, checkKeyShape } from './domain/key-format.js';
export { KeyHasher } from './domain/key-hash.js';
export { KeyStore, type NewKey } from './stores/key-store.js';
