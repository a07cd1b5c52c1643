"""OMEMO (XEP-0384) on our PEP, the way clients use it: the legacy
eu.siacs.conversations.axolotl.* nodes (Conversations, Gajim, Dino,
Profanity) and urn:xmpp:omemo:2. A device list published with
publish-options (open access), bundles fetched by a contact who is not
subscribed, one item per device on the omemo:2 bundles node (max_items
max), the precondition-not-met / reconfigure / republish dance, device
list notifications to the user's other devices and to contacts; then
the same exchange driven by slixmpp's own XEP-0060/0115/0163 plugins."""

import asyncio
import base64
import os
import xml.etree.ElementTree as ET

from slixmpp import ET as SET
from slixmpp.plugins.xep_0004 import Form

from helpers import NS_CLIENT, NS_PUBSUB, ok, q, tostr
from pep_helpers import (event_items, is_event, pubsub_error, result_items,
                         stream as pep_stream)
from streams import befriend
from test_presence import subscribe

QUIET = 0.8
NS_AXOLOTL = 'eu.siacs.conversations.axolotl'
DEVICELIST = NS_AXOLOTL + '.devicelist'
NS_OMEMO2 = 'urn:xmpp:omemo:2'
DEVICES2 = NS_OMEMO2 + ':devices'
BUNDLES2 = NS_OMEMO2 + ':bundles'
OPEN = {'pubsub#access_model': 'open'}


def stream(server, user, resource=None):
    return pep_stream(server, user, resource, prefix='dev')


def key():
    return base64.b64encode(os.urandom(33)).decode()


def device_list(ids):
    return f"<list xmlns='{NS_AXOLOTL}'>" + ''.join(f"<device id='{i}'/>" for i in ids) + '</list>'


def legacy_bundle(prekeys=100):
    pks = ''.join(f"<preKeyPublic preKeyId='{i}'>{key()}</preKeyPublic>" for i in range(1, prekeys + 1))
    return (f"<bundle xmlns='{NS_AXOLOTL}'><signedPreKeyPublic signedPreKeyId='1'>{key()}"
            f"</signedPreKeyPublic><signedPreKeySignature>{key()}{key()}</signedPreKeySignature>"
            f"<identityKey>{key()}</identityKey><prekeys>{pks}</prekeys></bundle>")


def omemo2_devices(ids):
    return f"<devices xmlns='{NS_OMEMO2}'>" + ''.join(f"<device id='{i}'/>" for i in ids) + '</devices>'


def omemo2_bundle(prekeys=100):
    pks = ''.join(f"<pk id='{i}'>{key()}</pk>" for i in range(1, prekeys + 1))
    return (f"<bundle xmlns='{NS_OMEMO2}'><spk id='1'>{key()}</spk><spks>{key()}{key()}</spks>"
            f"<ik>{key()}</ik><prekeys>{pks}</prekeys></bundle>")


def devices_of(e, ns=NS_AXOLOTL, el='list'):
    items = result_items(e)
    assert len(items) == 1 and items[0][0] == 'current', tostr(e)
    lst = items[0][1]
    assert lst.tag == q(ns, el), tostr(e)
    return [d.get('id') for d in lst.findall(q(ns, 'device'))]


def same_xml(a, b_text):
    """The payload came back as published: same elements, attributes and
    text, namespaces included."""
    b = ET.fromstring(b_text)

    def canon(e):
        return (e.tag, sorted(e.attrib.items()), (e.text or '').strip(),
                [canon(c) for c in e])
    return canon(a) == canon(b)


def test_legacy_omemo_between_strangers(server, make_user):
    alice, bob = make_user('alice'), make_user('bob')
    a, b = stream(server, alice), stream(server, bob)
    a_id, b_id = '1111', '2222'
    # Each announces its device and bundle, open to anyone (XEP-0384
    # "REQUIRED ... 'open' to give entities without presence
    # subscription read access").
    ok(a.publish(DEVICELIST, device_list([a_id]), 'current', OPEN))
    a_bundle = legacy_bundle()
    ok(a.publish(f'{NS_AXOLOTL}.bundles:{a_id}', a_bundle, 'current', OPEN))
    ok(b.publish(DEVICELIST, device_list([b_id]), 'current', OPEN))
    b_bundle = legacy_bundle()
    ok(b.publish(f'{NS_AXOLOTL}.bundles:{b_id}', b_bundle, 'current', OPEN))
    # Neither is subscribed to the other: the fetches work all the same.
    assert devices_of(b.items(alice.jid, DEVICELIST)) == [a_id]
    got = result_items(b.items(alice.jid, f'{NS_AXOLOTL}.bundles:{a_id}'))
    assert len(got) == 1 and same_xml(got[0][1], a_bundle)
    assert devices_of(a.items(bob.jid, DEVICELIST)) == [b_id]
    got = result_items(a.items(bob.jid, f'{NS_AXOLOTL}.bundles:{b_id}', max_items=1))
    assert len(got) == 1 and same_xml(got[0][1], b_bundle)
    # A bundle that was never published.
    assert pubsub_error(b.items(alice.jid, f'{NS_AXOLOTL}.bundles:9999'))[1] == 'item-not-found'
    # The encrypted message itself is just a message.
    b.available()
    a.available()
    enc = (f"<encrypted xmlns='{NS_AXOLOTL}'><header sid='{b_id}'><key rid='{a_id}' prekey='true'>"
           f"{key()}</key><iv>{key()}</iv></header><payload>{key()}</payload></encrypted>")
    b.send(f"<message to='{alice.jid}' type='chat' id='m1'>{enc}<store xmlns='urn:xmpp:hints'/></message>")
    m = a.wait(lambda e: e.tag == q(NS_CLIENT, 'message') and e.get('id') == 'm1')
    assert same_xml(m.find(q(NS_AXOLOTL, 'encrypted')), enc)
    a.close()
    b.close()


def test_device_list_notifications(server, make_user):
    alice, bob, eve = make_user('alice'), make_user('bob'), make_user('eve')
    a1 = stream(server, alice, 'phone')
    a2 = stream(server, alice, 'laptop')
    b1 = stream(server, bob)
    e1 = stream(server, eve)
    a1.available()
    b1.available()
    befriend(a1, b1)
    for s in (a1, a2, b1, e1):
        s.caps_presence([DEVICELIST])
        s.clear()
    ok(a1.publish(DEVICELIST, device_list(['1']), 'current', OPEN))
    for s in (a1, a2, b1):
        ev = s.wait(is_event(DEVICELIST, frm=alice.jid, to=s.full))
        [(kind, item_id, lst)] = event_items(ev)
        assert (kind, item_id) == ('item', 'current')
        assert [d.get('id') for d in lst.findall(q(NS_AXOLOTL, 'device'))] == ['1']
    # Eve is no contact: she fetches, she is not told.
    e1.none(is_event(DEVICELIST), wait=QUIET)
    # The second device finds itself missing and adds itself (XEP-0384
    # §5.3.1); the first one sees the new list.
    ok(a2.publish(DEVICELIST, device_list(['1', '2']), 'current', OPEN))
    ev = a1.wait(is_event(DEVICELIST, to=a1.full))
    [(_, _, lst)] = event_items(ev)
    assert [d.get('id') for d in lst.findall(q(NS_AXOLOTL, 'device'))] == ['1', '2']
    assert devices_of(e1.items(alice.jid, DEVICELIST)) == ['1', '2']
    # A device of Bob's coming online later gets the current list.
    b2 = stream(server, bob, 'tablet')
    b2.caps_presence([DEVICELIST])
    ev = b2.wait(is_event(DEVICELIST, frm=alice.jid, to=b2.full))
    [(_, _, lst)] = event_items(ev)
    assert [d.get('id') for d in lst.findall(q(NS_AXOLOTL, 'device'))] == ['1', '2']
    for s in (a1, a2, b1, b2, e1):
        s.close()


def test_omemo2_nodes(server, make_user):
    alice, bob = make_user('alice'), make_user('bob')
    a, b = stream(server, alice), stream(server, bob)
    ok(a.publish(DEVICES2, omemo2_devices(['11', '22']), 'current', OPEN))
    bundles = {}
    for dev in ('11', '22'):
        bundles[dev] = omemo2_bundle()
        ok(a.publish(BUNDLES2, bundles[dev], dev,
                     {'pubsub#max_items': 'max', 'pubsub#access_model': 'open'}))
    # One item per device, both kept (not the PEP default of one).
    assert devices_of(b.items(alice.jid, DEVICES2), NS_OMEMO2, 'devices') == ['11', '22']
    got = result_items(b.items(alice.jid, BUNDLES2, ids=['22']))
    assert [i for i, _ in got] == ['22'] and same_xml(got[0][1], bundles['22'])
    assert [i for i, _ in result_items(b.items(alice.jid, BUNDLES2))] == ['11', '22']
    # A device republishes its bundle (new prekeys): replaced, not added.
    bundles['11'] = omemo2_bundle(prekeys=99)
    ok(a.publish(BUNDLES2, bundles['11'], '11',
                 {'pubsub#max_items': 'max', 'pubsub#access_model': 'open'}))
    got = dict(result_items(b.items(alice.jid, BUNDLES2)))
    assert sorted(got) == ['11', '22'] and same_xml(got['11'], bundles['11'])
    a.close()
    b.close()


def test_precondition_then_reconfigure(server, make_user):
    """A node made earlier with the defaults (presence access, one item):
    the publish with options fails with precondition-not-met, the client
    reconfigures the node as XEP-0384 §5.3.2 says, and publishes again."""
    alice, bob = make_user('alice'), make_user('bob')
    a, b = stream(server, alice), stream(server, bob)
    ok(a.publish(BUNDLES2, omemo2_bundle(5), '11'))
    r = a.publish(BUNDLES2, omemo2_bundle(5), '22',
                  {'pubsub#max_items': 'max', 'pubsub#access_model': 'open'})
    assert pubsub_error(r)[:3] == ('cancel', 'conflict', 'precondition-not-met')
    assert pubsub_error(b.items(alice.jid, BUNDLES2))[2] == 'presence-subscription-required'
    ok(a.configure(BUNDLES2, {'pubsub#max_items': 'max', 'pubsub#access_model': 'open'}))
    ok(a.publish(BUNDLES2, omemo2_bundle(5), '22',
                 {'pubsub#max_items': 'max', 'pubsub#access_model': 'open'}))
    assert [i for i, _ in result_items(b.items(alice.jid, BUNDLES2))] == ['11', '22']
    a.close()
    b.close()


PLUGINS = ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0199')


async def test_with_slixmpp_clients(server, make_user):
    """The same with a real client library: slixmpp's caps (its own
    'ver', answering our disco#info), +notify from xep_0163, publishing
    with a publish-options form through xep_0060."""
    ua, ub = make_user('alice'), make_user('bob')
    a = server.client(ua, 'conv', plugins=PLUGINS)
    b = server.client(ub, 'dino', plugins=PLUGINS)
    for c in (a, b):
        c['xep_0163'].add_interest(DEVICELIST)
    await a.start()
    await b.start()
    await subscribe(a, b, ua.jid, ub.jid)
    await subscribe(b, a, ub.jid, ua.jid)
    await asyncio.sleep(0.5)     # the server's caps query and its answer
    a.clear()
    b.clear()

    form = Form()
    form['type'] = 'submit'
    form.add_field(var='FORM_TYPE', ftype='hidden',
                   value='http://jabber.org/protocol/pubsub#publish-options')
    form.add_field(var='pubsub#access_model', value='open')
    lst = SET.fromstring(device_list(['4242']))
    await a['xep_0060'].publish(None, DEVICELIST, id='current', payload=lst,
                                options=form, timeout=10)

    def is_devicelist(st):
        x = st.xml
        ev = x.find(f'{{{NS_PUBSUB}#event}}event/{{{NS_PUBSUB}#event}}items')
        return x.tag == q(NS_CLIENT, 'message') and ev is not None and ev.get('node') == DEVICELIST
    for c in (a, b):
        st = await c.wait(is_devicelist, what='device list notification')
        assert st.xml.get('from') == ua.jid
        devs = st.xml.findall(f'.//{{{NS_AXOLOTL}}}device')
        assert [d.get('id') for d in devs] == ['4242']
    bundle = SET.fromstring(legacy_bundle(20))
    await a['xep_0060'].publish(None, f'{NS_AXOLOTL}.bundles:4242', id='current',
                                payload=bundle, options=form, timeout=10)
    res = await b['xep_0060'].get_items(ua.jid, f'{NS_AXOLOTL}.bundles:4242', timeout=10)
    items = res.xml.findall(f'.//{{{NS_PUBSUB}}}item')
    assert [i.get('id') for i in items] == ['current']
    assert len(items[0].findall(f'.//{{{NS_AXOLOTL}}}preKeyPublic')) == 20
    await a.stop()
    await b.stop()
