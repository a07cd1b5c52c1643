/* XEP-0048 bookmarks stored through XEP-0049 private XML: mod_private
 * hands <storage xmlns='storage:bookmarks'/> requests to mod_bookmarks,
 * which keeps them as XEP-0402 items (the one copy, so every client sees
 * the same bookmarks, XEP-0402 §3 "compat"). */
#ifndef ROOST_MOD_BOOKMARKS_H
#define ROOST_MOD_BOOKMARKS_H

struct iq_request;

/* Answer the request (an IQ get/set whose payload is the jabber:iq:private
 * <query/> holding <storage xmlns='storage:bookmarks'/>) exactly once. */
void bookmarks_private_get(const struct iq_request *req);
void bookmarks_private_set(const struct iq_request *req);

#endif
