"""Raw-stream helpers for the PEP tests (test_pep.py, test_caps.py,
test_omemo.py, test_bookmarks.py): XEP-0115 verification strings, a
logged-in stream that announces caps and answers the server's disco#info
query for them, and builders for pubsub requests."""

import base64
import hashlib
import uuid

from helpers import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_PUBSUB, NS_XDATA, error_of,
                     esc, form, form_values, q, tostr)
from streams import Session

NS_CAPS = 'http://jabber.org/protocol/caps'
NS_OWNER = NS_PUBSUB + '#owner'
NS_EVENT = NS_PUBSUB + '#event'
NS_ERRORS = NS_PUBSUB + '#errors'
PUBLISH_OPTIONS = NS_PUBSUB + '#publish-options'
NODE_CONFIG = NS_PUBSUB + '#node_config'
CAPS_NODE = 'https://roost.test/client'


def caps_ver(identities, features, forms=(), hash_name='sha1'):
    """XEP-0115 §5.1. identities: (category, type, lang, name) tuples;
    forms: (form_type, {var: [values]}) pairs."""
    s = ''
    for ident in sorted('/'.join(i) for i in identities):
        s += ident + '<'
    for f in sorted(features):
        s += f + '<'
    for form_type, fields in sorted(forms):
        s += form_type + '<'
        for var in sorted(fields):
            s += var + '<'
            for v in sorted(fields[var]):
                s += v + '<'
    return base64.b64encode(hashlib.new(hash_name, s.encode()).digest()).decode()


def client_features(notify=(), extra=()):
    return (['http://jabber.org/protocol/caps', NS_DISCO_INFO]
            + [n + '+notify' for n in notify] + list(extra))


class PepStream(Session):
    """A Session (see streams.py), by default without presence, that can
    announce XEP-0115 caps with "+notify" interests."""

    IDENTITY = ('client', 'pc', '', 'roost-test')

    def __init__(self, server, user, resource=None, presence=False, **kw):
        super().__init__(server, user, resource=resource, presence=presence,
                         **kw)

    def caps_presence(self, notify=(), unique=True, expect_query=True,
                      features=None, answer_features=None, extra='',
                      hash_attr='sha-1'):
        """Sends available presence with caps listing node+notify for
        each node in `notify` (plus a feature unique to this call when
        `unique`, so that the server has to ask). With expect_query,
        waits for the server's disco#info query, checks it, answers it
        (with answer_features if given: a lying client) and returns the
        query; the caps are in use when this returns."""
        feats = features if features is not None else client_features(
            notify, ['urn:roost:test:' + uuid.uuid4().hex] if unique else ())
        ver = caps_ver([self.IDENTITY], feats)
        self.send(f"<presence><c xmlns='{NS_CAPS}' hash='{hash_attr}' "
                  f"node='{CAPS_NODE}' ver='{ver}'/>{extra}</presence>")
        self.wait(lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('from') == self.full
                  and e.get('type') is None, what='own presence echoed')
        query = None
        if expect_query:
            query = self.wait(is_caps_query(), what='the server\'s disco#info query')
            self.answer_disco(query, answer_features if answer_features is not None else feats)
        self.sync()
        self.caps_ver = ver
        return query

    def answer_disco(self, iq, features):
        node = iq.find(q(NS_DISCO_INFO, 'query')).get('node')
        cat, typ, _lang, name = self.IDENTITY
        feats = ''.join(f"<feature var='{esc(f)}'/>" for f in features)
        self.send(f"<iq type='result' id='{iq.get('id')}' to='{iq.get('from')}'>"
                  f"<query xmlns='{NS_DISCO_INFO}' node='{esc(node)}'>"
                  f"<identity category='{cat}' type='{typ}' name='{name}'/>{feats}"
                  f"</query></iq>")

    # -- pubsub requests -----------------------------------------------------
    def publish(self, node, payload, item_id=None, options=None, to=None):
        """Publishes; options: {field: value} as publish-options."""
        return self.iq(publish_xml(node, payload, item_id, options), type='set', to=to)

    def items(self, owner, node, max_items=None, ids=()):
        attr = f" max_items='{max_items}'" if max_items is not None else ''
        inner = ''.join(f"<item id='{esc(i)}'/>" for i in ids)
        return self.iq(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{esc(node)}'{attr}>"
                       f"{inner}</items></pubsub>", to=owner)

    def retract(self, node, item_id, notify=None):
        attr = f" notify='{notify}'" if notify is not None else ''
        return self.iq(f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{esc(node)}'{attr}>"
                       f"<item id='{esc(item_id)}'/></retract></pubsub>", type='set')

    def owner(self, inner, type='set'):
        return self.iq(f"<pubsub xmlns='{NS_OWNER}'>{inner}</pubsub>", type=type)

    def configure(self, node, fields):
        return self.owner(f"<configure node='{esc(node)}'>{form(NODE_CONFIG, fields)}</configure>")

    def node_config(self, node):
        r = self.owner(f"<configure node='{esc(node)}'/>", type='get')
        assert r.get('type') == 'result', tostr(r)
        return form_values(r.find(f'{q(NS_OWNER, "pubsub")}/{q(NS_OWNER, "configure")}/{q(NS_XDATA, "x")}'))


def stream(server, user, resource=None, prefix='r'):
    """A PepStream on a resource of its own unless one is named."""
    return PepStream(server, user, resource or prefix + uuid.uuid4().hex[:6])


def is_caps_query():
    def pred(e):
        return (e.tag == q(NS_CLIENT, 'iq') and e.get('type') == 'get'
                and e.get('from') == DOMAIN and e.find(q(NS_DISCO_INFO, 'query')) is not None)
    return pred


def publish_xml(node, payload, item_id=None, options=None):
    idattr = f" id='{esc(item_id)}'" if item_id is not None else ''
    opts = ''
    if options is not None:
        opts = f'<publish-options>{form(PUBLISH_OPTIONS, options)}</publish-options>'
    return (f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{esc(node)}'>"
            f"<item{idattr}>{payload}</item></publish>{opts}</pubsub>")


def pubsub_error(e):
    """(type, stanza condition, pubsub#errors condition or None, feature)."""
    assert e.get('type') == 'error', f'expected an error, got {tostr(e)}'
    err = e.find(q(NS_CLIENT, 'error'))
    etype, cond, _others = error_of(e)
    app = [c for c in err if c.tag.startswith('{' + NS_ERRORS + '}')]
    assert len(app) <= 1, tostr(e)
    return (etype, cond, app[0].tag.split('}', 1)[1] if app else None,
            app[0].get('feature') if app else None)


def result_items(e, ns=NS_PUBSUB):
    """[(id, payload element or None)] of an items result or event."""
    assert e.get('type') != 'error', tostr(e)
    items = e.find(f'{q(ns, "pubsub")}/{q(ns, "items")}')
    assert items is not None, tostr(e)
    return [(i.get('id'), i[0] if len(i) else None) for i in items.findall(q(ns, 'item'))]


def is_event(node=None, frm=None, to=None, kind='items'):
    """A pubsub#event message (of `kind`: items, delete, purge,
    configuration) about `node`."""
    def pred(e):
        if e.tag != q(NS_CLIENT, 'message'):
            return False
        ev = e.find(q(NS_EVENT, 'event'))
        if ev is None:
            return False
        el = ev.find(q(NS_EVENT, kind))
        if el is None or (node is not None and el.get('node') != node):
            return False
        if frm is not None and e.get('from') != frm:
            return False
        return to is None or e.get('to') == to
    return pred


def event_items(e):
    """[('item'|'retract', id, payload or None)] of an items event."""
    items = e.find(f'{q(NS_EVENT, "event")}/{q(NS_EVENT, "items")}')
    out = []
    for c in items:
        kind = c.tag.split('}', 1)[1]
        out.append((kind, c.get('id'), c[0] if len(c) else None))
    return out


def payload(text, ns='urn:roost:test:payload'):
    return f"<entry xmlns='{ns}'>{esc(text)}</entry>"


def new_node():
    return 'urn:roost:test:node:' + uuid.uuid4().hex[:10]
