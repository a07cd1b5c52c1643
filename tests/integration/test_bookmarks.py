"""XEP-0402 PEP Native Bookmarks and XEP-0048 compatibility: one set of
bookmarks, seen through the XEP-0402 node (one item per room), XEP-0049
private XML <storage xmlns='storage:bookmarks'/> and the XEP-0048 PEP node
storage:bookmarks. A change made through any of them shows in the
others; unchanged rooms are not notified again (XEP-0402 §5.3.2)."""

import time
import xml.etree.ElementTree as ET

from helpers import NS_BOOKMARKS, NS_BOOKMARKS2, NS_DISCO_INFO, NS_PRIVATE, ok, q, tostr
from pep_helpers import (NS_EVENT, event_items, is_event, pubsub_error, result_items,
                         stream)
from streams import befriend

QUIET = 0.8
BM2_OPTIONS = {'pubsub#persist_items': 'true', 'pubsub#max_items': 'max',
               'pubsub#send_last_published_item': 'never',
               'pubsub#access_model': 'whitelist'}


def conference2(name=None, autojoin=None, nick=None, password=None, extensions=''):
    attrs = ''
    if name is not None:
        attrs += f" name='{name}'"
    if autojoin is not None:
        attrs += f" autojoin='{autojoin}'"
    inner = ''
    if nick is not None:
        inner += f'<nick>{nick}</nick>'
    if password is not None:
        inner += f'<password>{password}</password>'
    if extensions:
        inner += f'<extensions>{extensions}</extensions>'
    return f"<conference xmlns='{NS_BOOKMARKS2}'{attrs}>{inner}</conference>"


def private_get(s):
    r = ok(s.iq(f"<query xmlns='{NS_PRIVATE}'><storage xmlns='{NS_BOOKMARKS}'/></query>"))
    st = r.find(f'{q(NS_PRIVATE, "query")}/{q(NS_BOOKMARKS, "storage")}')
    assert st is not None, tostr(r)
    return st


def private_set(s, conferences):
    return s.iq(f"<query xmlns='{NS_PRIVATE}'><storage xmlns='{NS_BOOKMARKS}'>{conferences}"
                f"</storage></query>", type='set')


def rooms(storage):
    """{jid: (name, autojoin, nick, password, [other child tags])}."""
    out = {}
    for c in storage.findall(q(NS_BOOKMARKS, 'conference')):
        others = [x.tag for x in c if x.tag not in (q(NS_BOOKMARKS, 'nick'), q(NS_BOOKMARKS, 'password'))]
        out[c.get('jid')] = (c.get('name'), c.get('autojoin'), c.findtext(q(NS_BOOKMARKS, 'nick')),
                             c.findtext(q(NS_BOOKMARKS, 'password')), others)
    return out


def native(s, owner):
    """{id: conference element} of the XEP-0402 node."""
    return {i: p for i, p in result_items(s.items(owner, NS_BOOKMARKS2))}


def legacy_pep(s, owner):
    items = result_items(s.items(owner, NS_BOOKMARKS))
    assert [i for i, _ in items] == ['current'], items
    return items[0][1]


def eventually(fn, timeout=5.0):
    """The views are kept in step asynchronously: poll briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_account_advertises_compat(server, make_user):
    u = make_user()
    s = stream(server, u)
    r = ok(s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=u.jid))
    feats = {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
    # What Conversations and Gajim look for before using XEP-0402.
    assert {NS_BOOKMARKS2 + '#compat', NS_BOOKMARKS2 + '#compat-pep', 'urn:xmpp:bookmarks-conversion:0',
            'http://jabber.org/protocol/pubsub#publish-options',
            'http://jabber.org/protocol/pubsub#config-node-max'} <= feats
    s.close()


def test_native_bookmarks_show_in_private_xml_and_legacy_pep(server, make_user):
    u = make_user()
    s = stream(server, u)
    ext = "<state xmlns='urn:example:client' minimized='true'/>"
    ok(s.publish(NS_BOOKMARKS2, conference2('The Play', 'true', 'JC', 'Gl0b3', ext),
                 'theplay@conference.example.org', BM2_OPTIONS))
    ok(s.publish(NS_BOOKMARKS2, conference2(), 'orchard@conference.example.org', BM2_OPTIONS))
    want = {
        'theplay@conference.example.org': ('The Play', 'true', 'JC', 'Gl0b3',
                                           ['{urn:example:client}state']),
        'orchard@conference.example.org': (None, None, None, None, []),
    }
    assert rooms(private_get(s)) == want
    eventually(lambda: rooms_check(legacy_pep(s, u.jid), want))
    # The private node is private (XEP-0223).
    cfg = s.node_config(NS_BOOKMARKS2)
    assert cfg['pubsub#access_model'] == 'whitelist'
    # Retraction shows too.
    ok(s.retract(NS_BOOKMARKS2, 'orchard@conference.example.org', notify='true'))
    del want['orchard@conference.example.org']
    assert rooms(private_get(s)) == want
    eventually(lambda: rooms_check(legacy_pep(s, u.jid), want))
    s.close()


def rooms_check(storage, want):
    assert storage.tag == q(NS_BOOKMARKS, 'storage'), ET.tostring(storage)
    assert rooms(storage) == want
    return True


def test_private_xml_set_updates_native_items(server, make_user):
    u = make_user()
    s = stream(server, u)
    watcher = stream(server, u)
    watcher.caps_presence([NS_BOOKMARKS2])
    ok(s.publish(NS_BOOKMARKS2, conference2('Keep', 'true', 'me'), 'keep@muc.example.org',
                 BM2_OPTIONS))
    ok(s.publish(NS_BOOKMARKS2, conference2('Gone'), 'gone@muc.example.org', BM2_OPTIONS))
    watcher.clear()
    # An old client replaces its whole list: one room kept as it was, one
    # changed, one new, one dropped; a URL (no XEP-0402 form) is not kept.
    r = private_set(s,
                    "<conference jid='keep@muc.example.org' name='Keep' autojoin='true'>"
                    "<nick>me</nick></conference>"
                    "<conference jid='new@muc.example.org' name='New' autojoin='1'>"
                    "<nick>n</nick><x xmlns='urn:example:extra'/></conference>"
                    "<url name='Web' url='https://example.org/'/>")
    ok(r)
    items = native(s, u.jid)
    assert sorted(items) == ['keep@muc.example.org', 'new@muc.example.org']
    new = items['new@muc.example.org']
    assert new.tag == q(NS_BOOKMARKS2, 'conference')
    assert (new.get('name'), new.get('autojoin')) == ('New', 'true')
    assert new.findtext(q(NS_BOOKMARKS2, 'nick')) == 'n'
    ext = new.find(q(NS_BOOKMARKS2, 'extensions'))
    assert [x.tag for x in ext] == ['{urn:example:extra}x']
    # Notified: the new room and the removal, not the unchanged room.
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(seen) < 2:
        ev = watcher.wait(is_event(NS_BOOKMARKS2, to=watcher.full))
        seen += [(k, i) for k, i, _ in event_items(ev)]
    assert sorted(seen) == [('item', 'new@muc.example.org'), ('retract', 'gone@muc.example.org')]
    watcher.none(is_event(NS_BOOKMARKS2), wait=QUIET, what='notification of an unchanged room')
    # Read back through XEP-0049: the same list (the URL is gone).
    assert rooms(private_get(s)) == {
        'keep@muc.example.org': ('Keep', 'true', 'me', None, []),
        'new@muc.example.org': ('New', 'true', 'n', None, ['{urn:example:extra}x']),
    }
    # The node made this way is private too.
    u2 = make_user()
    s2 = stream(server, u2)
    ok(private_set(s2, "<conference jid='a@muc.example.org'/>"))
    assert s2.node_config(NS_BOOKMARKS2)['pubsub#access_model'] == 'whitelist'
    assert s2.node_config(NS_BOOKMARKS2)['pubsub#send_last_published_item'] == 'never'
    s.close()
    s2.close()
    watcher.close()


def test_legacy_pep_publish_updates_native_items(server, make_user):
    u = make_user()
    s = stream(server, u)
    ok(s.publish(NS_BOOKMARKS2, conference2('Old'), 'old@muc.example.org', BM2_OPTIONS))
    storage = (f"<storage xmlns='{NS_BOOKMARKS}'><conference jid='fresh@muc.example.org' "
               f"name='Fresh' autojoin='true'><nick>f</nick></conference></storage>")
    ok(s.publish(NS_BOOKMARKS, storage, 'current', {'pubsub#persist_items': 'true',
                                             'pubsub#access_model': 'whitelist'}))

    def check():
        items = native(s, u.jid)
        assert sorted(items) == ['fresh@muc.example.org'], items
        c = items['fresh@muc.example.org']
        assert (c.get('name'), c.get('autojoin'), c.findtext(q(NS_BOOKMARKS2, 'nick'))) == \
            ('Fresh', 'true', 'f')
        return True
    eventually(check)
    assert rooms(private_get(s)) == {'fresh@muc.example.org': ('Fresh', 'true', 'f', None, [])}
    s.close()


def test_bookmarks_stay_private_and_persist(server_factory, make_user):
    srv = server_factory('bookmarks')
    u, v = make_user(srv=srv), make_user(srv=srv)
    s, other = stream(srv, u), stream(srv, v)
    s.available()
    other.available()
    befriend(s, other)
    ok(private_set(s, "<conference jid='room@muc.example.org' name='R'><nick>x</nick></conference>"))
    assert pubsub_error(other.items(u.jid, NS_BOOKMARKS2))[:3] == ('cancel', 'not-allowed', 'closed-node')
    eventually(lambda: rooms_check(legacy_pep(s, u.jid),
                                   {'room@muc.example.org': ('R', None, 'x', None, [])}))
    assert pubsub_error(other.items(u.jid, NS_BOOKMARKS))[2] == 'closed-node'
    s.close()
    other.close()
    srv.stop()
    srv.restart()
    s = stream(srv, u)
    assert rooms(private_get(s)) == {'room@muc.example.org': ('R', None, 'x', None, [])}
    assert sorted(native(s, u.jid)) == ['room@muc.example.org']
    s.close()


def test_private_bookmarks_limits(server_factory, make_user):
    srv = server_factory('bookmarks-limits', sections={'pep': {'max_items': 3}})
    u = make_user(srv=srv)
    s = stream(srv, u)
    confs = ''.join(f"<conference jid='r{i}@muc.example.org'/>" for i in range(4))
    r = private_set(s, confs)
    assert pubsub_error(r)[1] == 'not-acceptable'
    ok(private_set(s, confs.replace("<conference jid='r3@muc.example.org'/>", '')))
    assert sorted(rooms(private_get(s))) == [f'r{i}@muc.example.org' for i in range(3)]
    # A conference without a usable JID has no XEP-0402 form.
    ok(private_set(s, "<conference name='no jid'/><conference jid='bad@@jid'/>"
                      "<conference jid='ok@muc.example.org'/>"))
    assert sorted(rooms(private_get(s))) == ['ok@muc.example.org']
    s.close()


def test_event_shape(server, make_user):
    u = make_user()
    s = stream(server, u)
    w = stream(server, u)
    w.caps_presence([NS_BOOKMARKS2])
    w.clear()
    ok(s.publish(NS_BOOKMARKS2, conference2('E', 'true'), 'e@muc.example.org', BM2_OPTIONS))
    ev = w.wait(is_event(NS_BOOKMARKS2, frm=u.jid, to=w.full))
    assert ev.get('type') == 'headline'
    items = ev.find(f'{q(NS_EVENT, "event")}/{q(NS_EVENT, "items")}')
    [item] = list(items)
    assert item.tag == q(NS_EVENT, 'item') and item.get('id') == 'e@muc.example.org'
    assert [c.tag for c in item] == [q(NS_BOOKMARKS2, 'conference')]
    s.close()
    w.close()
