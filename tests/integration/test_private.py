"""XEP-0049 private XML storage: round trips of exact content, what a get
of nothing answers, removal, the errors of §2.3 (another user's data,
no child, several children, reserved namespaces), the per-account size
limit (single elements, the sum, replacement, pipelined writes that must
not all pass one check), persistence across a restart, and XEP-0048
bookmarks stored through jabber:iq:private (answered by mod_bookmarks
from its XEP-0402 items)."""

import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import add_user
from helpers import (DOMAIN, NS_BOOKMARKS, NS_BOOKMARKS2, NS_CLIENT, NS_DISCO_INFO,
                     NS_PRIVATE, error_condition, q)
from test_session import features


def marker():
    return 'p-' + uuid.uuid4().hex[:10]


def query(resp):
    return resp.xml.find(q(NS_PRIVATE, 'query'))


async def private_set(c, payload, to=None):
    return await c.iq(f"<query xmlns='{NS_PRIVATE}'>{payload}</query>", type='set', to=to)


async def private_get(c, payload, to=None):
    return await c.iq(f"<query xmlns='{NS_PRIVATE}'>{payload}</query>", to=to)


def only_child(resp):
    """The single element inside the result's <query/>."""
    assert resp['type'] == 'result', str(resp)
    qry = query(resp)
    assert qry is not None, str(resp)
    children = list(qry)
    assert len(children) == 1, str(resp)
    return children[0]


# ---------------------------------------------------------------------------
# discovery and round trips

async def test_server_advertises_private(server, user):
    c = await server.client(user, 'disco').start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_PRIVATE in features(resp)
    await c.stop()


async def test_set_then_get_returns_exact_element(server, user):
    c = await server.client(user, 'a').start()
    m = marker()
    resp = await private_set(
        c, f"<exodus xmlns='exodus:prefs' v='2'><defaultnick>{m}</defaultnick>"
           f"<x xmlns='urn:other'><y a='1'>t&amp;u</y></x></exodus>")
    assert resp['type'] == 'result', str(resp)
    assert list(resp.xml) == [], 'a set result carries no payload'

    got = only_child(await private_get(c, "<exodus xmlns='exodus:prefs'/>"))
    assert got.tag == q('exodus:prefs', 'exodus')
    assert got.get('v') == '2'
    assert got.find(q('exodus:prefs', 'defaultnick')).text == m
    y = got.find(f"{q('urn:other', 'x')}/{q('urn:other', 'y')}")
    assert y is not None and y.get('a') == '1' and y.text == 't&u', ET.tostring(got)
    await c.stop()


async def test_get_with_own_bare_jid_as_to(server, user):
    c = await server.client(user, 'a').start()
    m = marker()
    await private_set(c, f"<n xmlns='urn:test:p'>{m}</n>", to=user.jid)
    got = only_child(await private_get(c, "<n xmlns='urn:test:p'/>", to=user.jid))
    assert got.text == m
    await c.stop()


async def test_get_of_nothing_returns_the_empty_element(server, user):
    c = await server.client(user, 'a').start()
    got = only_child(await private_get(c, "<nothing xmlns='urn:test:none'/>"))
    assert got.tag == q('urn:test:none', 'nothing')
    assert list(got) == [] and not (got.text or '').strip() and not got.attrib
    await c.stop()


async def test_items_are_per_namespace_and_name(server, user):
    c = await server.client(user, 'a').start()
    await private_set(c, "<a xmlns='urn:test:k'>one</a>")
    await private_set(c, "<b xmlns='urn:test:k'>two</b>")
    await private_set(c, "<a xmlns='urn:test:k2'>three</a>")
    assert only_child(await private_get(c, "<a xmlns='urn:test:k'/>")).text == 'one'
    assert only_child(await private_get(c, "<b xmlns='urn:test:k'/>")).text == 'two'
    assert only_child(await private_get(c, "<a xmlns='urn:test:k2'/>")).text == 'three'
    await c.stop()


async def test_replace_and_remove(server, user):
    c = await server.client(user, 'a').start()
    await private_set(c, "<r xmlns='urn:test:r'>old</r>")
    await private_set(c, "<r xmlns='urn:test:r'>new</r>")
    assert only_child(await private_get(c, "<r xmlns='urn:test:r'/>")).text == 'new'
    # An empty element removes the item.
    resp = await private_set(c, "<r xmlns='urn:test:r'/>")
    assert resp['type'] == 'result', str(resp)
    got = only_child(await private_get(c, "<r xmlns='urn:test:r'/>"))
    assert got.text is None and list(got) == []
    await c.stop()


async def test_other_resource_reads_what_one_wrote(server, user):
    a = await server.client(user, 'one').start()
    b = await server.client(user, 'two').start()
    m = marker()
    await private_set(a, f"<s xmlns='urn:test:s'>{m}</s>")
    assert only_child(await private_get(b, "<s xmlns='urn:test:s'/>")).text == m
    await a.stop()
    await b.stop()


# ---------------------------------------------------------------------------
# errors (§2.3, §3)

async def test_other_user_cannot_read_or_write(server, users):
    owner, other = users
    a = await server.client(owner, 'a').start()
    b = await server.client(other, 'b').start()
    secret = marker()
    await private_set(a, f"<secret xmlns='urn:test:secret'>{secret}</secret>")

    resp = await private_get(b, "<secret xmlns='urn:test:secret'/>", to=owner.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('auth', 'forbidden')
    assert secret not in str(resp)
    assert resp['from'].bare == owner.jid

    resp = await private_set(b, "<secret xmlns='urn:test:secret'>overwritten</secret>",
                             to=owner.jid)
    assert error_condition(resp) == ('auth', 'forbidden')
    # The owner's data is untouched, and the other user's own storage
    # is a different one.
    assert only_child(await private_get(a, "<secret xmlns='urn:test:secret'/>")).text == secret
    got = only_child(await private_get(b, "<secret xmlns='urn:test:secret'/>"))
    assert got.text is None
    await a.stop()
    await b.stop()


async def test_to_a_full_jid_is_not_answered_as_private(server, users):
    """An IQ to another user's full JID goes to that client, never to the
    owner's storage: unavailable resource -> service-unavailable."""
    owner, other = users
    b = await server.client(other, 'b').start()
    resp = await private_get(b, "<x xmlns='urn:test:x'/>", to=owner.jid + '/nowhere')
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] == 'service-unavailable'
    await b.stop()


async def test_empty_query_is_not_acceptable(server, user):
    c = await server.client(user, 'a').start()
    for t in ('get', 'set'):
        resp = await c.iq(f"<query xmlns='{NS_PRIVATE}'/>", type=t)
        assert error_condition(resp) == ('modify', 'not-acceptable'), (t, str(resp))
    await c.stop()


async def test_two_children_is_bad_request(server, user):
    c = await server.client(user, 'a').start()
    for t in ('get', 'set'):
        resp = await c.iq(f"<query xmlns='{NS_PRIVATE}'><a xmlns='urn:t:a'>1</a>"
                          f"<b xmlns='urn:t:b'>2</b></query>", type=t)
        assert error_condition(resp) == ('modify', 'bad-request'), (t, str(resp))
    # Nothing of the refused set was stored.
    got = only_child(await private_get(c, "<a xmlns='urn:t:a'/>"))
    assert got.text is None
    await c.stop()


@pytest.mark.parametrize('ns', ['jabber:iq:roster', 'jabber:client', 'vcard-temp',
                                'http://jabber.org/protocol/disco#info', NS_PRIVATE])
async def test_reserved_namespaces_not_acceptable(server, user, ns):
    c = await server.client(user, 'a').start()
    resp = await private_set(c, f"<x xmlns='{ns}'>data</x>")
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)
    resp = await private_get(c, f"<x xmlns='{ns}'/>")
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)
    await c.stop()


async def test_child_without_namespace_is_not_acceptable(server, user):
    """A child without its own namespace is in jabber:iq:private itself."""
    c = await server.client(user, 'a').start()
    resp = await c.iq(f"<query xmlns='{NS_PRIVATE}'><prefs>x</prefs></query>", type='set')
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)
    await c.stop()


# ---------------------------------------------------------------------------
# limits

def blob(n):
    return 'z' * n


async def test_size_limit(make_server):
    srv = make_server('privlimit', sections={'storage': {'private_max_size': '2048'}})
    user = add_user(srv)
    c = await srv.client(user, 'a').start()

    # One element over the limit on its own.
    resp = await private_set(c, f"<big xmlns='urn:t:big'>{blob(2100)}</big>")
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)
    assert only_child(await private_get(c, "<big xmlns='urn:t:big'/>")).text is None

    # Two of 900 fit, a third does not: the limit is the account's sum.
    for name in ('one', 'two'):
        resp = await private_set(c, f"<{name} xmlns='urn:t:l'>{blob(900)}</{name}>")
        assert resp['type'] == 'result', str(resp)
    resp = await private_set(c, f"<three xmlns='urn:t:l'>{blob(900)}</three>")
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)

    # Replacing an item counts only its new size.
    for _ in range(3):
        resp = await private_set(c, f"<one xmlns='urn:t:l'>{blob(950)}</one>")
        assert resp['type'] == 'result', str(resp)

    # Removing one makes room again.
    resp = await private_set(c, "<two xmlns='urn:t:l'/>")
    assert resp['type'] == 'result', str(resp)
    resp = await private_set(c, f"<three xmlns='urn:t:l'>{blob(900)}</three>")
    assert resp['type'] == 'result', str(resp)
    assert only_child(await private_get(c, "<three xmlns='urn:t:l'/>")).text == blob(900)
    await c.stop()


async def test_pipelined_writes_cannot_all_pass_the_limit(make_server):
    """Six writes of ~600 bytes sent at once, limit 2048: the limit holds
    for the sum however the writes overlap, and what was accepted is
    exactly what is stored. Also on a fresh login (sizes not yet read)."""
    srv = make_server('privpipe', sections={'storage': {'private_max_size': '2048'}})
    user = add_user(srv)
    with srv.raw() as r:
        r.login(user, 'raw')
        for i in range(6):
            r.send(f"<iq type='set' id='w{i}'><query xmlns='{NS_PRIVATE}'>"
                   f"<i{i} xmlns='urn:t:pipe'>{blob(600)}</i{i}></query></iq>")
        answers = {}
        while len(answers) < 6:
            e = r.wait_for(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id', '').startswith('w'))
            answers[e.get('id')] = e.get('type')
        ok = [i for i in range(6) if answers[f'w{i}'] == 'result']
        # ~650 bytes serialized each: three fit in 2048, a fourth does not;
        # they are decided in order.
        assert ok == [0, 1, 2], answers
        for i in range(6):
            e = r.iq(f"<query xmlns='{NS_PRIVATE}'><i{i} xmlns='urn:t:pipe'/></query>")
            el = e.find(f"{q(NS_PRIVATE, 'query')}/{q('urn:t:pipe', f'i{i}')}")
            assert el is not None, ET.tostring(e)
            assert (el.text == blob(600)) == (i in ok), (i, ET.tostring(e)[:200])


async def test_persists_across_restart(make_server):
    srv = make_server('privrestart')
    user = add_user(srv)
    m = marker()
    c = await srv.client(user, 'a').start()
    resp = await private_set(c, f"<keep xmlns='urn:t:keep'><v>{m}</v></keep>")
    assert resp['type'] == 'result'
    await c.stop()
    srv.stop(check=True)
    srv.restart()
    c = await srv.client(user, 'a').start()
    got = only_child(await private_get(c, "<keep xmlns='urn:t:keep'/>"))
    assert got.find(q('urn:t:keep', 'v')).text == m
    await c.stop()


# ---------------------------------------------------------------------------
# XEP-0048 bookmarks through private XML (XEP-0402 §3 compat): answered by
# mod_bookmarks from its PEP items, so these need mod_bookmarks.c and
# mod_pep.c in the build.

async def test_bookmarks_through_private_storage(server, user):
    c = await server.client(user, 'a').start()
    room = f'room-{marker()}@conference.{DOMAIN}'
    resp = await private_set(
        c, f"<storage xmlns='{NS_BOOKMARKS}'><conference jid='{room}' name='R' "
           f"autojoin='true'><nick>me</nick></conference></storage>")
    assert resp['type'] == 'result', str(resp)
    got = only_child(await private_get(c, f"<storage xmlns='{NS_BOOKMARKS}'/>"))
    assert got.tag == q(NS_BOOKMARKS, 'storage')
    confs = got.findall(q(NS_BOOKMARKS, 'conference'))
    assert [x.get('jid') for x in confs] == [room], ET.tostring(got)
    assert confs[0].get('autojoin') in ('true', '1')
    assert confs[0].find(q(NS_BOOKMARKS, 'nick')).text == 'me'
    # The same bookmark is a XEP-0402 item.
    resp = await c.iq("<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                      f"<items node='{NS_BOOKMARKS2}'/></pubsub>")
    assert resp['type'] == 'result', str(resp)
    assert room in [i.get('id') for i in resp.xml.iter(q('http://jabber.org/protocol/pubsub', 'item'))]
    await c.stop()


async def test_bookmarks_of_another_user_forbidden(server, users):
    owner, other = users
    b = await server.client(other, 'b').start()
    resp = await private_get(b, f"<storage xmlns='{NS_BOOKMARKS}'/>", to=owner.jid)
    assert error_condition(resp) == ('auth', 'forbidden'), str(resp)
    await b.stop()
