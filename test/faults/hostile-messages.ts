/**
 * Messages an attacker can send to port 25 (or APPEND) to make IMAP work hard: a 5,000-part multipart,
 * a header block over 1 MiB, and large plain messages. Shared by test/faults/hostile-imap.test.ts and
 * bench/hostile.
 */
export interface HostileMessages {
  readonly normal: Buffer;
  /** multipart/mixed with 5,000 tiny text parts (over imap.maxMimeParts). */
  readonly manyParts: Buffer;
  /** 1.2 MiB of header lines (over imap.maxHeaderBytes); Subject first. */
  readonly hugeHeader: Buffer;
  /** A plain message of about `bytes`, in 76-character lines. */
  large(bytes: number): Buffer;
}

export function hostileMessages(parts = 5000): HostileMessages {
  const normal = Buffer.from('From: a@fault.test\r\nTo: x@fault.test\r\nSubject: normal\r\n\r\nhello\r\n');
  const b = 'BOUNDARY-h16';
  const body: string[] = [];
  for (let i = 0; i < parts; i++) body.push(`--${b}\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`);
  const manyParts = Buffer.from(
    `From: a@fault.test\r\nTo: x@fault.test\r\nSubject: five thousand parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n${body.join('')}--${b}--\r\n`,
  );
  const junk = `X-Junk: ${'z'.repeat(900)}\r\n`.repeat(Math.ceil((1.2 * 1024 * 1024) / 910));
  const hugeHeader = Buffer.from(`From: a@fault.test\r\nTo: x@fault.test\r\nSubject: huge header\r\n${junk}\r\nbody\r\n`);
  return {
    normal,
    manyParts,
    hugeHeader,
    large(bytes) {
      const line = `${'x'.repeat(76)}\r\n`;
      return Buffer.from(`From: a@fault.test\r\nTo: x@fault.test\r\nSubject: large\r\n\r\n${line.repeat(Math.ceil(bytes / line.length))}`);
    },
  };
}
