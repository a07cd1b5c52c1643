"""XEP-0054 vcard-temp: one's own vCard (empty when none), setting it and
reading it back exactly, other users reading it (service-unavailable when
there is none, the same as for an unknown user), the errors (another
user's vCard, the server's), the size limit, removal, ordering of
pipelined requests, and persistence across a restart."""

import uuid
import xml.etree.ElementTree as ET

from conftest import add_user
from helpers import DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_VCARD, error_condition, q
from test_session import features


def marker():
    return 'v-' + uuid.uuid4().hex[:10]


def vcard_of(resp):
    assert resp['type'] == 'result', str(resp)
    v = resp.xml.find(q(NS_VCARD, 'vCard'))
    assert v is not None, str(resp)
    return v


def text_at(v, path):
    el = v.find('/'.join(q(NS_VCARD, p) for p in path.split('/')))
    return None if el is None else el.text


async def get_vcard(c, to=None):
    return await c.iq(f"<vCard xmlns='{NS_VCARD}'/>", to=to)


async def set_vcard(c, inner, to=None):
    return await c.iq(f"<vCard xmlns='{NS_VCARD}'>{inner}</vCard>", type='set', to=to)


def sample(fn):
    return (f"<FN>{fn}</FN><N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN><MIDDLE/></N>"
            "<NICKNAME>stpeter</NICKNAME><TEL><WORK/><VOICE/><NUMBER>303-308-3282</NUMBER></TEL>"
            "<EMAIL><INTERNET/><PREF/><USERID>stpeter@jabber.org</USERID></EMAIL>"
            "<DESC>a &lt;b&gt; &amp; c</DESC>")


def check_sample(v, fn):
    assert text_at(v, 'FN') == fn
    assert text_at(v, 'N/FAMILY') == 'Saint-Andre'
    assert text_at(v, 'N/GIVEN') == 'Peter'
    assert v.find(f"{q(NS_VCARD, 'N')}/{q(NS_VCARD, 'MIDDLE')}") is not None
    assert text_at(v, 'TEL/NUMBER') == '303-308-3282'
    assert v.find(f"{q(NS_VCARD, 'TEL')}/{q(NS_VCARD, 'WORK')}") is not None
    assert text_at(v, 'EMAIL/USERID') == 'stpeter@jabber.org'
    assert text_at(v, 'DESC') == 'a <b> & c'
    assert [c.tag.split('}')[1] for c in v] == ['FN', 'N', 'NICKNAME', 'TEL', 'EMAIL', 'DESC']


# ---------------------------------------------------------------------------

async def test_server_advertises_vcard_temp(server, user):
    c = await server.client(user, 'disco').start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_VCARD in features(resp)
    await c.stop()


async def test_own_vcard_empty_when_none(server, user):
    c = await server.client(user, 'a').start()
    for to in (None, user.jid):
        v = vcard_of(await get_vcard(c, to=to))
        assert list(v) == [] and not (v.text or '').strip(), ET.tostring(v)
    await c.stop()


async def test_set_and_get_own(server, user):
    c = await server.client(user, 'a').start()
    fn = marker()
    resp = await set_vcard(c, sample(fn))
    assert resp['type'] == 'result' and list(resp.xml) == [], str(resp)
    check_sample(vcard_of(await get_vcard(c)), fn)
    check_sample(vcard_of(await get_vcard(c, to=user.jid)), fn)
    # A set replaces the whole vCard (§3.2: no partial updates).
    await set_vcard(c, '<NICKNAME>only</NICKNAME>')
    v = vcard_of(await get_vcard(c))
    assert [x.tag for x in v] == [q(NS_VCARD, 'NICKNAME')] and v[0].text == 'only'
    await c.stop()


async def test_other_user_reads_vcard(server, users):
    owner, other = users
    a = await server.client(owner, 'a').start()
    b = await server.client(other, 'b').start()
    fn = marker()
    assert (await set_vcard(a, sample(fn)))['type'] == 'result'
    resp = await get_vcard(b, to=owner.jid)
    assert resp['from'].full == owner.jid, 'answered by the server for the bare JID'
    check_sample(vcard_of(resp), fn)
    # Also when the owner is offline.
    await a.stop()
    check_sample(vcard_of(await get_vcard(b, to=owner.jid)), fn)
    await b.stop()


async def test_no_vcard_and_unknown_user_same_error(server, users):
    owner, other = users
    b = await server.client(other, 'b').start()
    resp = await get_vcard(b, to=owner.jid)
    assert error_condition(resp) == ('cancel', 'service-unavailable'), str(resp)
    resp = await get_vcard(b, to=f'nobody-{marker()}@{DOMAIN}')
    assert error_condition(resp) == ('cancel', 'service-unavailable'), str(resp)
    await b.stop()


async def test_cannot_set_another_users_vcard(server, users):
    owner, other = users
    a = await server.client(owner, 'a').start()
    b = await server.client(other, 'b').start()
    fn = marker()
    await set_vcard(a, f'<FN>{fn}</FN>')
    resp = await set_vcard(b, '<FN>hijacked</FN>', to=owner.jid)
    assert error_condition(resp) == ('auth', 'forbidden'), str(resp)
    assert text_at(vcard_of(await get_vcard(a)), 'FN') == fn
    # ...nor the server's.
    resp = await set_vcard(b, '<FN>server</FN>', to=DOMAIN)
    assert error_condition(resp) == ('auth', 'forbidden'), str(resp)
    await a.stop()
    await b.stop()


async def test_server_has_no_vcard(server, user):
    c = await server.client(user, 'a').start()
    resp = await get_vcard(c, to=DOMAIN)
    assert error_condition(resp) == ('cancel', 'item-not-found'), str(resp)
    await c.stop()


async def test_empty_set_removes_vcard(server, users):
    owner, other = users
    a = await server.client(owner, 'a').start()
    b = await server.client(other, 'b').start()
    await set_vcard(a, '<FN>x</FN>')
    assert (await set_vcard(a, ''))['type'] == 'result'
    assert list(vcard_of(await get_vcard(a))) == []
    assert error_condition(await get_vcard(b, to=owner.jid)) == ('cancel', 'service-unavailable')
    await a.stop()
    await b.stop()


async def test_size_limit(make_server):
    srv = make_server('vclimit', sections={'storage': {'vcard_max_size': '2048'}})
    user = add_user(srv)
    c = await srv.client(user, 'a').start()
    assert (await set_vcard(c, f"<DESC>{'d' * 1900}</DESC>"))['type'] == 'result'
    resp = await set_vcard(c, f"<FN>big</FN><DESC>{'d' * 2100}</DESC>")
    assert error_condition(resp) == ('modify', 'not-acceptable'), str(resp)
    # The refused vCard left the stored one alone.
    v = vcard_of(await get_vcard(c))
    assert text_at(v, 'FN') is None and text_at(v, 'DESC') == 'd' * 1900
    await c.stop()


async def test_pipelined_requests_in_order(server, users):
    """set v1, get, set v2, get (from the owner) and a get from another
    user, all sent at once: each get sees exactly the sets before it."""
    owner, other = users
    b = await server.client(other, 'b').start()
    with server.raw() as r:
        r.login(owner, 'raw')
        r.send(f"<iq type='set' id='s1'><vCard xmlns='{NS_VCARD}'><FN>one</FN></vCard></iq>"
               f"<iq type='get' id='g1'><vCard xmlns='{NS_VCARD}'/></iq>"
               f"<iq type='set' id='s2'><vCard xmlns='{NS_VCARD}'><FN>two</FN></vCard></iq>"
               f"<iq type='get' id='g2'><vCard xmlns='{NS_VCARD}'/></iq>")
        got = {}
        while len(got) < 4:
            e = r.wait_for(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') in ('s1', 'g1', 's2', 'g2'))
            got[e.get('id')] = e
        assert got['s1'].get('type') == 'result' and got['s2'].get('type') == 'result'
        fn = lambda e: e.find(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'FN')}").text
        assert fn(got['g1']) == 'one'
        assert fn(got['g2']) == 'two'
    assert text_at(vcard_of(await get_vcard(b, to=owner.jid)), 'FN') == 'two'
    await b.stop()


async def test_persists_across_restart(make_server):
    srv = make_server('vcrestart')
    user = add_user(srv)
    fn = marker()
    c = await srv.client(user, 'a').start()
    assert (await set_vcard(c, sample(fn)))['type'] == 'result'
    await c.stop()
    srv.stop(check=True)
    srv.restart()
    other = add_user(srv)
    c = await srv.client(other, 'a').start()
    check_sample(vcard_of(await get_vcard(c, to=user.jid)), fn)
    await c.stop()


async def test_wrong_element_name_is_not_a_vcard(server, user):
    """Element names are case-sensitive (§8): <vcard/> is not <vCard/>."""
    c = await server.client(user, 'a').start()
    resp = await c.iq(f"<vcard xmlns='{NS_VCARD}'/>")
    assert error_condition(resp) == ('cancel', 'service-unavailable'), str(resp)
    await c.stop()


async def test_photo_that_does_not_decode_is_kept_verbatim(server, user):
    """A PHOTO whose BINVAL is not base64 (or that only has an EXTVAL) is
    the user's data: stored and returned as sent; it just has no image."""
    c = await server.client(user, 'a').start()
    inner = ("<PHOTO><TYPE>image/png</TYPE><BINVAL>not*base64!</BINVAL></PHOTO>"
             "<PHOTO><EXTVAL>https://example.org/me.png</EXTVAL></PHOTO>")
    assert (await set_vcard(c, inner))['type'] == 'result'
    v = vcard_of(await get_vcard(c))
    photos = v.findall(q(NS_VCARD, 'PHOTO'))
    assert len(photos) == 2
    assert photos[0].find(q(NS_VCARD, 'BINVAL')).text == 'not*base64!'
    assert photos[1].find(q(NS_VCARD, 'EXTVAL')).text == 'https://example.org/me.png'
    await c.stop()
