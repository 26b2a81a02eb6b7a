"""Mail clients through the NLB stand-in, run by run.ts inside the fabric namespace.

Usage: clients.py <check> <nlb address> <json args>; prints one JSON object with the outcome and figures.
Python's own imaplib and poplib, as a mail user's scripts would use them.
"""
import imaplib
import json
import os
import poplib
import socket
import ssl
import sys
import time

# Logins need TLS first (the daemon answers PRIVACYREQUIRED in clear text). The node's certificate is the
# self-signed one its bootstrap makes while the TLS secret is empty: not verified here.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE

check, host, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


class IMAP(imaplib.IMAP4):
    """imaplib from a chosen client address of the fabric (HAProxy's IMAP backends stick per source)."""

    def __init__(self, port, timeout, source=None):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0) if self._source else None)


def out(**kw):
    print(json.dumps(kw))


if check == 'imap':
    t = time.monotonic()
    m = imaplib.IMAP4(host, args['port'], timeout=20)
    m.starttls(TLS)
    m.login(args['user'], args['password'])
    typ, data = m.select('INBOX')
    n = int(data[0])
    typ, found = m.search(None, 'SUBJECT', '"%s"' % args['subject'])
    m.logout()
    out(ok=len(found[0].split()) >= 1, messages=n, found=len(found[0].split()), seconds=round(time.monotonic() - t, 2))
elif check == 'pop3':
    t = time.monotonic()
    p = poplib.POP3(host, args['port'], timeout=20)
    p.stls(TLS)
    p.user(args['user'])
    p.pass_(args['password'])
    count, size = p.stat()
    p.quit()
    out(ok=count >= 1, messages=count, octets=size, seconds=round(time.monotonic() - t, 2))
elif check == 'idle':
    # IDLE for longer than the listener's idle timeout: the daemon's "* OK Still here" keeps the flow alive.
    m = imaplib.IMAP4(host, args['port'], timeout=args['hold'] + 30)
    m.starttls(TLS)
    m.login(args['user'], args['password'])
    m.select('INBOX')
    s = m.socket()
    s.sendall(b'i1 IDLE\r\n')
    f = s.makefile('rb')
    first = f.readline()
    keepalives = 0
    t = time.monotonic()
    s.settimeout(2)
    buf = b''
    while time.monotonic() - t < args['hold']:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    keepalives = buf.count(b'Still here')
    held = round(time.monotonic() - t, 1)
    s.settimeout(20)
    try:
        s.sendall(b'DONE\r\n')
        end = b''
        while b'i1 ' not in end:
            chunk = s.recv(4096)
            if not chunk:
                break
            end += chunk
        done = b'i1 OK' in end
    except OSError:
        done = False
    out(ok=first.startswith(b'+') and done, held=held, keepalives=keepalives, done=done)
elif check == 'quiet':
    # A session that sends nothing: the listener's idle timeout must drop it (the control for 'idle').
    s = socket.create_connection((host, args['port']), timeout=args['wait'] + 30)
    greeting = s.recv(1024)
    t = time.monotonic()
    try:
        closed = s.recv(1024) == b''
    except OSError:
        closed = True
    after = round(time.monotonic() - t, 1)
    out(ok=closed and greeting.startswith(b'+OK') and after >= args['wait'] - 2, greeting=greeting.decode(errors='replace').strip()[:60], droppedAfter=after)
elif check == 'cap':
    # Open more sessions than the tenant listener's cap; count greetings and busy replies.
    socks, greetings = [], []
    for _ in range(args['open']):
        s = socket.create_connection((host, args['port']), timeout=10)
        try:
            greetings.append(s.recv(1024).decode(errors='replace').strip())
        except OSError as e:
            greetings.append('error %s' % e)
        socks.append(s)
    served = sum(1 for g in greetings if g.startswith('* OK'))
    busy = sum(1 for g in greetings if g.startswith('* BYE'))
    for s in socks:
        s.close()
    out(ok=served == args['cap'] and busy == args['open'] - args['cap'], served=served, busy=busy, sample=greetings[-1][:80])
elif check == 'count':
    # Messages whose subject contains a marker (search is a substring match), and the mailbox's total.
    m = imaplib.IMAP4(host, args['port'], timeout=20)
    m.starttls(TLS)
    m.login(args['user'], args['password'])
    typ, data = m.select('INBOX')
    typ, found = m.search(None, 'SUBJECT', '"%s"' % args['subject'])
    m.logout()
    out(ok=True, found=len(found[0].split()), messages=int(data[0]))
elif check == 'hold':
    # Logs in n sessions of one user and holds them (a SELECT each: the messages each node sees), writes
    # the ready file, waits for the go file, then tries `extra` more logins (each refused or admitted),
    # optionally frees one session and logs in again (the lease released), and closes everything.
    # `sources`: client addresses taken in turn, login after login (the harness's fabric has several).
    sources = args.get('sources') or [None]
    timeout = args.get('timeout', 20)

    def login(src):
        try:
            m = IMAP(args['port'], timeout, src)
        except (imaplib.IMAP4.error, OSError) as e:
            # HAProxy closes the connection when the server a source sticks to is dead: imaplib raises
            # abort (not an OSError) on the missing greeting. Before, that ended the script without its ready file.
            return None, 'greeting from %s: %s' % (src, e)
        try:
            m.starttls(TLS)
            m.login(args['user'], args['password'])
            typ, data = m.select('INBOX')
            return m, int(data[0])
        except (imaplib.IMAP4.error, OSError) as e:
            try:
                m.shutdown()
            except OSError:
                pass
            return None, '%s (from %s)' % (e, src)

    held, counts, failed = [], [], []
    for i in range(args['n']):
        src = sources[i % len(sources)]
        m, r = login(src)
        if m:
            held.append((m, src))
            counts.append(r)
        else:
            failed.append(r)
    with open(args['ready'], 'w') as f:
        f.write(json.dumps({'held': len(held), 'failed': failed}))
    t = time.monotonic()
    last = time.monotonic()
    while not os.path.exists(args['go']) and time.monotonic() - t < args.get('wait', 300):
        time.sleep(0.2)
        # A NOOP now and then: the NLB stand-in drops a flow idle for the listener's (scaled) timeout.
        if time.monotonic() - last > 5:
            last = time.monotonic()
            for m, _ in held:
                try:
                    m.noop()
                except (imaplib.IMAP4.error, OSError):
                    pass
    refused, admitted = [], 0
    for i in range(args.get('extra', 0)):
        m, r = login(sources[i % len(sources)])
        if m:
            admitted += 1
            m.logout()
        else:
            refused.append(r)
    readmitted = None
    if args.get('readmit') and held:
        m, src = held.pop()
        m.logout()
        time.sleep(0.5)
        m, r = login(src)
        readmitted = True if m else r
        if m:
            m.logout()
    n_held = len(held) + (1 if args.get('readmit') and readmitted is not None else 0)
    # `ends`: how each held session stands now: 'BYE <text>' when the server said goodbye (imaplib keeps
    # the untagged BYE it read before the connection closed), 'closed: <error>' when it just went away,
    # 'open' when a NOOP still answers.
    ends = []
    if args.get('ends'):
        for m, src in held:
            try:
                m.noop()
                end = 'open'
            except (imaplib.IMAP4.error, OSError) as e:
                end = 'closed: %s' % e
            bye = m.untagged_responses.get('BYE')
            if bye:
                end = 'BYE %s' % bye[-1].decode('utf-8', 'replace')
            ends.append({'src': src, 'end': end})
    for m, _ in held:
        try:
            if args.get('drop'):
                m.shutdown()
            else:
                m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    out(ok=not failed, held=n_held, counts=counts, failed=failed, refused=refused, admittedExtra=admitted, readmitted=readmitted, ends=ends)
