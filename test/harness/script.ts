/**
 * The entry of a child script a test spawns (the netns-*.ts scripts run under `unshare`): runs `main`,
 * exits 0 when it resolves, and on a failure writes the stack to stderr (the parent test shows it) and
 * exits 1.
 */
export function runScript(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
