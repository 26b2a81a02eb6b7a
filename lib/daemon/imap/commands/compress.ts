import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad } from '../args.js';
import { reserveCompress } from '../compress.js';
import { imapWorkLimits } from '../work-limits.js';

/** COMPRESS DEFLATE (RFC 4978): the tagged OK goes out plain, everything after it compressed. */
export const compress = defineCommand({
  name: 'COMPRESS',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const mech = a.atom('compression mechanism').toUpperCase();
    a.end();
    return mech;
  },
  async handler(s, mech, tag) {
    if (s.compressed) return { status: 'NO', code: 'COMPRESSIONACTIVE', text: 'DEFLATE is already active' };
    if (mech !== 'DEFLATE') throw bad(`Unknown compression mechanism ${mech.slice(0, 40)}`);
    const release = reserveCompress(s.deps, imapWorkLimits(s.deps.settings).maxCompressMemoryBytes);
    if (!release) return { status: 'NO', code: 'LIMIT', text: 'Server is out of memory for compression, try again later' };
    s.write(`${tag} OK DEFLATE active\r\n`);
    s.startCompress(release);
    return undefined;
  },
});
