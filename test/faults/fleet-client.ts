/**
 * Small raw-protocol helpers for the fault tests and bench/soak: one SMTP delivery, one IMAP login, and
 * a walk of every message file under a mail root (what is on disk, independent of the daemon).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RawClient } from '../ops/fixture.js';

/** Delivers one message over SMTP (no AUTH: local recipient); resolves with the final reply line. */
export async function deliver(port: number, to: string, subject: string, body = 'hello', timeoutMs = 20_000): Promise<string> {
  const c = await RawClient.open(port);
  try {
    const banner = await c.waitFor(/^\d{3} /, timeoutMs);
    if (!banner.startsWith('220')) return banner || 'closed';
    for (const [line, ok] of [
      ['EHLO fault.test', /^\d{3} /],
      ['MAIL FROM:<sender@fault.test>', /^\d{3} /],
      [`RCPT TO:<${to}>`, /^\d{3} /],
      ['DATA', /^\d{3} /],
    ] as const) {
      const r = await c.send(line, ok, timeoutMs);
      if (!/^[23]/.test(r)) return r || 'closed';
    }
    const final = await c.send(
      `From: sender@fault.test\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@fault.test>\r\n\r\n${body}\r\n.`,
      /^\d{3} /,
      timeoutMs,
    );
    c.socket.write('QUIT\r\n');
    return final || 'closed';
  } finally {
    setTimeout(() => c.close(), 50).unref();
  }
}

/** An authenticated IMAP connection (LOGIN over plaintext: the test spec allows it). */
export async function imapLogin(port: number, user: string, password = 'password'): Promise<RawClient> {
  const c = await RawClient.open(port);
  const greet = await c.waitFor(/^\* (OK|BYE)/, 10_000);
  if (!greet.startsWith('* OK')) throw new Error(`IMAP greeting: ${greet}`);
  const r = await c.send(`a0 LOGIN ${user} ${password}`, /^a0 /, 10_000);
  if (!r.startsWith('a0 OK')) throw new Error(`IMAP LOGIN: ${r}`);
  return c;
}

let tagN = 0;
/** Runs one tagged command; returns the tagged reply and the untagged lines before it. */
export async function imapCmd(c: RawClient, cmd: string, timeoutMs = 10_000): Promise<{ status: string; lines: string[] }> {
  const tag = `t${++tagN}`;
  const from = c.lines.length;
  const status = await c.send(`${tag} ${cmd}`, new RegExp(`^${tag} `), timeoutMs);
  const end = c.lines.lastIndexOf(status);
  return { status: status.slice(tag.length + 1), lines: c.lines.slice(from, end) };
}

/** UIDs from `UID SEARCH ALL` on the selected mailbox. */
export async function uids(c: RawClient): Promise<number[]> {
  const r = await imapCmd(c, 'UID SEARCH ALL');
  if (!r.status.startsWith('OK')) throw new Error(`UID SEARCH: ${r.status}`);
  const line = r.lines.find((l) => l.startsWith('* SEARCH')) ?? '* SEARCH';
  return line.slice(8).trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Every Maildir message file (in new/ or cur/) under root, with its Subject; tmp/ files listed apart. */
export function messagesOnDisk(root: string): { subjects: string[]; tmpFiles: string[] } {
  const subjects: string[] = [];
  const tmpFiles: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (dir.endsWith('/tmp')) tmpFiles.push(p);
      else if (dir.endsWith('/new') || dir.endsWith('/cur')) {
        const m = /^Subject: (.*)$/m.exec(readFileSync(p, 'latin1'));
        subjects.push(m?.[1]?.trim() ?? '');
      }
    }
  };
  walk(root);
  return { subjects, tmpFiles };
}
