"""XEP-0153 vCard-based avatars kept by the server (XEP-0398 §4) and
XEP-0398 conversion between the vCard PHOTO and XEP-0084 PEP avatars.

Presence: the hash of the stored vCard's image is in every available
presence (broadcast and directed), replacing a stale one and filling an
empty <x/>, while an empty <photo/> is left alone; it is there after a
restart, in the very first presence after a login; a new image makes the
online resources' presence go out again.

Conversion (needs mod_pep): a vCard image is published to
urn:xmpp:avatar:data and :metadata; a XEP-0084 publish becomes the
vCard's PHOTO (and the presence hash) when the data node is open, and
leaves the vCard alone when it is not (XEP-0398 §6); an empty
<metadata/> removes it; data that does not match its id is not copied."""

import asyncio
import base64
import hashlib
import struct
import zlib

import pytest

from conftest import add_user
from helpers import DOMAIN, NS_CLIENT, NS_DISCO_INFO, error_condition, is_presence, q
from test_presence import mutual, send_presence
from test_session import features

NS_VCARD = 'vcard-temp'
NS_UPDATE = 'vcard-temp:x:update'
NS_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_DATA = 'urn:xmpp:avatar:data'
NS_META = 'urn:xmpp:avatar:metadata'


def png(rgb):
    """A valid 1x1 PNG of one colour: distinct colours, distinct images."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    raw = b'\x00' + bytes(rgb)
    return (b'\x89PNG\r\n\x1a\n'
            + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw))
            + chunk(b'IEND', b''))


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def b64_lines(data):
    """Base64 in 76-character lines, as many clients write BINVAL."""
    s = base64.b64encode(data).decode()
    return '\n'.join(s[i:i + 76] for i in range(0, len(s), 76))


async def set_photo(c, image, type_='image/png', extra='<FN>someone</FN>'):
    photo = ''
    if image is not None:
        photo = f'<PHOTO><TYPE>{type_}</TYPE><BINVAL>{b64_lines(image)}</BINVAL></PHOTO>'
    resp = await c.iq(f"<vCard xmlns='{NS_VCARD}'>{extra}{photo}</vCard>", type='set')
    assert resp['type'] == 'result', str(resp)


def photo_of(st):
    """The <photo/> text of a presence: None if there is no <x/> or no
    <photo/>, '' for an empty one."""
    x = st.xml.find(q(NS_UPDATE, 'x'))
    if x is None:
        return None
    p = x.find(q(NS_UPDATE, 'photo'))
    if p is None:
        return None
    return p.text or ''


def presence_with_photo(frm, photo):
    def pred(st):
        return is_presence(frm=frm)(st) and photo_of(st) == photo
    return pred


def new_user(srv, prefix='av'):
    return add_user(srv, prefix)


# ---------------------------------------------------------------------------
# discovery

async def test_account_advertises_conversion(server, user):
    c = await server.client(user, 'a').start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=user.jid)
    assert NS_CONVERSION in features(resp), str(resp)
    await c.stop()


# ---------------------------------------------------------------------------
# XEP-0153 hash in presence

async def test_hash_added_and_updated_for_contacts(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    img = png((200, 10, 10))
    await set_photo(a, img)
    # The image changed: A's presence goes out again with its hash, to
    # contacts and to A's own resource, without A sending anything.
    got = await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)), what='presence with hash')
    assert got.xml.find(q(NS_UPDATE, 'x')).findall(q(NS_UPDATE, 'photo'))[0].text == sha1(img)
    await a.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)), what='own presence with hash')

    # A presence without <x/> gets it.
    b.clear()
    send_presence(a, status='plain')
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)), what='hash added')

    # A new image: a new hash.
    img2 = png((10, 200, 10))
    b.clear()
    await set_photo(a, img2)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img2)), what='new hash')

    # No image any more: an empty <photo/>.
    b.clear()
    await set_photo(a, None)
    await b.wait(presence_with_photo(f'{ua.jid}/a', ''), what='empty photo')
    await a.stop()
    await b.stop()


async def test_same_image_sends_no_extra_presence(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    img = png((1, 2, 3))
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)))
    b.clear()
    # Another field changes, the image does not.
    await set_photo(a, img, extra='<FN>renamed</FN>')
    await b.expect_none(is_presence(frm=ua.jid), wait=0.7, what='presence for an unchanged image')
    await a.stop()
    await b.stop()


async def test_client_x_elements(server, users):
    """XEP-0398 §4: an empty <x/> is filled, a stale hash replaced, an
    empty <photo/> left alone, the right hash (any case) left alone."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    img = png((9, 9, 9))
    h = sha1(img)
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', h))

    cases = [
        (f"<x xmlns='{NS_UPDATE}'/>", h),
        (f"<x xmlns='{NS_UPDATE}'><photo>{'0' * 40}</photo></x>", h),
        (f"<x xmlns='{NS_UPDATE}'><photo/></x>", ''),
        (f"<x xmlns='{NS_UPDATE}'><photo>{h.upper()}</photo></x>", h.upper()),
    ]
    for i, (x, want) in enumerate(cases):
        b.clear()
        a.raw(f'<presence><status>case{i}</status>{x}</presence>')
        got = await b.wait(lambda st: is_presence(frm=ua.jid)(st) and f'case{i}' in str(st),
                           what=f'case {i}')
        assert photo_of(got) == want, (i, str(got))
        xs = got.xml.findall(q(NS_UPDATE, 'x'))
        assert len(xs) == 1 and len(xs[0].findall(q(NS_UPDATE, 'photo'))) == 1, str(got)
    await a.stop()
    await b.stop()


async def test_no_vcard_means_empty_photo(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    send_presence(a, status='hello')
    got = await b.wait(lambda st: is_presence(frm=ua.jid)(st) and 'hello' in str(st))
    assert photo_of(got) == '', str(got)
    await a.stop()
    await b.stop()


async def test_undecodable_photo_counts_as_none(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    img = png((4, 5, 6))
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)))
    resp = await a.iq(f"<vCard xmlns='{NS_VCARD}'><PHOTO><TYPE>image/png</TYPE>"
                      f"<BINVAL>%%%notbase64</BINVAL></PHOTO></vCard>", type='set')
    assert resp['type'] == 'result', str(resp)
    await b.wait(presence_with_photo(f'{ua.jid}/a', ''), what='empty photo')
    await a.stop()
    await b.stop()


async def test_directed_presence_carries_hash(server, users):
    ua, uc = users
    a = await server.client(ua, 'a').start()
    c = await server.client(uc, 'c').start()
    img = png((50, 60, 70))
    await set_photo(a, img)
    send_presence(a, to=f'{uc.jid}/c', status='directed')
    got = await c.wait(lambda st: is_presence(frm=ua.jid)(st) and 'directed' in str(st))
    assert photo_of(got) == sha1(img), str(got)
    await a.stop()
    await c.stop()


async def test_hash_after_restart(make_server):
    """The hash comes from the stored vCard after a restart: contacts get
    it without the client putting it there."""
    srv = make_server('avrestart')
    ua, ub = new_user(srv), new_user(srv)
    a, b = await mutual(srv, ua, ub)
    img = png((120, 130, 140))
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)))
    await a.stop()
    await b.stop()
    srv.stop(check=True)
    srv.restart()
    b = await srv.client(ub, 'b').start()
    a = await srv.client(ua, 'a2').start()
    await b.wait(presence_with_photo(f'{ua.jid}/a2', sha1(img)), what='hash after restart')
    # Every later presence has it at once.
    b.clear()
    send_presence(a, status='later')
    got = await b.wait(lambda st: is_presence(frm=ua.jid)(st) and 'later' in str(st))
    assert photo_of(got) == sha1(img)
    await a.stop()
    await b.stop()


def login_and_present(srv, user, resource):
    """A raw client that, once bound, reads its own vCard (as clients do
    to show the user's avatar) and sends its initial presence the moment
    it has the answer."""
    s = srv.raw()
    s.login(user, resource)
    resp = s.iq(f"<vCard xmlns='{NS_VCARD}'/>")
    assert resp.get('type') == 'result', resp
    s.send('<presence/>')
    return s


async def test_first_presence_after_login_has_hash(make_server):
    """The hash is read when the resource binds, before anything the
    client asks for: the account's first presence after it was loaded
    already carries it, so contacts see the avatar at once, in one
    presence, not one without the hash then another with it. (The vCard
    read orders the test: the server answers a client's vCard requests
    after the hash read begun at bind. A client that sends presence at
    once may still beat that read; it then gets the old two presences.)"""
    srv = make_server('avlogin')
    ua, ub = new_user(srv), new_user(srv)
    a, b = await mutual(srv, ua, ub)
    img = png((210, 220, 230))
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)))
    await a.stop()
    # A's last session is gone: the account (and the hash with it) is
    # unloaded; the next login loads it again.
    await b.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'), what='A offline')
    await asyncio.sleep(0.3)
    b.clear()
    loop = asyncio.get_event_loop()
    raw = await loop.run_in_executor(None, login_and_present, srv, ua, 'a2')
    try:
        first = await b.wait(is_presence(frm=f'{ua.jid}/a2'), what="A's presence")
        assert photo_of(first) == sha1(img), str(first)
        await asyncio.sleep(0.5)
        again = [str(st) for st in b.received if is_presence(frm=f'{ua.jid}/a2')(st)]
        assert again == [], again
    finally:
        raw.close()
    await b.stop()


async def test_presence_right_after_vcard_set(server, users):
    """A client that sets its vCard and at once sends presence with the
    new hash: the IQ is handled a moment after the presence (the server
    answers for the account once it has looked it up), so that presence
    may first go out with the old hash, but contacts end with the new one
    and never see the old one after it."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    old, new = png((1, 1, 1)), png((2, 2, 2))
    await set_photo(a, old)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(old)))
    b.clear()
    a.raw(f"<iq type='set' id='vc'><vCard xmlns='{NS_VCARD}'><PHOTO><TYPE>image/png</TYPE>"
          f"<BINVAL>{base64.b64encode(new).decode()}</BINVAL></PHOTO></vCard></iq>"
          f"<presence><status>now</status><x xmlns='{NS_UPDATE}'><photo>{sha1(new)}</photo></x></presence>")
    async def arrived():
        return any(presence_with_photo(ua.jid, sha1(new))(st) for st in b.received)
    await wait_until(arrived, 'presence with the new hash')
    await asyncio.sleep(0.5)
    photos = [photo_of(st) for st in b.received if is_presence(frm=ua.jid)(st)]
    first_new = photos.index(sha1(new))
    assert set(photos[:first_new]) <= {sha1(old)}, photos
    assert set(photos[first_new:]) == {sha1(new)}, photos
    b.clear()
    send_presence(a, status='after')
    got = await b.wait(lambda st: is_presence(frm=ua.jid)(st) and 'after' in str(st))
    assert photo_of(got) == sha1(new)
    await a.stop()
    await b.stop()


# ---------------------------------------------------------------------------
# XEP-0398 conversion (needs mod_pep)

async def pep_items(c, node, owner=None, item_id=None):
    inner = f"<item id='{item_id}'/>" if item_id else ''
    resp = await c.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{node}'>{inner}</items></pubsub>",
                      to=owner)
    assert resp['type'] == 'result', str(resp)
    return resp.xml.findall(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'items')}/{q(NS_PUBSUB, 'item')}")


async def publish(c, node, item_id, payload, access='open'):
    opts = ''
    if access:
        opts = (f"<publish-options><x xmlns='jabber:x:data' type='submit'>"
                f"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                f"<field var='pubsub#access_model'><value>{access}</value></field></x></publish-options>")
    id_attr = f" id='{item_id}'" if item_id else ''
    resp = await c.iq(f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item{id_attr}>{payload}</item>"
                      f"</publish>{opts}</pubsub>", type='set')
    assert resp['type'] == 'result', str(resp)


async def wait_until(probe, what, timeout=5.0):
    deadline = asyncio.get_event_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_event_loop().time() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        await asyncio.sleep(0.1)


async def vcard_photo(c, owner):
    resp = await c.iq(f"<vCard xmlns='{NS_VCARD}'/>", to=owner)
    if resp['type'] != 'result':
        return None
    binval = resp.xml.find(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'PHOTO')}/{q(NS_VCARD, 'BINVAL')}")
    typ = resp.xml.find(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'PHOTO')}/{q(NS_VCARD, 'TYPE')}")
    if binval is None:
        return ('', None)
    return (base64.b64decode(''.join(binval.text.split())), typ.text if typ is not None else None)


async def test_vcard_photo_published_to_pep(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    img = png((77, 88, 99))
    h = sha1(img)
    await set_photo(a, img)

    async def meta():
        # The publish follows the vCard's result: the node may not be
        # there yet.
        resp = await b.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NS_META}'/></pubsub>",
                          to=ua.jid)
        if resp['type'] != 'result':
            assert error_condition(resp) == ('cancel', 'item-not-found'), str(resp)
            return None
        items = resp.xml.findall(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'items')}/{q(NS_PUBSUB, 'item')}")
        return items if items and items[-1].get('id') == h else None
    items = await wait_until(meta, 'metadata item')
    info = items[-1].find(f"{q(NS_META, 'metadata')}/{q(NS_META, 'info')}")
    assert info.get('id') == h
    assert info.get('bytes') == str(len(img))
    assert info.get('type') == 'image/png'
    assert info.get('url') is None
    # The data node has the image under its hash, readable by a
    # non-contact (open, like the vCard itself).
    data = await pep_items(b, NS_DATA, owner=ua.jid, item_id=h)
    assert len(data) == 1 and data[0].get('id') == h
    assert base64.b64decode(''.join(data[0].find(q(NS_DATA, 'data')).text.split())) == img

    # A vCard without the image disables the PEP avatar (empty metadata).
    await set_photo(a, None)

    async def disabled():
        items = await pep_items(b, NS_META, owner=ua.jid)
        return items and list(items[-1].find(q(NS_META, 'metadata'))) == []
    await wait_until(disabled, 'empty metadata')
    await a.stop()
    await b.stop()


async def test_conversion_does_not_echo(server, users):
    """vCard -> PEP -> (listener) must not come back as a second vCard
    change: contacts see one presence for one new image."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    img = png((12, 34, 56))
    await set_photo(a, img)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(img)))
    await asyncio.sleep(0.8)
    again = [st for st in b.received if is_presence(frm=ua.jid)(st)]
    assert again == [], [str(x) for x in again]
    # The same from the PEP side.
    img2 = png((65, 43, 21))
    h2 = sha1(img2)
    b.clear()
    await publish(a, NS_DATA, h2, f"<data xmlns='{NS_DATA}'>{base64.b64encode(img2).decode()}</data>")
    await publish(a, NS_META, h2, f"<metadata xmlns='{NS_META}'><info bytes='{len(img2)}' id='{h2}' "
                                  f"type='image/png'/></metadata>")
    await b.wait(presence_with_photo(f'{ua.jid}/a', h2))
    await asyncio.sleep(0.8)
    again = [st for st in b.received if is_presence(frm=ua.jid)(st)]
    assert again == [], [str(x) for x in again]
    # The vCard side did not publish the image back as a new item.
    items = await pep_items(a, NS_META)
    assert [i.get('id') for i in items][-1] == h2
    await a.stop()
    await b.stop()


async def test_vcard_photo_published_under_users_node_config(server, users):
    """The user made the avatar nodes presence-only: a vCard image is
    published under that configuration, not forced open."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    old = png((100, 0, 100))
    h = sha1(old)
    await publish(a, NS_DATA, h, f"<data xmlns='{NS_DATA}'>{base64.b64encode(old).decode()}</data>",
                  access='presence')
    await publish(a, NS_META, h, f"<metadata xmlns='{NS_META}'><info bytes='{len(old)}' id='{h}' "
                                 f"type='image/png'/></metadata>", access='presence')
    new = png((0, 100, 0))
    await set_photo(a, new)

    async def published():
        items = await pep_items(a, NS_META)
        return items and items[-1].get('id') == sha1(new)
    await wait_until(published, 'new metadata item')
    resp = await b.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NS_DATA}'/></pubsub>", to=ua.jid)
    assert resp['type'] == 'error', 'a non-contact cannot read a presence-only node'
    await a.stop()
    await b.stop()


async def test_pep_avatar_becomes_vcard_photo(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    await set_photo(a, None, extra='<FN>Kept Name</FN>')
    img = png((5, 150, 250))
    h = sha1(img)
    await publish(a, NS_DATA, h, f"<data xmlns='{NS_DATA}'>{base64.b64encode(img).decode()}</data>")
    await publish(a, NS_META, h, f"<metadata xmlns='{NS_META}'>"
                                 f"<info bytes='{len(img)}' id='{h}' type='image/gif' url='https://example.org/a.gif'/>"
                                 f"<info bytes='{len(img)}' id='{h}' type='image/png' height='1' width='1'/>"
                                 f"</metadata>")
    async def photo():
        got = await vcard_photo(b, ua.jid)
        return got if got and got[0] else None
    got = await wait_until(photo, 'vCard photo', timeout=5)
    assert got == (img, 'image/png')
    # The rest of the vCard is kept.
    resp = await b.iq(f"<vCard xmlns='{NS_VCARD}'/>", to=ua.jid)
    assert resp.xml.find(f"{q(NS_VCARD, 'vCard')}/{q(NS_VCARD, 'FN')}").text == 'Kept Name'
    # And contacts get the hash in presence.
    await b.wait(presence_with_photo(f'{ua.jid}/a', h), what='hash from PEP avatar')

    # XEP-0084 §3.5: an empty <metadata/> disables the avatar.
    b.clear()
    await publish(a, NS_META, None, f"<metadata xmlns='{NS_META}'/>")
    await wait_until(lambda: _no_photo(b, ua.jid), 'photo removed')
    await b.wait(presence_with_photo(f'{ua.jid}/a', ''), what='empty photo after disabling')
    await a.stop()
    await b.stop()


async def configure_access(c, node, access):
    resp = await c.iq(f"<pubsub xmlns='{NS_PUBSUB}#owner'><configure node='{node}'>"
                      f"<x xmlns='jabber:x:data' type='submit'>"
                      f"<field var='FORM_TYPE' type='hidden'><value>{NS_PUBSUB}#node_config</value></field>"
                      f"<field var='pubsub#access_model'><value>{access}</value></field>"
                      f"</x></configure></pubsub>", type='set')
    assert resp['type'] == 'result', str(resp)


async def test_non_open_pep_avatar_not_copied(server, users):
    """XEP-0398 §6: a PEP avatar goes into the (world-readable) vCard only
    when its data node is open. A presence-only one leaves the vCard, and
    so the hash in presence, as they were; the same avatar is copied once
    the data node is open and the metadata is published again."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    old = png((11, 22, 33))
    await set_photo(a, old)
    await b.wait(presence_with_photo(f'{ua.jid}/a', sha1(old)))
    # Wait for the vCard image's own trip to PEP (open nodes), so that it
    # cannot land after the publishes below.
    async def mirrored():
        resp = await a.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NS_META}'/></pubsub>")
        if resp['type'] != 'result':
            assert error_condition(resp) == ('cancel', 'item-not-found'), str(resp)
            return False
        items = resp.xml.findall(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'items')}/{q(NS_PUBSUB, 'item')}")
        return items and items[-1].get('id') == sha1(old)
    await wait_until(mirrored, 'vCard image in PEP')
    await configure_access(a, NS_DATA, 'presence')

    img = png((44, 55, 66))
    h = sha1(img)
    b.clear()
    await publish(a, NS_DATA, h, f"<data xmlns='{NS_DATA}'>{base64.b64encode(img).decode()}</data>",
                  access='presence')
    # The metadata node being open does not matter: the image is in the
    # data node.
    await publish(a, NS_META, h, f"<metadata xmlns='{NS_META}'><info bytes='{len(img)}' id='{h}' "
                                 f"type='image/png'/></metadata>")
    await asyncio.sleep(0.7)
    assert await vcard_photo(b, ua.jid) == (old, 'image/png')
    assert [photo_of(st) for st in b.received if is_presence(frm=ua.jid)(st)] == []
    # The contact still gets the image by PEP, as the user chose.
    data = await pep_items(b, NS_DATA, owner=ua.jid, item_id=h)
    assert len(data) == 1 and data[0].get('id') == h

    await configure_access(a, NS_DATA, 'open')
    await publish(a, NS_META, h, f"<metadata xmlns='{NS_META}'><info bytes='{len(img)}' id='{h}' "
                                 f"type='image/png'/></metadata>")
    async def copied():
        got = await vcard_photo(b, ua.jid)
        return got if got and got[0] == img else None
    assert await wait_until(copied, 'open avatar in the vCard') == (img, 'image/png')
    await b.wait(presence_with_photo(f'{ua.jid}/a', h), what='hash of the open avatar')
    await a.stop()
    await b.stop()


async def _no_photo(c, owner):
    got = await vcard_photo(c, owner)
    return got is not None and got[0] == ''


async def test_mismatched_pep_data_not_copied(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    await set_photo(a, None)
    img = png((33, 33, 33))
    wrong = '1' * 40
    await publish(a, NS_DATA, wrong, f"<data xmlns='{NS_DATA}'>{base64.b64encode(img).decode()}</data>")
    await publish(a, NS_META, wrong, f"<metadata xmlns='{NS_META}'>"
                                     f"<info bytes='{len(img)}' id='{wrong}' type='image/png'/></metadata>")
    await asyncio.sleep(0.7)
    assert await vcard_photo(b, ua.jid) == ('', None)
    await a.stop()
    await b.stop()
