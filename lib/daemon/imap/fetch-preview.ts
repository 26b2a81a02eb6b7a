/**
 * FETCH PREVIEW and PREVIEW (LAZY) (RFC 8970). The text is made once per message by the store
 * (Mailbox.preview, lib/store/mailbox/preview.ts) and kept in the mailbox cache; LAZY answers from that
 * cache only and NIL when the message has none yet (§3.1: the client fetches it without LAZY later).
 */
import type { MessageRecord, Mailbox } from '../../store/mailbox/index.js';
import { bad } from './args.js';
import type { Token } from './parser.js';
import { nstring, pushPiece } from './wire.js';

export interface PreviewAtt {
  readonly k: 'PREVIEW';
  /** PREVIEW (LAZY): NIL rather than reading the message when the preview is not cached. */
  readonly lazy: boolean;
}

/** The PREVIEW attribute with its optional modifier list (the token after the atom). */
export function parsePreviewAtt(mods: Token | undefined): PreviewAtt {
  let lazy = false;
  if (mods) {
    if (mods.t !== 'list' || mods.v.length === 0) throw bad('Invalid PREVIEW modifiers');
    for (const m of mods.v) {
      if (m.t !== 'atom' || m.v.toUpperCase() !== 'LAZY') throw bad('Unsupported PREVIEW modifier');
      lazy = true;
    }
  }
  return { k: 'PREVIEW', lazy };
}

/** `PREVIEW "…"` (a literal when not 7-bit), or `PREVIEW NIL` for a LAZY fetch of an uncached one. */
export async function previewItem(a: PreviewAtt, mailbox: Mailbox, r: MessageRecord): Promise<Array<string | Buffer>> {
  const text = await mailbox.preview(r, a.lazy);
  const out: Array<string | Buffer> = ['PREVIEW '];
  pushPiece(out, nstring(text));
  return out;
}
