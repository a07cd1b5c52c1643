"""Raw-stream helpers shared by test_blocking.py, test_last.py and
test_time.py: a logged-in stream that keeps every element it passes over
(so an element that should not be there is seen), and presence
subscriptions between two of them."""

import time
import uuid
import xml.etree.ElementTree as ET

from helpers import NS_CLIENT, NS_STANZAS, WAIT, RawStream, q


def tostr(e):
    return ET.tostring(e, encoding='unicode')


def esc(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;'))


class Stream(RawStream):
    """Logged in and bound; with presence, available (its own presence
    echoed back)."""

    def __init__(self, server, user, resource=None, presence=True, status=None):
        super().__init__(server)
        self.backlog = []
        self.user = user
        self.bare = user.jid
        self.full = self.login(user, resource=resource)
        if presence:
            self.available(status)

    def available(self, status=None):
        inner = f'<status>{esc(status)}</status>' if status else ''
        self.send(f'<presence>{inner}</presence>')
        self.wait(is_presence(frm=self.full), what='own presence echoed')

    def pull(self, deadline):
        if not self.elements:
            try:
                if not self._recv(deadline):
                    return False
            except TimeoutError:
                return False
        self.backlog.extend(self.elements)
        self.elements = []
        return True

    def wait(self, pred, timeout=WAIT, what='element'):
        """The first element (kept or arriving) for which pred holds."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.backlog):
                if pred(e):
                    return self.backlog.pop(i)
            if time.monotonic() >= deadline or not self.pull(deadline):
                raise AssertionError(f'{self.full}: no {what} within {timeout}s; backlog: ' +
                                     ' | '.join(tostr(e)[:300] for e in self.backlog[-6:]))

    def none(self, pred, wait=1.0, what='element'):
        """Assert that no element for which pred holds arrives within
        `wait` seconds (or sits in the backlog)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.pull(deadline)
        hits = [e for e in self.backlog if pred(e)]
        assert not hits, f'{self.full}: unexpected {what}: {tostr(hits[0])}'

    def sync(self):
        """A round trip: everything the server sent before is in."""
        self.iq("<ping xmlns='urn:xmpp:ping'/>")

    def clear(self):
        self.sync()
        self.backlog = []

    def iq(self, payload, type='get', to=None):
        iq_id = 'iq-' + uuid.uuid4().hex[:10]
        to_attr = f" to='{to}'" if to else ''
        self.send(f"<iq type='{type}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return self.wait(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iq_id
                         and e.get('type') in ('result', 'error'),
                         what=f'answer to iq {iq_id}')

    def logout(self):
        """Close the stream and wait until the server closed it: the
        session is gone when this returns."""
        self.send('</stream:stream>')
        self.wait_closed()
        self.close()

    def message(self, to, body, type='chat', id=None):
        id_attr = f" id='{id}'" if id else ''
        self.send(f"<message to='{to}' type='{type}'{id_attr}><body>{esc(body)}</body></message>")


def is_presence(frm=None, type=None, to=None):
    def pred(e):
        if e.tag != q(NS_CLIENT, 'presence') or e.get('type') != type:
            return False
        if frm is not None and not jid_match(e.get('from'), frm):
            return False
        return to is None or jid_match(e.get('to'), to)
    return pred


def is_message(frm=None, body=None, type=None):
    def pred(e):
        if e.tag != q(NS_CLIENT, 'message'):
            return False
        if type is not None and (e.get('type') or 'normal') != type:
            return False
        if frm is not None and not jid_match(e.get('from'), frm):
            return False
        return body is None or e.findtext(q(NS_CLIENT, 'body')) == body
    return pred


def jid_match(actual, expected):
    """A full expected JID matches exactly, a bare one any resource."""
    if actual is None:
        return False
    if '/' in expected:
        return actual == expected
    return actual.split('/', 1)[0] == expected


def error_of(e):
    """(type, condition, [other children of <error/>]) of an error stanza."""
    err = e.find(q(NS_CLIENT, 'error'))
    assert err is not None, f'no <error/> in {tostr(e)}'
    conds = [c.tag.split('}', 1)[1] for c in err
             if c.tag.startswith('{' + NS_STANZAS + '}') and not c.tag.endswith('}text')]
    others = [c.tag for c in err if not c.tag.startswith('{' + NS_STANZAS + '}')]
    return err.get('type'), (conds[0] if len(conds) == 1 else conds), others


def befriend(a, b):
    """Mutual presence subscription ('both') between two available
    streams; returns with each having seen the other's presence and both
    backlogs empty."""
    for x, y in ((a, b), (b, a)):
        x.send(f"<presence to='{y.bare}' type='subscribe'/>")
        y.wait(is_presence(frm=x.bare, type='subscribe'), what='subscribe')
        y.send(f"<presence to='{x.bare}' type='subscribed'/>")
        x.wait(is_presence(frm=y.bare, type='subscribed'), what='subscribed')
        x.wait(is_presence(frm=y.full), what='presence after subscribed')
    a.clear()
    b.clear()
