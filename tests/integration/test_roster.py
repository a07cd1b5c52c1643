"""Roster management (RFC 6121 §2): get, set, pushes to every interested
resource, remove, versioning (§2.6, XEP-0237) and the error cases of a
roster set."""

import xml.etree.ElementTree as ET

import pytest

from helpers import (DOMAIN, NS_ROSTER, NS_ROSTERVER, error_condition,
                     is_roster_push, q, roster_items)


def item_xml(jid, name=None, groups=(), subscription=None):
    attrs = f" jid='{jid}'"
    if name is not None:
        attrs += f" name='{name}'"
    if subscription is not None:
        attrs += f" subscription='{subscription}'"
    inner = ''.join(f'<group>{g}</group>' for g in groups)
    return f'<item{attrs}>{inner}</item>'


async def roster_get(c, ver=None):
    ver_attr = '' if ver is None else f" ver='{ver}'"
    return await c.iq(f"<query xmlns='{NS_ROSTER}'{ver_attr}/>")


async def roster_set(c, *items):
    return await c.iq(f"<query xmlns='{NS_ROSTER}'>{''.join(items)}</query>", type='set')


def check_push_from(push, user):
    """RFC 6121 2.1.6: a push has no 'from' or the user's bare JID."""
    frm = push.xml.get('from')
    assert frm in (None, '', user.jid), f'roster push from {frm}'


def groups_of(item):
    return sorted(g.text for g in item.findall(q(NS_ROSTER, 'group')))


async def test_roster_get_empty(server, user):
    c = await server.client(user).start(get_roster=False)
    resp = await roster_get(c)
    assert resp['type'] == 'result', str(resp)
    query = resp.xml.find(q(NS_ROSTER, 'query'))
    assert query is not None
    assert roster_items(resp) == {}
    await c.stop()


def test_rosterver_stream_feature(server, user):
    """XEP-0237 / RFC 6121 2.6.1: versioning is announced as a feature."""
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password)[0] == 'success'
        s.open()
        assert s.features.find(q(NS_ROSTERVER, 'ver')) is not None, ET.tostring(s.features)


async def test_roster_set_and_push_to_all_resources(server, make_user):
    user, contact = make_user('own'), make_user('contact')
    a = await server.client(user, 'a').start()
    b = await server.client(user, 'b').start()
    resp = await roster_set(a, item_xml(contact.jid, 'Friend', ['Work', 'Pals']))
    assert resp['type'] == 'result', str(resp)
    assert len(resp.xml) == 0, 'roster set result carries no payload'
    for c in (a, b):
        push = await c.wait(is_roster_push(contact.jid), what='roster push')
        check_push_from(push, user)
        item = roster_items(push)[contact.jid]
        assert item.get('name') == 'Friend'
        assert item.get('subscription') == 'none'
        assert item.get('ask') is None
        assert groups_of(item) == ['Pals', 'Work']
    got = roster_items(await roster_get(a))
    assert set(got) == {contact.jid}
    assert got[contact.jid].get('name') == 'Friend'
    assert groups_of(got[contact.jid]) == ['Pals', 'Work']
    await a.stop()
    await b.stop()


async def test_roster_persists_across_sessions(server, make_user):
    user, contact = make_user('own'), make_user('contact')
    a = await server.client(user, 'a').start()
    assert (await roster_set(a, item_xml(contact.jid, 'Kept')))['type'] == 'result'
    await a.stop()
    b = await server.client(user, 'b').start(get_roster=False)
    got = roster_items(await roster_get(b))
    assert got[contact.jid].get('name') == 'Kept'
    await b.stop()


async def test_roster_update_item(server, make_user):
    user, contact = make_user('own'), make_user('contact')
    a = await server.client(user).start()
    assert (await roster_set(a, item_xml(contact.jid, 'Old', ['G1'])))['type'] == 'result'
    await a.wait(is_roster_push(contact.jid))
    assert (await roster_set(a, item_xml(contact.jid, 'New', ['G2'])))['type'] == 'result'
    push = await a.wait(is_roster_push(contact.jid))
    item = roster_items(push)[contact.jid]
    assert item.get('name') == 'New'
    assert groups_of(item) == ['G2']
    got = roster_items(await roster_get(a))
    assert got[contact.jid].get('name') == 'New'
    assert groups_of(got[contact.jid]) == ['G2']
    await a.stop()


async def test_roster_remove_with_push(server, make_user):
    user, contact = make_user('own'), make_user('contact')
    a = await server.client(user, 'a').start()
    b = await server.client(user, 'b').start()
    assert (await roster_set(a, item_xml(contact.jid, 'Gone soon')))['type'] == 'result'
    for c in (a, b):
        await c.wait(is_roster_push(contact.jid))
    resp = await roster_set(a, item_xml(contact.jid, subscription='remove'))
    assert resp['type'] == 'result', str(resp)
    for c in (a, b):
        push = await c.wait(is_roster_push(contact.jid), what='removal push')
        check_push_from(push, user)
        assert roster_items(push)[contact.jid].get('subscription') == 'remove'
    assert contact.jid not in roster_items(await roster_get(a))
    await a.stop()
    await b.stop()


async def test_roster_remove_unknown_item(server, make_user):
    """RFC 6121 2.5.3: removing an item that is not there: item-not-found."""
    user = make_user('own')
    a = await server.client(user).start()
    resp = await roster_set(a, item_xml(f'never-added@{DOMAIN}', subscription='remove'))
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] == 'item-not-found'
    await a.stop()


async def test_roster_jid_is_normalised(server, make_user):
    user, contact = make_user('own'), make_user('contact')
    a = await server.client(user).start()
    shouted = contact.localpart.upper() + '@' + DOMAIN.upper()
    assert (await roster_set(a, item_xml(shouted, 'Caps')))['type'] == 'result'
    got = roster_items(await roster_get(a))
    assert contact.jid in got, f'roster item not nodeprep/nameprep-ed: {list(got)}'
    await a.stop()


# -- versioning (RFC 6121 2.6 / XEP-0237) -----------------------------------

async def test_roster_versioning(server, make_user):
    user, c1, c2 = make_user('own'), make_user('c'), make_user('c')
    a = await server.client(user).start(get_roster=False)
    resp = await roster_get(a, ver='')
    assert resp['type'] == 'result'
    v0 = resp.xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert v0 is not None, 'versioned roster result without ver'

    assert (await roster_set(a, item_xml(c1.jid, 'One')))['type'] == 'result'
    push1 = await a.wait(is_roster_push(c1.jid))
    v1 = push1.xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert v1 and v1 != v0, 'push must carry a new ver'

    assert (await roster_set(a, item_xml(c2.jid, 'Two')))['type'] == 'result'
    push2 = await a.wait(is_roster_push(c2.jid))
    v2 = push2.xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert v2 and v2 not in (v0, v1)

    # current version: an empty result, no <query/>, no pushes
    resp = await roster_get(a, ver=v2)
    assert resp['type'] == 'result'
    assert resp.xml.find(q(NS_ROSTER, 'query')) is None, \
        f'roster at current version must be an empty IQ result: {resp}'
    await a.expect_none(is_roster_push(), wait=0.5, what='push for a current roster')

    # older version: the whole roster, or an empty result followed by
    # pushes for what changed since
    resp = await roster_get(a, ver=v1)
    assert resp['type'] == 'result'
    query = resp.xml.find(q(NS_ROSTER, 'query'))
    if query is not None:
        assert query.get('ver') == v2
        assert set(roster_items(resp)) == {c1.jid, c2.jid}
    else:
        push = await a.wait(is_roster_push(c2.jid), what='push of the missed change')
        assert push.xml.find(q(NS_ROSTER, 'query')).get('ver') == v2

    # a version the server never issued: the full roster
    resp = await roster_get(a, ver='bogus-version-123')
    query = resp.xml.find(q(NS_ROSTER, 'query'))
    if query is not None:
        assert set(roster_items(resp)) == {c1.jid, c2.jid}
        assert query.get('ver') == v2
    await a.stop()


async def test_roster_version_changes_on_remove(server, make_user):
    user, c1 = make_user('own'), make_user('c')
    a = await server.client(user).start(get_roster=False)
    # the roster get makes this an interested resource (pushes go only there)
    v0 = (await roster_get(a, ver='')).xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert v0 is not None
    assert (await roster_set(a, item_xml(c1.jid)))['type'] == 'result'
    v1 = (await a.wait(is_roster_push(c1.jid))).xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert (await roster_set(a, item_xml(c1.jid, subscription='remove')))['type'] == 'result'
    v2 = (await a.wait(is_roster_push(c1.jid))).xml.find(q(NS_ROSTER, 'query')).get('ver')
    assert v1 and v2 and len({v0, v1, v2}) == 3
    resp = await roster_get(a, ver=v1)
    query = resp.xml.find(q(NS_ROSTER, 'query'))
    if query is not None:
        assert roster_items(resp) == {}
    else:
        push = await a.wait(is_roster_push(c1.jid))
        assert roster_items(push)[c1.jid].get('subscription') == 'remove'
    await a.stop()


# -- invalid roster sets (RFC 6121 2.3.3, 2.1.2.5) ----------------------------

async def test_roster_set_two_items(server, make_user):
    user, c1, c2 = make_user('own'), make_user('c'), make_user('c')
    a = await server.client(user).start()
    resp = await roster_set(a, item_xml(c1.jid), item_xml(c2.jid))
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('modify', 'bad-request')
    assert roster_items(await roster_get(a)) == {}
    await a.stop()


async def test_roster_set_no_item(server, user):
    a = await server.client(user).start()
    resp = await roster_set(a)
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('modify', 'bad-request')
    await a.stop()


async def test_roster_set_duplicate_groups(server, make_user):
    user, c1 = make_user('own'), make_user('c')
    a = await server.client(user).start()
    resp = await roster_set(a, item_xml(c1.jid, 'Dup', ['Same', 'Same']))
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('modify', 'bad-request')
    await a.stop()


async def test_roster_set_empty_group(server, make_user):
    """RFC 6121 2.3.3: a zero-length group is not-acceptable."""
    user, c1 = make_user('own'), make_user('c')
    a = await server.client(user).start()
    resp = await roster_set(a, f"<item jid='{c1.jid}'><group></group></item>")
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('not-acceptable', 'bad-request')
    if server.kind == 'roost':
        assert error_condition(resp) == ('modify', 'not-acceptable')
    await a.stop()


async def test_roster_set_item_without_jid(server, user):
    a = await server.client(user).start()
    resp = await roster_set(a, "<item name='nojid'/>")
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('bad-request', 'jid-malformed')
    await a.stop()


async def test_roster_set_invalid_jid(server, user):
    a = await server.client(user).start()
    resp = await roster_set(a, item_xml('bad@@jid@' + DOMAIN))
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('jid-malformed', 'bad-request')
    await a.stop()


async def test_roster_set_subscription_other_than_remove_is_ignored(server, make_user):
    """RFC 6121 2.1.2.5: in a roster set the server MUST ignore a
    'subscription' value other than "remove": a client cannot grant
    itself a subscription."""
    user, c1 = make_user('own'), make_user('c')
    a = await server.client(user).start()
    resp = await roster_set(a, item_xml(c1.jid, 'Sneaky', subscription='both'))
    if resp['type'] == 'error':
        # refusing outright is the stricter reading
        assert error_condition(resp)[1] == 'bad-request'
        assert c1.jid not in roster_items(await roster_get(a))
    else:
        got = roster_items(await roster_get(a))
        assert got[c1.jid].get('subscription') == 'none'
    await a.stop()


async def test_roster_set_ask_is_ignored(server, make_user):
    user, c1 = make_user('own'), make_user('c')
    a = await server.client(user).start()
    resp = await roster_set(a, f"<item jid='{c1.jid}' ask='subscribe'/>")
    if resp['type'] == 'result':
        got = roster_items(await roster_get(a))
        assert got[c1.jid].get('ask') is None
    else:
        assert error_condition(resp)[1] == 'bad-request'
    await a.stop()


async def test_roster_of_another_user_is_forbidden(server, users):
    a_user, b_user = users
    a = await server.client(a_user).start()
    resp = await a.iq(f"<query xmlns='{NS_ROSTER}'/>", to=b_user.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('forbidden', 'service-unavailable')
    resp = await a.iq(f"<query xmlns='{NS_ROSTER}'>{item_xml(a_user.jid)}</query>",
                      type='set', to=b_user.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('forbidden', 'service-unavailable')
    await a.stop()
