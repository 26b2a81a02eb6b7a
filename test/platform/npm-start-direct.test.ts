/**
 * `npm start` on a machine without HAProxy (PATH without it): the daemon listens on the public ports
 * itself, the output says why, mail still flows, Ctrl-C stops it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { hashPassword } from '../../lib/directory/static.js';
import { writeTempSpec, type TempSpec } from '../haproxy/harness.js';
import { npmStart, requireTool, swaks, type NpmStart } from './npm-start-harness.js';

describe('npm start without HAProxy installed', () => {
  let spec: TempSpec;
  let up: NpmStart;

  before(async () => {
    requireTool('swaks', 'swaks');
    spec = await writeTempSpec({}, [{ address: 'alice@example.com', passwordHash: await hashPassword('pw-direct') }]);
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((d) => d !== '' && !existsSync(join(d, 'haproxy')))
      .join(delimiter);
    up = await npmStart(spec.file, join(spec.dir, 'data'), { ...process.env, PATH: path });
  });
  after(() => {
    up?.kill();
    spec?.cleanup();
  });

  it('says HAProxy is missing and serves the public ports from the daemon', () => {
    assert.match(up.output(), /no HAProxy: haproxy is not installed \(apt-get install haproxy\)/);
    assert.match(up.output(), /mailfleetd up \(local-direct\)/);
    assert.match(up.output(), new RegExp(`smtp\\s+default-smtp\\s+127\\.0\\.0\\.1:${spec.port('smtp')}\\s`));
  });

  it('GIVEN no HAProxy WHEN swaks delivers on the public port THEN the daemon accepts it', () => {
    assert.match(swaks(spec.port('smtp'), 'alice@example.com', 'direct'), /<- {2}250 2\.0\.0 Ok: queued/);
  });

  it('WHEN Ctrl-C THEN it exits and leaves no process behind', async () => {
    assert.notEqual(await up.interrupt(), 'timeout');
    assert.deepEqual(up.groupPids(), []);
  });
});
