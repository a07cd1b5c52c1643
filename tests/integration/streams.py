"""Raw streams that keep what they read, for tests that must see every
element the server sends: a wait takes the element it is after and leaves
the others (in arrival order) in `backlog`, where a later wait, `take`,
`none` or `drain` finds them, instead of dropping them as RawStream's
waits do. An element that should not be there is seen.

KeptStream is such a stream, not yet logged in; Session is one that logs
in (and, by default, becomes available) when it is made."""

import time
import uuid

from helpers import DOMAIN, NS_CLIENT, NS_PING, WAIT, RawStream, esc, is_presence, q, tostr


class KeptStream(RawStream):
    """RawStream whose waits keep, in `backlog`, every element they pass
    over. Takes RawStream's arguments."""

    def __init__(self, server, **kw):
        super().__init__(server, **kw)
        self.backlog = []
        self.full = None

    # -- reading -------------------------------------------------------------
    def pull(self, deadline):
        """Move parsed elements to the backlog, reading once if there are
        none. Returns False on EOF or at the deadline."""
        if self.elements:
            self.backlog.extend(self.elements)
            self.elements = []
            return True
        if self.eof:
            return False
        try:
            more = self._recv(deadline)
        except TimeoutError:
            return False
        self.backlog.extend(self.elements)
        self.elements = []
        return more

    def _read_until(self, deadline):
        while time.monotonic() < deadline and self.pull(deadline):
            pass

    def _describe(self, elems, n):
        return ' | '.join(tostr(e)[:300] for e in elems[-n:])

    def wait(self, pred, timeout=WAIT, what='element'):
        """The first element, kept or arriving, for which pred holds
        (removed from the backlog)."""
        deadline = time.monotonic() + timeout
        more = True
        while True:
            for i, e in enumerate(self.backlog):
                if pred(e):
                    return self.backlog.pop(i)
            if not more:
                raise AssertionError(
                    f'{self.full or "stream"}: no {what} within {timeout}s '
                    f'(eof={self.eof}); backlog: {self._describe(self.backlog, 8)}')
            more = time.monotonic() < deadline and self.pull(deadline)

    def take(self, pred=None):
        """Remove and return the backlog's elements for which pred holds
        (all of them without pred)."""
        pred = pred or (lambda e: True)
        got = [e for e in self.backlog if pred(e)]
        self.backlog = [e for e in self.backlog if not pred(e)]
        return got

    def none(self, pred, wait=1.0, what='element'):
        """Assert that no element for which pred holds arrives within
        `wait` seconds (or sits in the backlog)."""
        self._read_until(time.monotonic() + wait)
        hits = [e for e in self.backlog if pred(e)]
        assert not hits, f'{self.full or "stream"}: unexpected {what}: {tostr(hits[0])}'

    def collect(self, pred, n, timeout=WAIT, what='messages'):
        """Wait until the backlog holds n elements for which pred holds;
        return them (removed), in arrival order. Fewer than n at the
        timeout or at EOF is an AssertionError naming what did arrive."""
        deadline = time.monotonic() + timeout
        more = True
        while sum(1 for e in self.backlog if pred(e)) < n:
            if not more:
                have = [e for e in self.backlog if pred(e)]
                raise AssertionError(
                    f'expected {n} {what}, got {len(have)} within {timeout}s '
                    f'(eof={self.eof}); last: {self._describe(have, 3)}')
            more = time.monotonic() < deadline and self.pull(deadline)
        got, rest = [], []
        for e in self.backlog:
            (got if len(got) < n and pred(e) else rest).append(e)
        self.backlog = rest
        return got

    def drain(self, seconds):
        """Read for `seconds` (or until EOF); returns and clears the whole
        backlog."""
        self._read_until(time.monotonic() + seconds)
        out, self.backlog = self.backlog, []
        return out

    def read_to_eof(self, timeout=WAIT):
        """Read until the server closes the connection; returns and clears
        the backlog."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() >= deadline:
                raise AssertionError(f'server did not close within {timeout}s')
            self.pull(deadline)
        self.pull(deadline)
        out, self.backlog = self.backlog, []
        return out

    # -- requests ------------------------------------------------------------
    def iq(self, payload, type='get', to=None, iq_id=None, timeout=WAIT):
        """Send an IQ; returns its result or error. What arrives meanwhile
        stays in the backlog."""
        iq_id = iq_id or 'iq-' + uuid.uuid4().hex[:10]
        to_attr = f" to='{to}'" if to else ''
        self.send(f"<iq type='{type}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return self.wait(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iq_id
                         and e.get('type') in ('result', 'error'), timeout,
                         what=f'answer to iq {iq_id}')

    def sync(self, timeout=WAIT):
        """A round trip to the server: everything it sent before is in
        the backlog when this returns."""
        r = self.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN, timeout=timeout)
        assert r.get('type') == 'result', tostr(r)

    def clear(self):
        """Forget everything the server sent so far."""
        self.sync()
        self.backlog = []

    def message(self, to, body, type='chat', id=None, extra=''):
        """Send a chat (or `type`) message; returns its id."""
        id = id or 'm-' + uuid.uuid4().hex[:10]
        self.send(f"<message to='{to}' id='{id}' type='{type}'>"
                  f"<body>{esc(body)}</body>{extra}</message>")
        return id

    def available(self, status=None):
        """Send available presence and wait for its echo (RFC 6121 4.2.2):
        the resource is available when this returns."""
        inner = f'<status>{esc(status)}</status>' if status else ''
        self.send(f'<presence>{inner}</presence>')
        self.wait(is_presence(frm=self.full), what='own presence echoed')

    def end(self, timeout=WAIT):
        """Close the stream and wait until the server closed the
        connection (the session is gone then); returns what arrived
        meanwhile."""
        try:
            self.send('</stream:stream>')
            return self.read_to_eof(timeout)
        except OSError:
            return []
        finally:
            self.close()


class Session(KeptStream):
    """A KeptStream logged in and bound when made: `full` is its JID,
    `bare` the account's. With presence, available (its own presence
    echoed back)."""

    def __init__(self, server, user, resource=None, presence=True, status=None,
                 mechanism='SCRAM-SHA-1', **kw):
        super().__init__(server, **kw)
        self.user = user
        self.bare = user.jid
        self.full = self.login(user, resource=resource, mechanism=mechanism)
        if presence:
            self.available(status)


def befriend(a, b):
    """Mutual presence subscription ('both') between two available
    sessions; returns with each having seen the other's presence and both
    backlogs empty."""
    for x, y in ((a, b), (b, a)):
        x.send(f"<presence to='{y.bare}' type='subscribe'/>")
        y.wait(is_presence(frm=x.bare, type='subscribe'), what='subscribe')
        y.send(f"<presence to='{x.bare}' type='subscribed'/>")
        x.wait(is_presence(frm=y.bare, type='subscribed'), what='subscribed')
        x.wait(is_presence(frm=y.full), what='presence after subscribed')
    a.clear()
    b.clear()
