export * from './routes.js';
export * from './snapshot.js';
export { consolePage, consoleScript } from './page.js';
export { CONSOLE_EDGE_ROUTES, type ConsoleEdgeView } from './edge.js';
