/**
 * The README's library snippet is the consumer app the pack test synthesizes (issue: the constructs as a
 * CDK library, "the README's snippet, verbatim, as a tested file"): this keeps the two from drifting.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('GIVEN the README library section WHEN its install line and js block are read THEN the block is examples/consumer-app/main.js (less its header comment) and the install line names the peers the pack test installs', () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('### Use the constructs from npm'));
  assert.ok(section.length < readme.length, 'README has no library section');
  assert.match(section, /```sh\nnpm install mailfleet aws-cdk-lib constructs\n```/);
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'no js block in the library section');
  const app = readFileSync('examples/consumer-app/main.js', 'utf8').replace(/^(\/\/.*\n)+/, '');
  assert.equal(block, app);
});
