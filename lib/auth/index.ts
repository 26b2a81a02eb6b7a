export * from './app-passwords.js';
export * from './oauth.js';
export * from './sasl.js';
export * from './scram.js';
