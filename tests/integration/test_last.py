"""XEP-0012 last activity: the server's uptime; for a user's bare JID, 0
while a resource is available, else the seconds since the last logout
with the status text of the last unavailable presence, only for the user
and contacts who may see the user's presence; requests to a full JID go
to the client."""

import time

import pytest

from helpers import DOMAIN, NS_CLIENT, NS_DISCO_INFO, error_of, q, tostr
from streams import Session, befriend

NS_LAST = 'jabber:iq:last'

pytestmark = pytest.mark.roost_only


def last(s, to):
    return s.iq(f"<query xmlns='{NS_LAST}'/>", to=to)


def seconds_and_text(r):
    assert r.get('type') == 'result', tostr(r)
    query = r.find(q(NS_LAST, 'query'))
    assert query is not None, tostr(r)
    return int(query.get('seconds')), (query.text or '')


def test_server_uptime(server_factory, user, make_user):
    srv = server_factory('lastuptime')
    u = make_user('u', srv=srv)
    s = Session(srv, u, presence=False)
    first, text = seconds_and_text(last(s, DOMAIN))
    assert 0 <= first < 60 and text == ''
    time.sleep(2.1)
    second, _ = seconds_and_text(last(s, DOMAIN))
    assert second >= first + 2, (first, second)
    r = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_LAST in {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}


def test_contact_online_offline_and_status(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    a, b = Session(server, ua, 'ra'), Session(server, ub, 'rb')
    befriend(a, b)
    # Online: 0, no text.
    assert seconds_and_text(last(b, ua.jid)) == (0, '')
    # Logged out with a status: that text, and the time since.
    a.send("<presence type='unavailable'><status>Heading Home</status></presence>")
    b.wait(lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('type') == 'unavailable')
    a.end()
    time.sleep(1.1)
    secs, text = seconds_and_text(last(b, ua.jid))
    assert text == 'Heading Home' and 1 <= secs < 30, (secs, text)
    # Back online: 0 again.
    a = Session(server, ua, 'ra')
    assert seconds_and_text(last(b, ua.jid)) == (0, '')
    # Gone without a word: the time, no text.
    a.close()
    b.wait(lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('type') == 'unavailable')
    secs, text = seconds_and_text(last(b, ua.jid))
    assert text == '' and 0 <= secs < 5, (secs, text)


def test_other_resource_keeps_user_online(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    a1, b = Session(server, ua, 'one'), Session(server, ub)
    befriend(a1, b)
    a2 = Session(server, ua, 'two')
    a1.send("<presence type='unavailable'><status>one leaves</status></presence>")
    a1.end()
    assert seconds_and_text(last(b, ua.jid)) == (0, '')
    a2.send("<presence type='unavailable'><status>two leaves</status></presence>")
    a2.end()
    assert seconds_and_text(last(b, ua.jid))[1] == 'two leaves'


def test_who_may_ask(server, make_user):
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    a = Session(server, ua)
    b = Session(server, ub)
    c = Session(server, uc)
    # b is subscribed to a ('to' on b's side, 'from' on a's): allowed.
    b.send(f"<presence to='{ua.jid}' type='subscribe'/>")
    a.wait(lambda e: e.get('type') == 'subscribe')
    a.send(f"<presence to='{ub.jid}' type='subscribed'/>")
    b.wait(lambda e: e.get('type') == 'subscribed')
    assert seconds_and_text(last(b, ua.jid)) == (0, '')
    # a is not subscribed to b: a may not ask about b.
    r = last(a, ub.jid)
    assert error_of(r)[:2] == ('auth', 'forbidden'), tostr(r)
    # A stranger may not either.
    r = last(c, ua.jid)
    assert error_of(r)[:2] == ('auth', 'forbidden'), tostr(r)
    # A JID a blocked gets what any blocked request gets (XEP-0191).
    a.iq("<block xmlns='urn:xmpp:blocking'><item jid='%s'/></block>" % ub.jid, type='set')
    r = last(b, ua.jid)
    assert error_of(r)[:2] == ('cancel', 'service-unavailable'), tostr(r)


def test_own_account_and_never_logged_out(server, make_user):
    u = make_user('a')
    s = Session(server, u, 'one', presence=False)
    # Connected but not available, and never logged out before.
    r = last(s, u.jid)
    assert error_of(r)[:2] == ('cancel', 'item-not-found'), tostr(r)
    s2 = Session(server, u, 'two')
    s2.send("<presence type='unavailable'><status>brb</status></presence>")
    s2.end()
    secs, text = seconds_and_text(last(s, u.jid))
    assert text == 'brb' and 0 <= secs < 5


def test_full_jid_goes_to_the_client(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    a, b = Session(server, ua, 'ra'), Session(server, ub)
    befriend(a, b)
    b.send(f"<iq type='get' id='l1' to='{a.full}'><query xmlns='{NS_LAST}'/></iq>")
    got = a.wait(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == 'l1')
    assert got.get('from') == b.full and got.find(q(NS_LAST, 'query')) is not None
    a.send(f"<iq type='result' id='l1' to='{b.full}'>"
           f"<query xmlns='{NS_LAST}' seconds='123'/></iq>")
    r = b.wait(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == 'l1')
    assert seconds_and_text(r) == (123, '')


def test_persists_across_restart(server_factory, make_user):
    srv = server_factory('lastrestart')
    ua, ub = make_user('a', srv=srv), make_user('b', srv=srv)
    a, b = Session(srv, ua), Session(srv, ub)
    befriend(a, b)
    a.send("<presence type='unavailable'><status>see you</status></presence>")
    a.end()
    b.end()
    srv.stop(check=True)
    time.sleep(1.1)
    srv.restart()
    b = Session(srv, ub)
    secs, text = seconds_and_text(last(b, ua.jid))
    assert text == 'see you' and secs >= 1
