"""XEP-0313 requests on a KeptStream (see streams.py), for test_mam.py and
the tests that look into the archive (test_blocking.py,
test_register.py): a query whose results are taken out of the backlog,
and preferences (XEP-0441)."""

import uuid

from helpers import NS_CLIENT, NS_FORWARD, NS_MAM, esc, form, q, tostr

NS_RSM = 'http://jabber.org/protocol/rsm'


def is_result(e, queryid=None):
    """A <message/> carrying an archive result (of query `queryid`)."""
    if e.tag != q(NS_CLIENT, 'message'):
        return False
    r = e.find(q(NS_MAM, 'result'))
    return r is not None and (queryid is None or r.get('queryid') == queryid)


def forwarded(e):
    """The archived message inside a result."""
    return e.find(f"{q(NS_MAM, 'result')}/{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")


def result_body(e):
    return forwarded(e).findtext(q(NS_CLIENT, 'body'))


def mam_query(s, fields=None, rsm=None, queryid=None, extra=''):
    """One query: (its results in arrival order, the final iq). fields:
    {var: value or [values]} of the search form; rsm: {element: text}
    ('' for an empty element) of the result set."""
    queryid = queryid or uuid.uuid4().hex[:8]
    x = form(NS_MAM, fields) if fields else ''
    rset = ''
    if rsm is not None:
        parts = [f'<{k}/>' if v == '' else f'<{k}>{esc(str(v))}</{k}>' for k, v in rsm.items()]
        rset = f"<set xmlns='{NS_RSM}'>{''.join(parts)}</set>"
    iq = s.iq(f"<query xmlns='{NS_MAM}' queryid='{queryid}'>{x}{rset}{extra}</query>",
              type='set')
    return s.take(lambda e: is_result(e, queryid)), iq


def archived_bodies(s, with_jid=None):
    """Bodies of the archive's messages (with `with_jid`), oldest first."""
    results, iq = mam_query(s, {'with': with_jid} if with_jid else None)
    assert iq.get('type') == 'result', tostr(iq)
    return [result_body(e) for e in results]


def set_prefs(s, default='always', always=(), never=()):
    """Sets the archiving preferences; returns the result."""
    a = ''.join(f'<jid>{j}</jid>' for j in always)
    n = ''.join(f'<jid>{j}</jid>' for j in never)
    r = s.iq(f"<prefs xmlns='{NS_MAM}' default='{default}'><always>{a}</always>"
             f"<never>{n}</never></prefs>", type='set')
    assert r.get('type') == 'result', tostr(r)
    return r
