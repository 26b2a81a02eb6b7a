export * from './routes.js';
export * from './snapshot.js';
export { consolePage, consoleScript } from './page.js';
