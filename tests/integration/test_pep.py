"""XEP-0163 Personal Eventing Protocol on XEP-0060 (and XEP-0223 private
nodes): create-on-publish, publish-options as preconditions, owner
configuration, items (all, newest N, by id), retract, purge, delete,
explicit subscriptions, access models with XEP-0060's exact errors,
notifications filtered by XEP-0115 "+notify" interests, the last item on
presence, limits, and persistence across a restart. Raw streams, so that
every stanza is checked as it is on the wire."""

import base64
import hashlib
import re
import struct
import xml.etree.ElementTree as ET
import zlib

from helpers import (NS_DELAY, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PUBSUB, form, ok, q,
                     tostr)
from pep_helpers import (NS_EVENT, NS_OWNER, event_items, is_event, new_node, payload,
                         pubsub_error, result_items, stream)
from streams import befriend

QUIET = 0.8   # how long "nothing arrives" is watched

PEP_FEATURES = {NS_PUBSUB + f for f in (
    '', '#access-open', '#access-presence', '#access-roster', '#access-whitelist',
    '#auto-create', '#auto-subscribe', '#config-node', '#config-node-max',
    '#create-and-configure',
    '#create-nodes', '#delete-items', '#delete-nodes', '#filtered-notifications',
    '#item-ids', '#last-published', '#multi-items', '#persistent-items',
    '#publish', '#publish-options', '#purge-nodes', '#retract-items',
    '#retrieve-items', '#subscribe')}


def text_of(p):
    return p.text if p is not None else None


def published_id(e):
    ok(e)
    pub = e.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "publish")}')
    assert pub is not None, tostr(e)
    items = pub.findall(q(NS_PUBSUB, 'item'))
    assert len(items) == 1, tostr(e)
    return items[0].get('id')


def ids_and_texts(e):
    return [(i, text_of(p)) for i, p in result_items(e)]


# ---------------------------------------------------------------------------
# discovery

def test_account_disco_info(server, make_user):
    u = make_user()
    s = stream(server, u)
    r = ok(s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=u.jid))
    query = r.find(q(NS_DISCO_INFO, 'query'))
    ids = {(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))}
    assert ('pubsub', 'pep') in ids and ('account', 'registered') in ids
    feats = {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}
    missing = PEP_FEATURES - feats
    assert not missing, f'missing {missing}'
    # Only what is implemented is advertised.
    assert NS_PUBSUB + '#access-authorize' not in feats
    assert NS_PUBSUB + '#instant-nodes' not in feats
    s.close()


def test_node_disco(server, make_user):
    u, v = make_user(), make_user()
    a, b = stream(server, u), stream(server, v)
    node = new_node()
    ok(a.publish(node, payload('x'), 'one', {'pubsub#access_model': 'open',
                                             'pubsub#max_items': '5'}))
    ok(a.publish(node, payload('y'), 'two'))
    r = ok(b.iq(f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>", to=u.jid))
    query = r.find(q(NS_DISCO_INFO, 'query'))
    assert query.get('node') == node
    assert [(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))] \
        == [('pubsub', 'leaf')]
    r = ok(b.iq(f"<query xmlns='{NS_DISCO_ITEMS}' node='{node}'/>", to=u.jid))
    items = r.find(q(NS_DISCO_ITEMS, 'query')).findall(q(NS_DISCO_ITEMS, 'item'))
    assert [(i.get('jid'), i.get('name'), i.get('node')) for i in items] == \
        [(u.jid, 'one', None), (u.jid, 'two', None)]
    r = b.iq(f"<query xmlns='{NS_DISCO_INFO}' node='urn:roost:nope'/>", to=u.jid)
    assert pubsub_error(r)[1] == 'item-not-found'
    a.close()
    b.close()


def test_account_disco_items_lists_readable_nodes(server, make_user):
    u, v = make_user(), make_user()
    a, b = stream(server, u), stream(server, v)
    open_node, private_node = new_node(), new_node()
    ok(a.publish(open_node, payload('o'), options={'pubsub#access_model': 'open'}))
    ok(a.publish(private_node, payload('p'), options={'pubsub#access_model': 'whitelist'}))

    def nodes(s):
        r = ok(s.iq(f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=u.jid))
        return {i.get('node') for i in r.find(q(NS_DISCO_ITEMS, 'query'))}
    assert {open_node, private_node} <= nodes(a)
    seen = nodes(b)
    assert open_node in seen and private_node not in seen
    a.close()
    b.close()


# ---------------------------------------------------------------------------
# publish, items, retract

def test_publish_autocreates_and_items_come_back(server, make_user):
    u = make_user()
    s = stream(server, u)
    node = new_node()
    r = s.publish(node, payload('hello & <bye>'), 'item-1')
    assert published_id(r) == 'item-1'
    assert r.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "publish")}').get('node') == node
    got = s.items(u.jid, node)
    items = result_items(got)
    assert len(items) == 1
    item_id, p = items[0]
    assert item_id == 'item-1'
    assert p.tag == '{urn:roost:test:payload}entry' and p.text == 'hello & <bye>'
    # The default configuration (XEP-0163 §5).
    cfg = s.node_config(node)
    assert cfg['pubsub#access_model'] == 'presence'
    assert cfg['pubsub#max_items'] == '1'
    assert cfg['pubsub#persist_items'] == '1'
    assert cfg['pubsub#send_last_published_item'] == 'on_sub_and_presence'
    assert cfg['pubsub#deliver_payloads'] == '1'
    # Without an id the server makes one, unique, and says which.
    gen1 = published_id(s.publish(node, payload('a')))
    gen2 = published_id(s.publish(node, payload('b')))
    assert re.fullmatch(r'[0-9a-f]{32}', gen1) and gen1 != gen2
    # max_items 1 (the default): the newest replaced the others.
    assert ids_and_texts(s.items(u.jid, node)) == [(gen2, 'b')]
    s.close()


def test_publish_errors(server, make_user):
    u, v = make_user(), make_user()
    s, other = stream(server, u), stream(server, v)
    node = new_node()

    def err(xml, who=s, to=None):
        return pubsub_error(who.iq(xml, type='set', to=to))[:3]

    assert err(f"<pubsub xmlns='{NS_PUBSUB}'><publish><item>{payload('x')}</item>"
               f"</publish></pubsub>") == ('modify', 'bad-request', 'nodeid-required')
    assert err(f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'/></pubsub>") == \
        ('modify', 'bad-request', 'item-required')
    assert err(f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item id='1'/>"
               f"</publish></pubsub>") == ('modify', 'bad-request', 'payload-required')
    assert err(f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item id='1'>"
               f"{payload('a')}{payload('b')}</item></publish></pubsub>") == \
        ('modify', 'bad-request', 'invalid-payload')
    # Somebody else's service: only the owner publishes (XEP-0163 §2).
    assert err(f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item>"
               f"{payload('a')}</item></publish></pubsub>", who=other, to=u.jid) == \
        ('auth', 'forbidden', None)
    # Nothing of that created the node.
    assert pubsub_error(s.items(u.jid, node))[1] == 'item-not-found'
    s.close()
    other.close()


def test_items_newest_and_by_id(server, make_user):
    u = make_user()
    s = stream(server, u)
    node = new_node()
    for i in range(5):
        ok(s.publish(node, payload(f'v{i}'), f'id{i}', {'pubsub#max_items': '10'}))
    assert ids_and_texts(s.items(u.jid, node)) == [(f'id{i}', f'v{i}') for i in range(5)]
    # max_items: the N most recent (XEP-0060 §6.5.7).
    assert ids_and_texts(s.items(u.jid, node, max_items=2)) == [('id3', 'v3'), ('id4', 'v4')]
    # By id, several at once; an unknown id is simply not there (§6.5.9.12).
    assert ids_and_texts(s.items(u.jid, node, ids=['id1', 'nope', 'id4'])) == \
        [('id1', 'v1'), ('id4', 'v4')]
    assert ids_and_texts(s.items(u.jid, node, ids=['nope'])) == []
    # Republishing an id replaces the item and makes it the newest.
    ok(s.publish(node, payload('again'), 'id0'))
    assert ids_and_texts(s.items(u.jid, node, max_items=1)) == [('id0', 'again')]
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['id1', 'id2', 'id3', 'id4', 'id0']
    # Errors.
    assert pubsub_error(s.items(u.jid, new_node()))[:2] == ('cancel', 'item-not-found')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items/></pubsub>")
    assert pubsub_error(r)[1:3] == ('bad-request', 'nodeid-required')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{node}' max_items='many'/></pubsub>")
    assert pubsub_error(r)[1] == 'bad-request'
    s.close()


def test_max_items_trims_oldest(server, make_user):
    u = make_user()
    s = stream(server, u)
    node = new_node()
    for i in range(6):
        ok(s.publish(node, payload(str(i)), f'i{i}', {'pubsub#max_items': '3'}))
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['i3', 'i4', 'i5']
    # Lowering max_items trims at once.
    ok(s.configure(node, {'pubsub#max_items': '2'}))
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['i4', 'i5']
    s.close()


def test_max_and_item_limits(server_factory, make_user):
    srv = server_factory('peplimits', sections={'pep': {
        'max_items': 4, 'max_nodes': 3, 'max_item_size': 1024}})
    u = make_user(srv=srv)
    s = stream(srv, u)
    node = new_node()
    # "max" is the server's limit.
    for i in range(6):
        ok(s.publish(node, payload(str(i)), f'i{i}', {'pubsub#max_items': 'max'}))
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['i2', 'i3', 'i4', 'i5']
    assert s.node_config(node)['pubsub#max_items'] == 'max'
    # A precondition "max" holds for a node at the limit, "4" too.
    ok(s.publish(node, payload('x'), 'x', {'pubsub#max_items': '4'}))
    # More than the limit cannot be configured.
    assert pubsub_error(s.configure(node, {'pubsub#max_items': '5'}))[1] == 'not-acceptable'
    # Payload size: not-acceptable + payload-too-big (§7.1.3.4).
    big = payload('z' * 1100)
    assert pubsub_error(s.publish(node, big))[:3] == ('modify', 'not-acceptable', 'payload-too-big')
    # Nodes per account: the fourth is refused, by publish and by create.
    ok(s.publish(new_node(), payload('2')))
    ok(s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><create node='{new_node()}'/></pubsub>", type='set'))
    assert pubsub_error(s.publish(new_node(), payload('4')))[:3] == \
        ('modify', 'policy-violation', 'max-nodes-exceeded')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><create node='{new_node()}'/></pubsub>", type='set')
    assert pubsub_error(r)[1:3] == ('policy-violation', 'max-nodes-exceeded')
    s.close()


def test_retract(server, make_user):
    u, v = make_user(), make_user()
    s, other = stream(server, u), stream(server, v)
    node = new_node()
    ok(s.publish(node, payload('a'), 'a', {'pubsub#max_items': '5'}))
    ok(s.publish(node, payload('b'), 'b'))
    ok(s.retract(node, 'a'))
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['b']
    assert pubsub_error(s.retract(node, 'a'))[:2] == ('cancel', 'item-not-found')
    assert pubsub_error(s.retract(new_node(), 'b'))[1] == 'item-not-found'
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{node}'><item/></retract></pubsub>",
             type='set')
    assert pubsub_error(r)[1:3] == ('bad-request', 'item-required')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><retract><item id='b'/></retract></pubsub>", type='set')
    assert pubsub_error(r)[1:3] == ('bad-request', 'nodeid-required')
    r = other.iq(f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{node}'><item id='b'/>"
                 f"</retract></pubsub>", type='set', to=u.jid)
    assert pubsub_error(r)[1] == 'forbidden'
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['b']
    s.close()
    other.close()


def test_purge_and_delete(server, make_user):
    u, v = make_user(), make_user()
    s, other = stream(server, u), stream(server, v)
    watcher = stream(server, u)
    node = new_node()
    watcher.caps_presence([node])
    ok(s.publish(node, payload('a'), 'a', {'pubsub#max_items': '5'}))
    ok(s.publish(node, payload('b'), 'b'))
    watcher.clear()
    # Purge: one <purge/> notification, no retractions (§8.5.2).
    ok(s.owner(f"<purge node='{node}'/>"))
    ev = watcher.wait(is_event(node, frm=u.jid, to=watcher.full, kind='purge'))
    assert ev.get('type') == 'headline'
    assert result_items(s.items(u.jid, node)) == []
    watcher.none(is_event(node), wait=QUIET)
    # Only the owner purges or deletes.
    r = other.iq(f"<pubsub xmlns='{NS_OWNER}'><purge node='{node}'/></pubsub>", type='set', to=u.jid)
    assert pubsub_error(r)[1] == 'forbidden'
    r = other.iq(f"<pubsub xmlns='{NS_OWNER}'><delete node='{node}'/></pubsub>", type='set', to=u.jid)
    assert pubsub_error(r)[1] == 'forbidden'
    ok(s.publish(node, payload('c'), 'c'))
    # Delete: <delete/> notification, then the node is gone with its items.
    ok(s.owner(f"<delete node='{node}'/>"))
    watcher.wait(is_event(node, frm=u.jid, to=watcher.full, kind='delete'))
    assert pubsub_error(s.items(u.jid, node))[1] == 'item-not-found'
    assert pubsub_error(s.owner(f"<delete node='{node}'/>"))[1] == 'item-not-found'
    assert pubsub_error(s.owner(f"<purge node='{node}'/>"))[1] == 'item-not-found'
    # Recreated, it starts empty and with the defaults.
    ok(s.publish(node, payload('d'), 'd'))
    assert [i for i, _ in result_items(s.items(u.jid, node))] == ['d']
    assert s.node_config(node)['pubsub#max_items'] == '1'
    for x in (s, other, watcher):
        x.close()


# ---------------------------------------------------------------------------
# publish-options and configuration

def test_publish_options_configure_a_new_node(server, make_user):
    u = make_user()
    s = stream(server, u)
    node = new_node()
    ok(s.publish(node, payload('x'), 'current', {
        'pubsub#persist_items': 'true', 'pubsub#max_items': 'max',
        'pubsub#access_model': 'open', 'pubsub#send_last_published_item': 'never',
        'pubsub#notify_retract': '0', 'pubsub#title': 'T'}))
    cfg = s.node_config(node)
    assert cfg['pubsub#access_model'] == 'open'
    assert cfg['pubsub#max_items'] == 'max'
    assert cfg['pubsub#persist_items'] == '1'
    assert cfg['pubsub#send_last_published_item'] == 'never'
    assert cfg['pubsub#notify_retract'] == '0'
    assert cfg['pubsub#title'] == 'T'
    # The same options again: preconditions met ('1' and 'true' alike).
    ok(s.publish(node, payload('y'), 'current', {
        'pubsub#persist_items': '1', 'pubsub#access_model': 'open'}))
    s.close()


def test_precondition_not_met_then_configure(server, make_user):
    """What OMEMO clients do (XEP-0384 §5.3.2): publish with options; on
    precondition-not-met, reconfigure the node, publish again."""
    u = make_user()
    s = stream(server, u)
    node = new_node()
    ok(s.publish(node, payload('1'), 'current'))          # presence access
    r = s.publish(node, payload('2'), 'current', {'pubsub#access_model': 'open'})
    assert pubsub_error(r)[:3] == ('cancel', 'conflict', 'precondition-not-met')
    assert ids_and_texts(s.items(u.jid, node)) == [('current', '1')]
    ok(s.configure(node, {'pubsub#access_model': 'open'}))
    ok(s.publish(node, payload('2'), 'current', {'pubsub#access_model': 'open'}))
    assert ids_and_texts(s.items(u.jid, node)) == [('current', '2')]
    # max_items as a precondition.
    r = s.publish(node, payload('3'), 'current', {'pubsub#max_items': 'max'})
    assert pubsub_error(r)[2] == 'precondition-not-met'
    # Unknown fields are refused (§7.1.5), nothing published.
    r = s.publish(node, payload('3'), 'current', {'pubsub#no_such_option': '1'})
    assert pubsub_error(r)[1:3] == ('conflict', 'precondition-not-met')
    r = s.publish(node, payload('3'), 'current', {'pubsub#access_model': 'authorize'})
    assert pubsub_error(r)[2] == 'precondition-not-met'
    # A form of the wrong type is a bad request.
    bad = (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item>{payload('3')}</item>"
           f"</publish><publish-options>{form('urn:wrong', {'pubsub#access_model': 'open'})}"
           f"</publish-options></pubsub>")
    assert pubsub_error(s.iq(bad, type='set'))[1] == 'bad-request'
    assert ids_and_texts(s.items(u.jid, node)) == [('current', '2')]
    s.close()


def test_create_configure_default(server, make_user):
    u, v = make_user(), make_user()
    s, other = stream(server, u), stream(server, v)
    node = new_node()
    create = (f"<pubsub xmlns='{NS_PUBSUB}'><create node='{node}'/><configure>"
              + form('http://jabber.org/protocol/pubsub#node_config',
                     {'pubsub#access_model': 'whitelist', 'pubsub#max_items': '7'})
              + '</configure></pubsub>')
    ok(s.iq(create, type='set'))
    cfg = s.node_config(node)
    assert (cfg['pubsub#access_model'], cfg['pubsub#max_items']) == ('whitelist', '7')
    assert result_items(s.items(u.jid, node)) == []
    assert pubsub_error(s.iq(create, type='set'))[:2] == ('cancel', 'conflict')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><create/></pubsub>", type='set')
    assert pubsub_error(r)[1:3] == ('not-acceptable', 'nodeid-required')
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><create node='{new_node()}'/><configure>"
             + form('http://jabber.org/protocol/pubsub#node_config',
                    {'pubsub#access_model': 'authorize'}) + '</configure></pubsub>', type='set')
    assert pubsub_error(r)[1:3] == ('not-acceptable', 'unsupported-access-model')
    # Default configuration.
    r = ok(s.owner('<default/>', type='get'))
    x = r.find(f'{q(NS_OWNER, "pubsub")}/{q(NS_OWNER, "default")}/{{jabber:x:data}}x')
    assert x.get('type') == 'form'
    # Configuration: only the owner, only an existing node, only known fields.
    r = other.iq(f"<pubsub xmlns='{NS_OWNER}'><configure node='{node}'/></pubsub>", to=u.jid)
    assert pubsub_error(r)[1] == 'forbidden'
    r = s.owner(f"<configure node='{new_node()}'/>", type='get')
    assert pubsub_error(r)[1] == 'item-not-found'
    r = s.owner('<configure/>', type='get')
    assert pubsub_error(r)[1:3] == ('bad-request', 'nodeid-required')
    assert pubsub_error(s.configure(node, {'pubsub#bogus': 'x'}))[1] == 'not-acceptable'
    assert pubsub_error(s.configure(node, {'pubsub#max_items': '0'}))[1] == 'not-acceptable'
    # Cancel keeps it (§8.2.4); a partial form changes only its fields.
    ok(s.owner(f"<configure node='{node}'><x xmlns='jabber:x:data' type='cancel'/></configure>"))
    ok(s.configure(node, {'pubsub#title': 'hello', 'pubsub#access_model': 'open'}))
    cfg = s.node_config(node)
    assert (cfg['pubsub#title'], cfg['pubsub#access_model'], cfg['pubsub#max_items']) == \
        ('hello', 'open', '7')
    s.close()
    other.close()


def test_non_persistent_node_keeps_last_item_in_memory(server, make_user):
    u = make_user()
    s = stream(server, u)
    node = new_node()
    ok(s.publish(node, payload('a'), 'a', {'pubsub#persist_items': 'false'}))
    ok(s.publish(node, payload('b'), 'b', {'pubsub#persist_items': 'false'}))
    assert ids_and_texts(s.items(u.jid, node)) == [('b', 'b')]
    r = s.owner(f"<purge node='{node}'/>")
    assert pubsub_error(r)[1:4] == ('feature-not-implemented', 'unsupported', 'persistent-items')
    # Persisting it keeps the item.
    ok(s.configure(node, {'pubsub#persist_items': '1'}))
    assert ids_and_texts(s.items(u.jid, node)) == [('b', 'b')]
    s.close()


# ---------------------------------------------------------------------------
# access models (XEP-0060 §6.5.9; XEP-0163 §4)

def test_access_models(server, make_user):
    owner, friend, stranger = make_user('o'), make_user('f'), make_user('s')
    o, f, x = stream(server, owner), stream(server, friend), stream(server, stranger)
    o.available()
    f.available()
    befriend(o, f)
    nodes = {m: new_node() for m in ('presence', 'open', 'roster', 'whitelist')}
    for model, node in nodes.items():
        ok(o.publish(node, payload(model), 'current', {'pubsub#access_model': model}))

    def read(s, model):
        return s.items(owner.jid, nodes[model])

    # The owner reads everything.
    for model in nodes:
        assert ids_and_texts(read(o, model)) == [('current', model)]
    # presence: a contact with a subscription; not a stranger.
    assert ids_and_texts(read(f, 'presence')) == [('current', 'presence')]
    assert pubsub_error(read(x, 'presence'))[:3] == \
        ('auth', 'not-authorized', 'presence-subscription-required')
    # open: anyone, subscribed or not.
    assert ids_and_texts(read(x, 'open')) == [('current', 'open')]
    # roster: anyone on the roster; not a stranger.
    assert ids_and_texts(read(f, 'roster')) == [('current', 'roster')]
    assert pubsub_error(read(x, 'roster'))[:3] == ('auth', 'not-authorized', 'not-in-roster-group')
    # whitelist (XEP-0223): the owner only.
    assert pubsub_error(read(f, 'whitelist'))[:3] == ('cancel', 'not-allowed', 'closed-node')
    assert pubsub_error(read(x, 'whitelist'))[:3] == ('cancel', 'not-allowed', 'closed-node')
    # roster with groups: the contact's groups decide.
    ok(o.configure(nodes['roster'], {'pubsub#roster_groups_allowed': ['Family']}))
    assert pubsub_error(read(f, 'roster'))[2] == 'not-in-roster-group'
    o.iq(f"<query xmlns='jabber:iq:roster'><item jid='{friend.jid}'><group>Family</group>"
         f"</item></query>", type='set')
    assert ids_and_texts(read(f, 'roster')) == [('current', 'roster')]
    # A missing node is item-not-found for anyone.
    assert pubsub_error(x.items(owner.jid, new_node()))[1] == 'item-not-found'
    for s in (o, f, x):
        s.close()


# ---------------------------------------------------------------------------
# notifications (XEP-0163 §4)

def test_notifications_go_to_interested_resources_only(server, make_user):
    owner, friend, stranger = make_user('o'), make_user('f'), make_user('s')
    node = new_node()
    o1 = stream(server, owner, 'o1')
    o2 = stream(server, owner, 'o2')
    f1 = stream(server, friend, 'f1')
    f2 = stream(server, friend, 'f2')
    x1 = stream(server, stranger, 'x1')
    o1.available()
    f1.available()
    befriend(o1, f1)
    o1.caps_presence([node])
    o2.caps_presence(['urn:roost:other'])       # no interest in node
    f1.caps_presence([node])
    f2.caps_presence([])                         # caps without +notify
    x1.caps_presence([node])                     # interested, not a contact
    for s in (o1, o2, f1, f2, x1):
        s.clear()
    r = o1.publish(node, payload('tune'), 'current')
    ok(r)
    for s in (o1, f1):
        ev = s.wait(is_event(node, to=s.full), what='notification')
        assert ev.get('from') == owner.jid and ev.get('type') == 'headline'
        assert ev.get('id')
        kinds = event_items(ev)
        assert [(k, i, text_of(p)) for k, i, p in kinds] == [('item', 'current', 'tune')]
        # Nothing but the event in it.
        assert [c.tag for c in ev] == [q(NS_EVENT, 'event')]
    for s in (o2, f2, x1):
        s.none(is_event(node), wait=QUIET, what='notification without interest')
    # One copy per resource.
    o1.none(is_event(node), wait=0.2)
    f1.none(is_event(node), wait=0.2)
    # Retraction notifies too (notify='true'), and not at all with notify='false'.
    ok(o1.retract(node, 'current', notify='true'))
    ev = f1.wait(is_event(node, to=f1.full), what='retract notification')
    assert [(k, i) for k, i, _ in event_items(ev)] == [('retract', 'current')]
    ok(o1.publish(node, payload('again'), 'current'))
    f1.wait(is_event(node), what='notification')
    ok(o1.retract(node, 'current', notify='false'))
    f1.none(is_event(node), wait=QUIET)
    for s in (o1, o2, f1, f2, x1):
        s.close()


def test_whitelist_and_presence_nodes_notify_whom_they_should(server, make_user):
    owner, friend = make_user('o'), make_user('f')
    o1, o2, f1 = stream(server, owner), stream(server, owner), stream(server, friend)
    o1.available()
    f1.available()
    befriend(o1, f1)
    private, presence = new_node(), new_node()
    for s in (o1, o2, f1):
        s.caps_presence([private, presence])
        s.clear()
    ok(o1.publish(private, payload('secret'), options={'pubsub#access_model': 'whitelist',
                                                         'pubsub#persist_items': 'true'}))
    # XEP-0223: pushed to all of the owner's (interested) resources...
    for s in (o1, o2):
        s.wait(is_event(private, to=s.full))
    # ...and to no contact.
    f1.none(is_event(private), wait=QUIET)
    ok(o1.publish(presence, payload('public')))
    f1.wait(is_event(presence, to=f1.full))
    for s in (o1, o2, f1):
        s.close()


def test_contact_without_subscription_from_gets_nothing(server, make_user):
    """Subscription 'to' only (the owner sees the contact, not the
    reverse): no presence sharing, no notifications of presence nodes."""
    owner, contact = make_user('o'), make_user('c')
    o, c = stream(server, owner), stream(server, contact)
    o.available()
    c.available()
    # The owner subscribes to the contact: owner has 'to', contact has 'from'.
    o.send(f"<presence to='{contact.jid}' type='subscribe'/>")
    c.wait(lambda e: e.get('type') == 'subscribe')
    c.send(f"<presence to='{owner.jid}' type='subscribed'/>")
    o.wait(lambda e: e.get('type') == 'subscribed')
    node = new_node()
    c.caps_presence([node])
    c.clear()
    ok(o.publish(node, payload('p')))
    c.none(is_event(node), wait=QUIET)
    assert pubsub_error(c.items(owner.jid, node))[2] == 'presence-subscription-required'
    o.close()
    c.close()


def test_last_item_on_presence(server, make_user):
    owner, friend = make_user('o'), make_user('f')
    node, quiet_node = new_node(), new_node()
    o = stream(server, owner)
    f = stream(server, friend)
    o.available()
    f.available()
    befriend(o, f)
    ok(o.publish(node, payload('old'), 'i1'))
    ok(o.publish(node, payload('last'), 'i2'))
    ok(o.publish(quiet_node, payload('never'), 'q',
                 {'pubsub#send_last_published_item': 'never'}))
    f.close()
    o.close()
    # The owner is offline; a new resource of the friend comes online
    # with an interest: it gets the last item, stamped.
    f2 = stream(server, friend, 'fresh')
    f2.caps_presence([node, quiet_node])
    ev = f2.wait(is_event(node, frm=owner.jid, to=f2.full), what='last item')
    assert [(k, i, text_of(p)) for k, i, p in event_items(ev)] == [('item', 'i2', 'last')]
    delay = ev.find(q(NS_DELAY, 'delay'))
    assert delay is not None and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z',
                                              delay.get('stamp'))
    f2.none(is_event(quiet_node), wait=QUIET, what='item of a send_last never node')
    # A second presence is not initial: nothing again (XEP-0163 §4.3.3).
    f2.send('<presence><show>away</show></presence>')
    f2.none(is_event(node), wait=QUIET)
    # The owner's own new resource gets its own last item too.
    o2 = stream(server, owner, 'back')
    o2.caps_presence([node])
    ev = o2.wait(is_event(node, to=o2.full), what='own last item')
    assert [(k, i) for k, i, _ in event_items(ev)] == [('item', 'i2')]
    f2.close()
    o2.close()


def test_new_interest_gets_last_item(server, make_user):
    """Caps that change while available: the nodes newly asked for get
    their last item, the others not again."""
    owner = make_user()
    a, b = new_node(), new_node()
    o = stream(server, owner)
    o.available()
    ok(o.publish(a, payload('A')))
    ok(o.publish(b, payload('B')))
    s = stream(server, owner)
    s.caps_presence([a])
    s.wait(is_event(a, to=s.full))
    s.caps_presence([a, b])
    s.wait(is_event(b, to=s.full))
    s.none(is_event(a), wait=QUIET)
    o.close()
    s.close()


# ---------------------------------------------------------------------------
# explicit subscriptions (XEP-0060 §6.1, §6.2)

def test_explicit_subscription(server, make_user):
    owner, stranger = make_user('o'), make_user('s')
    o, x = stream(server, owner), stream(server, stranger)
    x.available()       # no caps at all: only the subscription counts
    open_node, closed_node = new_node(), new_node()
    ok(o.publish(open_node, payload('first'), 'i', {'pubsub#access_model': 'open'}))
    ok(o.publish(closed_node, payload('c')))
    # A subscription for somebody else's JID is refused.
    r = x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{open_node}' jid='{owner.jid}'/>"
             f"</pubsub>", type='set', to=owner.jid)
    assert pubsub_error(r)[1:3] == ('bad-request', 'invalid-jid')
    r = x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{closed_node}' jid='{x.full}'/>"
             f"</pubsub>", type='set', to=owner.jid)
    assert pubsub_error(r)[1:3] == ('not-authorized', 'presence-subscription-required')
    r = ok(x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{open_node}' jid='{x.full}'/>"
                f"</pubsub>", type='set', to=owner.jid))
    sub = r.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "subscription")}')
    assert (sub.get('node'), sub.get('jid'), sub.get('subscription')) == \
        (open_node, x.full, 'subscribed')
    # The last item follows the subscription (§6.1.7).
    ev = x.wait(is_event(open_node, frm=owner.jid, to=x.full))
    assert [(k, i) for k, i, _ in event_items(ev)] == [('item', 'i')]
    r = ok(x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>", to=owner.jid))
    subs = r.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "subscriptions")}')
    assert [(s.get('node'), s.get('jid')) for s in subs] == [(open_node, x.full)]
    ok(o.publish(open_node, payload('second'), 'j'))
    ev = x.wait(is_event(open_node, to=x.full))
    assert [(k, i, text_of(p)) for k, i, p in event_items(ev)] == [('item', 'j', 'second')]
    ok(x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node='{open_node}' jid='{x.full}'/>"
            f"</pubsub>", type='set', to=owner.jid))
    r = x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node='{open_node}' jid='{x.full}'/>"
             f"</pubsub>", type='set', to=owner.jid)
    assert pubsub_error(r)[1:3] == ('unexpected-request', 'not-subscribed')
    ok(o.publish(open_node, payload('third'), 'k'))
    x.none(is_event(open_node), wait=QUIET)
    # Closing the node ends the subscription (XEP-0163 §7.1).
    ok(x.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{open_node}' jid='{x.bare}'/>"
            f"</pubsub>", type='set', to=owner.jid))
    ev = x.wait(is_event(open_node, to=x.bare), what='last item, to the bare JID')
    assert [(k, i) for k, i, _ in event_items(ev)] == [('item', 'k')]
    x.clear()
    ok(o.configure(open_node, {'pubsub#access_model': 'presence'}))
    ok(o.publish(open_node, payload('fourth'), 'l'))
    x.none(is_event(open_node), wait=QUIET)
    # Affiliations: the owner owns its nodes.
    r = ok(o.iq(f"<pubsub xmlns='{NS_PUBSUB}'><affiliations/></pubsub>"))
    affs = {(a.get('node'), a.get('affiliation'))
            for a in r.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "affiliations")}')}
    assert {(open_node, 'owner'), (closed_node, 'owner')} <= affs
    o.close()
    x.close()


# ---------------------------------------------------------------------------
# persistence

def test_items_and_config_survive_restart(server_factory, make_user):
    srv = server_factory('peprestart')
    u = make_user(srv=srv)
    s = stream(srv, u)
    node = new_node()
    for i in range(3):
        ok(s.publish(node, payload(f'v{i}'), f'i{i}', {'pubsub#max_items': '10',
                                                       'pubsub#access_model': 'open'}))
    ok(s.retract(node, 'i1'))
    transient = new_node()
    ok(s.publish(transient, payload('t'), options={'pubsub#persist_items': '0'}))
    s.close()
    srv.stop()
    srv.restart()
    s = stream(srv, u)
    assert ids_and_texts(s.items(u.jid, node)) == [('i0', 'v0'), ('i2', 'v2')]
    cfg = s.node_config(node)
    assert (cfg['pubsub#access_model'], cfg['pubsub#max_items']) == ('open', '10')
    # A node that does not persist items keeps its configuration only.
    assert result_items(s.items(u.jid, transient)) == []
    assert s.node_config(transient)['pubsub#persist_items'] == '0'
    s.close()


# ---------------------------------------------------------------------------
# hostile input

def test_hostile_requests(server, make_user):
    u = make_user()
    s = stream(server, u)
    long_node = 'n' * 2000
    assert pubsub_error(s.publish(long_node, payload('x')))[1] == 'not-acceptable'
    ids = ''.join(f"<item id='{i}'/>" for i in range(300))
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{new_node()}'>{ids}</items></pubsub>")
    assert pubsub_error(r)[1] == 'policy-violation'
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'/>", type='set')
    assert pubsub_error(r)[1] == 'bad-request'
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><frobnicate node='x'/></pubsub>", type='set')
    assert pubsub_error(r)[1] == 'bad-request'
    r = s.iq(f"<pubsub xmlns='{NS_PUBSUB}'><options node='x'/></pubsub>", type='set')
    assert pubsub_error(r)[1:4] == ('feature-not-implemented', 'unsupported', 'subscription-options')
    r = s.iq(f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='x'/></pubsub>")
    assert pubsub_error(r)[1:4] == ('feature-not-implemented', 'unsupported', 'manage-subscriptions')
    # Still alive and well.
    ok(s.publish(new_node(), payload('fine')))
    s.close()


def test_subscriptions_per_entity_are_bounded(server, make_user):
    owner, fan = make_user('o'), make_user('f')
    o, f = stream(server, owner), stream(server, fan)
    node = new_node()
    ok(o.publish(node, payload('x'), 'i', {'pubsub#access_model': 'open'}))
    jids = [f'{fan.jid}/res{i}' for i in range(6)]
    for j in jids:
        ok(f.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{node}' jid='{j}'/></pubsub>",
                type='set', to=owner.jid))
    r = ok(f.iq(f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>",
                to=owner.jid))
    subs = r.find(f'{q(NS_PUBSUB, "pubsub")}/{q(NS_PUBSUB, "subscriptions")}')
    # The oldest went: four per entity.
    assert [s.get('jid') for s in subs] == jids[2:]
    o.close()
    f.close()


def test_configure_form_round_trip(server, make_user):
    """Dino and Profanity fetch the configuration form, change a field and
    submit the whole form back, every field and option included."""
    u = make_user()
    s = stream(server, u)
    node = new_node()
    ok(s.publish(node, payload('x'), 'current'))
    r = ok(s.owner(f"<configure node='{node}'/>", type='get'))
    x = r.find(f'{q(NS_OWNER, "pubsub")}/{q(NS_OWNER, "configure")}/{{jabber:x:data}}x')
    x.set('type', 'submit')
    for field in x:
        if field.get('var') == 'pubsub#access_model':
            field.find('{jabber:x:data}value').text = 'open'
    ET.register_namespace('', 'jabber:x:data')
    submitted = ET.tostring(x, encoding='unicode')
    ok(s.owner(f"<configure node='{node}'>{submitted}</configure>"))
    cfg = s.node_config(node)
    assert (cfg['pubsub#access_model'], cfg['pubsub#max_items'],
            cfg['pubsub#send_last_published_item']) == ('open', '1', 'on_sub_and_presence')
    s.close()


# ---------------------------------------------------------------------------
# XEP-0084 avatars: plain PEP nodes

def png(rgb):
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n'
            + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' + bytes(rgb)))
            + chunk(b'IEND', b''))


def test_avatar_nodes(server, make_user):
    NS_DATA, NS_META = 'urn:xmpp:avatar:data', 'urn:xmpp:avatar:metadata'
    owner, friend = make_user('o'), make_user('f')
    o, f = stream(server, owner), stream(server, friend)
    o.available()
    f.available()
    befriend(o, f)
    f.caps_presence([NS_META])
    f.clear()
    image = png((10, 200, 30))
    sha = hashlib.sha1(image).hexdigest()
    ok(o.publish(NS_DATA, f"<data xmlns='{NS_DATA}'>{base64.b64encode(image).decode()}</data>",
                 sha))
    ok(o.publish(NS_META, f"<metadata xmlns='{NS_META}'><info bytes='{len(image)}' id='{sha}' "
                          f"height='1' width='1' type='image/png'/></metadata>", sha))
    # The contact hears of the metadata (it asked for it), not of the data.
    ev = f.wait(is_event(NS_META, frm=owner.jid, to=f.full))
    [(kind, item_id, meta)] = event_items(ev)
    assert (kind, item_id) == ('item', sha)
    info = meta.find(f'{{{NS_META}}}info')
    assert (info.get('id'), info.get('bytes'), info.get('type')) == (sha, str(len(image)), 'image/png')
    f.none(is_event(NS_DATA), wait=QUIET)
    # ...and fetches the data by id.
    [(item_id, data)] = result_items(f.items(owner.jid, NS_DATA, ids=[sha]))
    assert item_id == sha and base64.b64decode(data.text) == image
    # An empty <metadata/> says "no avatar".
    ok(o.publish(NS_META, f"<metadata xmlns='{NS_META}'/>", 'none'))
    ev = f.wait(is_event(NS_META, to=f.full))
    [(kind, item_id, meta)] = event_items(ev)
    assert item_id == 'none' and len(meta) == 0
    o.close()
    f.close()
